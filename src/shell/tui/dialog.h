/* Modal pieces over the table: the Y/N confirmation, the agent picker and
 * the settings dialog. */
#ifndef CONVOCATE_SHELL_TUI_DIALOG_H
#define CONVOCATE_SHELL_TUI_DIALOG_H

#include <stdbool.h>
#include <wchar.h>

#include "shell/tui/app.h"

void dialog_key(tui_app *app, bool is_key, wint_t key);
void dialog_draw(tui_app *app);

#endif
