/* Telling the operator a session turned waiting (SPEC 16): the terminal's
 * bell and an OSC 9 desktop notification, once per transition. The setting
 * lives in $XDG_CONFIG_HOME/convocate/tui.conf (else ~/.config/...), one
 * line "notify=on" or "notify=off", written atomically; on by default. */
#ifndef CONVOCATE_SHELL_TUI_NOTIFY_H
#define CONVOCATE_SHELL_TUI_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "shell/tui/app.h"

/* The saved setting; true (on) when there is no file or it says nothing. */
bool notify_load(void);
/* Saves it; -1 with err set when the file cannot be written. */
int notify_save(bool on, char *err, size_t errlen);
/* Compares the rows before and after a refresh: every session that turned
 * waiting rings the bell and queues its OSC 9 (when the setting is on). */
void notify_transitions(tui_app *app, const tui_snapshot *before, const tui_table *index);
/* One row's activity changed from was: rings when it turned waiting. */
void notify_row(tui_app *app, const tui_row *row, const tui_activity *was);
/* Writes queued notifications to the terminal; call right after refresh(). */
void notify_flush(tui_app *app);

#endif
