/* The main screen (SPEC 12): title bar with load and clock, the session
 * table, one line of agent health, the key menu and the status line. */
#ifndef CONVOCATE_SHELL_TUI_VIEW_H
#define CONVOCATE_SHELL_TUI_VIEW_H

#include "shell/tui/app.h"

/* Rows of the table that fit on the screen now. */
int view_table_height(void);
void view_draw(tui_app *app);
/* Colours when the terminal has them; attributes alone otherwise. */
void view_init_colors(void);

#endif
