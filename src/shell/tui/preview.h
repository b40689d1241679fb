/* The preview pane (SPEC 16): the selected session's screen, asked for with
 * the peek op once a second on a job thread while the pane is visible, drawn
 * with its SGR colours. P toggles it; it shows by itself from
 * PREVIEW_AUTO_COLS columns on. */
#ifndef CONVOCATE_SHELL_TUI_PREVIEW_H
#define CONVOCATE_SHELL_TUI_PREVIEW_H

#include "shell/tui/app.h"
#include "shell/tui/view.h"

#define PREVIEW_EVERY_MS 1000
#define PREVIEW_SCREEN_MAX (256 * 1024) /* the peek op's limit (SPEC 7) */

/* P: shows the pane when hidden, hides it when shown. */
void preview_toggle(tui_app *app);
/* Sends the next peek when the pane is visible and one is due; cheap to
 * call before every draw. */
void preview_tick(tui_app *app);
/* A finished peek: keeps its screen or the agent's error. Frees job. */
void preview_job_done(tui_app *app, tui_job *job);
void preview_draw(tui_app *app, const view_rect *r);
void preview_free(tui_app *app);

#endif
