/* Changing an agent's settings from the settings dialog (S, then E): one
 * line of KEY=VALUE words, typed as `convocate settings` types them, sent
 * as settings-set to the agent of the selected session (or the only agent).
 * The agent validates (SPEC 7); its refusal is shown as it is, and after a
 * change the dialog asks every agent again, so it shows the result. */
#ifndef CONVOCATE_SHELL_TUI_SETTINGS_EDIT_H
#define CONVOCATE_SHELL_TUI_SETTINGS_EDIT_H

#include <stdbool.h>
#include <wchar.h>

#include "shell/tui/app.h"

/* E in the settings dialog: opens the line for the chosen agent. */
void settings_edit_open(tui_app *app);
/* A key on the line: text, Backspace, Enter saves, Esc goes back. */
void settings_edit_key(tui_app *app, bool is_key, wint_t key);
/* The settings-set answer; takes the job. */
void settings_edit_done(tui_app *app, tui_job *job);

#endif
