/* The main screen (SPEC 12): title bar with load and clock, the session
 * table, one line of agent health and capacity, the key menu and the status
 * line (or the > prompt), and the preview pane beside or below the table. */
#ifndef CONVOCATE_SHELL_TUI_VIEW_H
#define CONVOCATE_SHELL_TUI_VIEW_H

#include "shell/tui/app.h"

typedef struct {
    int y, x, h, w;
} view_rect;

/* Rows of the table that fit on the screen now (fewer with the preview below). */
int view_table_height(const tui_app *app);
/* Where the preview pane goes now: beside the table from PREVIEW_AUTO_COLS
 * on, below it when asked for on a narrower terminal; false when hidden. */
bool view_preview_rect(const tui_app *app, view_rect *r);
/* Draws what changed since the last call (see tui_frame). */
void view_draw(tui_app *app);
/* Forgets the last frame (its memory too): the next draw is a whole one. */
void view_free(tui_app *app);
/* Colours when the terminal has them; attributes alone otherwise. */
void view_init_colors(void);

#endif
