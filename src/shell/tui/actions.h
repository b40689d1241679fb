/* What the TUI's keys do: open a dialog or form, or hand an RPC to a job and
 * report its outcome on the status line when it comes back. */
#ifndef CONVOCATE_SHELL_TUI_ACTIONS_H
#define CONVOCATE_SHELL_TUI_ACTIONS_H

#include <wchar.h>

#include "shell/tui/app.h"

/* K, R, B, D, O: asks Y/N first (O only for a locked session). */
void action_ask(tui_app *app, const char *op);
/* Y on the confirmation: starts the job. */
void action_confirmed(tui_app *app);
/* N: the agent picker when there are several agents, else the form. */
void action_new(tui_app *app);
void action_new_on(tui_app *app, const char *agent_id);
void action_edit(tui_app *app);
void action_clone(tui_app *app);
/* Enter in the form: validates and sends; the form stays until the answer. */
void action_submit_form(tui_app *app);
void action_settings(tui_app *app);
/* Enter: leaves curses, relays the terminal to the session, comes back. */
void action_attach(tui_app *app);
/* >: opens the prompt that types into the selected running session. */
void action_send_open(tui_app *app);
/* A key in the prompt: text, Backspace, Enter sends (with Enter), Esc cancels. */
void action_send_key(tui_app *app, bool is_key, wint_t key);
/* A finished job: status line, form or settings dialog. Frees job. */
void action_job_done(tui_app *app, tui_job *job);

#endif
