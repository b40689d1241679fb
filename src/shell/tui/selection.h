/* Which row is selected and which rows are shown: taking the model's
 * changes (a whole snapshot only when the row set changed, else one row per
 * activity update), moving the selection (arrows, pages, Home/End, W) and
 * the `/` filter prompt. The selection follows its session by UUID. */
#ifndef CONVOCATE_SHELL_TUI_SELECTION_H
#define CONVOCATE_SHELL_TUI_SELECTION_H

#include <stdbool.h>
#include <wchar.h>

#include "shell/tui/app.h"

/* Takes what changed in the model since the last call. */
void selection_sync(tui_app *app);
/* Up/Down/PgUp/PgDn/Home/End; false for any other key. */
bool selection_motion_key(tui_app *app, wint_t key);
/* W: the next shown session whose Claude waits for the operator, wrapping. */
void selection_next_waiting(tui_app *app);
/* /: opens the filter prompt on the status line (editing the current filter). */
void filter_open(tui_app *app);
/* A key in the prompt: text narrows as typed, Enter keeps, Esc clears. */
void filter_key(tui_app *app, bool is_key, wint_t key);

#endif
