#include "shell/tui/actions.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "shell/attach_client.h"
#include "shell/orphans.h"
#include "shell/tui/preview.h"
#include "shell/tui/text.h"
#include "shell/tui/settings_edit.h"

/* The words each confirmed op uses: the question, the progress line, and
 * the line when it is done. */
typedef struct {
    const char *op, *verb, *progress, *done;
} op_words;

static const op_words words[] = {
    {"kill", "Kill", "killing", "stopped"},
    {"restart", "Restart", "restarting", "started"},
    {"background", "Background", "detaching every operator from", "is running in the background"},
    {"delete", "Delete", "deleting", "deleted"},
    {"override", "Override the lock of", "unlocking", "unlocked"},
};

static const op_words *words_for(const char *op)
{
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strcmp(words[i].op, op) == 0)
            return &words[i];
    return NULL;
}

/* The selected row, or NULL with the status line saying why there is none.
 * Every key that acts on a session comes through here, so an orphan (SPEC
 * 6.5) is refused here once: no agent has it to act on. */
static const tui_row *target_row(tui_app *app)
{
    const tui_row *row = app_selected(app);
    if (row == NULL) {
        app_status(app, true,
                   app->reg.n ? "No session selected: press N to create one."
                              : "No agents registered: add one with "
                                "'convocate-host init-agent'.");
    } else if (row->state == 'O') {
        /* Short enough for a 100-column status line with the full UUID. */
        app_status(app, true, "Orphan: " ORPHAN_MIGRATE_CMD "%s", row->uuid);
        return NULL;
    }
    return row;
}

void action_ask(tui_app *app, const char *op)
{
    const tui_row *row = target_row(app);
    const op_words *w = words_for(op);
    if (row == NULL || w == NULL)
        return;
    if (strcmp(op, "override") == 0 && row->state != 'L') {
        app_status(app, true, "Override only applies to a locked session (state L); %s is %c.",
                   row->name, row->state);
        return;
    }
    tui_confirm *c = &app->confirm;
    size_t op_len = strnlen(op, sizeof c->op - 1); /* ops are short words */
    memcpy(c->op, op, op_len);
    c->op[op_len] = '\0';
    c->row = *row;
    snprintf(c->question, sizeof c->question, "%s session %s (%.8s on %s)%s? (y/n)", w->verb,
             row->name, row->uuid, row->agent,
             strcmp(op, "delete") == 0 ? " and its home directory" : "");
    app->mode = MODE_CONFIRM;
}

static void submit_or_report(tui_app *app, tui_job *job, const char *progress)
{
    if (jobs_submit(app->jobs, job) == 0)
        app_status(app, true, "cannot start a worker thread; try again");
    else
        app_status(app, false, "%s", progress);
}

void action_confirmed(tui_app *app)
{
    tui_confirm *c = &app->confirm;
    const op_words *w = words_for(c->op);
    agent_entry *agent = registry_find(&app->reg, c->row.agent);
    if (w == NULL || agent == NULL) {
        app_status(app, true, "agent %s is no longer registered", c->row.agent);
        return;
    }
    tui_job *job = job_new(JOB_ACTION, c->op);
    if (job == NULL || (job->params = json_pack("{s:s}", "id", c->row.uuid)) == NULL) {
        job_free(job);
        app_status(app, true, "out of memory");
        return;
    }
    job->agent = agent;
    snprintf(job->name, sizeof job->name, "%s", c->row.name);
    snprintf(job->label, sizeof job->label, "%s %s", w->progress, c->row.name);
    char progress[260];
    snprintf(progress, sizeof progress, "%s...", job->label);
    submit_or_report(app, job, progress);
}

void action_new_on(tui_app *app, const char *agent_id)
{
    form_init_create(&app->form, agent_id);
    app->mode = MODE_FORM;
    app_status(app, false, "New session on %s: type a name, Enter to create.", agent_id);
}

void action_new(tui_app *app)
{
    if (app->reg.n == 0) {
        app_status(app, true, "No agents registered: add one with 'convocate-host init-agent'.");
        return;
    }
    if (app->reg.n == 1) {
        action_new_on(app, app->reg.items[0].id);
        return;
    }
    app->picker_selected = 0;
    app->mode = MODE_PICKER;
    app_status(app, false, "Choose the agent for the new session.");
}

void action_edit(tui_app *app)
{
    const tui_row *row = target_row(app);
    if (row == NULL)
        return;
    form_init_edit(&app->form, row);
    app->mode = MODE_FORM;
    app_status(app, false, "Editing %s: a running container keeps its old flags until restart.",
               row->name);
}

void action_clone(tui_app *app)
{
    const tui_row *row = target_row(app);
    if (row == NULL)
        return;
    form_init_clone(&app->form, row);
    app->mode = MODE_FORM;
    app_status(app, false, "Name the copy of %s.", row->name);
}

void action_submit_form(tui_app *app)
{
    tui_form *f = &app->form;
    char err[200];
    json_t *params = form_params(f, err, sizeof err);
    if (params == NULL) {
        app_status(app, true, "%s", err);
        return;
    }
    agent_entry *agent = registry_find(&app->reg, f->agent_id);
    tui_job *job = agent ? job_new(JOB_SESSION, f->op) : NULL;
    if (job == NULL) {
        json_decref(params);
        app_status(app, true, agent ? "out of memory" : "that agent is no longer registered");
        return;
    }
    job->params = params;
    job->agent = agent;
    job->reg = &app->reg;
    snprintf(job->dns_name, sizeof job->dns_name, "%s", form_dns_name(f));
    if (strcmp(f->op, "edit") == 0)
        snprintf(job->except_uuid, sizeof job->except_uuid, "%s", f->uuid);
    snprintf(job->name, sizeof job->name, "%s", f->fields[0].value);
    const char *doing = strcmp(f->op, "create") == 0 ? "creating"
                        : strcmp(f->op, "edit") == 0 ? "saving"
                                                     : "cloning into";
    snprintf(job->label, sizeof job->label, "%s %s", doing, f->fields[0].value);
    char progress[260];
    snprintf(progress, sizeof progress, "%s on %s...", job->label, f->agent_id);
    f->pending_job = jobs_submit(app->jobs, job);
    app_status(app, f->pending_job == 0, "%s",
               f->pending_job ? progress : "cannot start a worker thread; try again");
}

void action_settings(tui_app *app)
{
    job_free(app->settings.answer);
    app->settings.answer = NULL;
    app->settings.job_id = 0;
    app->mode = MODE_SETTINGS;
    tui_job *job = job_new(JOB_PING_ALL, "ping");
    if (job == NULL) {
        app_status(app, true, "out of memory");
        return;
    }
    job->reg = &app->reg;
    app->settings.job_id = jobs_submit(app->jobs, job);
}

/* Curses learns the new size after a resize that happened while it was away. */
static void catch_up_with_terminal_size(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0 &&
        (ws.ws_row != LINES || ws.ws_col != COLS))
        resize_term(ws.ws_row, ws.ws_col);
}

void action_attach(tui_app *app)
{
    const tui_row *row = target_row(app);
    if (row == NULL)
        return;
    agent_entry *agent = registry_find(&app->reg, row->agent);
    if (agent == NULL) {
        app_status(app, true, "agent %s is no longer registered", row->agent);
        return;
    }
    char uuid[40], name[128], err[512] = "";
    snprintf(uuid, sizeof uuid, "%s", row->uuid);
    snprintf(name, sizeof name, "%s", row->name);
    def_prog_mode();
    endwin();
    printf("\r\nconvocate: attaching to %s (%.8s on %s); detach with Ctrl-b d\r\n", name, uuid,
           agent->id);
    fflush(stdout);
    int rc = attach_run(agent, uuid, err, sizeof err);
    reset_prog_mode();
    catch_up_with_terminal_size();
    clearok(curscr, TRUE); /* the session drew over everything: repaint it all */
    if (rc < 0)
        app_status(app, true, "attach %s: %s", name, err);
    else
        app_status(app, false, "Detached from %s.", name);
    model_refresh(app->model, agent->id);
}

void action_send_open(tui_app *app)
{
    const tui_row *row = target_row(app);
    if (row == NULL)
        return;
    if (row->state != 'R' && row->state != 'C') {
        app_status(app, true, "session \"%s\" is not running", row->name);
        return;
    }
    app->send.row = *row;
    app->send.text[0] = '\0';
    app->mode = MODE_SEND;
}

static void send_submit(tui_app *app)
{
    const tui_row *row = &app->send.row;
    agent_entry *agent = registry_find(&app->reg, row->agent);
    app->mode = MODE_TABLE;
    if (agent == NULL) {
        app_status(app, true, "agent %s is no longer registered", row->agent);
        return;
    }
    tui_job *job = job_new(JOB_SEND, "send");
    if (job == NULL || (job->params = json_pack("{s:s,s:s,s:b}", "id", row->uuid, "text",
                                                app->send.text, "enter", 1)) == NULL) {
        job_free(job);
        app_status(app, true, "out of memory");
        return;
    }
    job->agent = agent;
    snprintf(job->uuid, sizeof job->uuid, "%s", row->uuid);
    snprintf(job->name, sizeof job->name, "%s", row->name);
    char progress[200];
    snprintf(progress, sizeof progress, "sending to %s...", row->name);
    submit_or_report(app, job, progress);
}

void action_send_key(tui_app *app, bool is_key, wint_t key)
{
    if (!is_key && key == 27) {
        app->mode = MODE_TABLE;
        app_status(app, false, "Nothing sent.");
    } else if ((!is_key && (key == '\n' || key == '\r')) || (is_key && key == KEY_ENTER)) {
        if (app->send.text[0])
            send_submit(app);
    } else if ((is_key && key == KEY_BACKSPACE) || (!is_key && (key == 127 || key == 8))) {
        text_drop_last(app->send.text);
    } else if (!is_key && key >= 0x20 && key != 127) {
        if (!text_append_wchar(app->send.text, sizeof app->send.text, key))
            app_status(app, true, "at most %d bytes go in one send", SEND_TEXT_MAX);
    }
}

static void form_job_done(tui_app *app, tui_job *job)
{
    if (!job->ok) {
        /* The agent's words, as they are; the form keeps what was typed. */
        app->form.pending_job = 0;
        app_status(app, true, "%s", job->error);
        return;
    }
    const char *name = json_string_value(json_object_get(job->result, "name"));
    const char *uuid = json_string_value(json_object_get(job->result, "uuid"));
    if (uuid)
        snprintf(app->selected_uuid, sizeof app->selected_uuid, "%s", uuid);
    app->form.pending_job = 0;
    app->mode = MODE_TABLE;
    app_status(app, false, "%s %s (%.8s on %s).",
               strcmp(job->op, "create") == 0 ? "Created"
               : strcmp(job->op, "edit") == 0 ? "Saved"
                                              : "Cloned into",
               name ? name : job->name, uuid ? uuid : "", job->agent->id);
}

static void action_job_report(tui_app *app, tui_job *job)
{
    const op_words *w = words_for(job->op);
    if (job->ok)
        app_status(app, false, "%s %s.", job->name, w ? w->done : "done");
    else
        app_status(app, true, "%s %s: %s", job->op, job->name, job->error);
}

void action_job_done(tui_app *app, tui_job *job)
{
    if (job->kind == JOB_PEEK) {
        preview_job_done(app, job);
        return;
    }
    if (job->kind == JOB_SETTINGS) {
        settings_edit_done(app, job);
        return;
    }
    if (job->kind == JOB_SEND) {
        /* The agent's words as they are (SPEC 16). */
        if (job->ok)
            app_status(app, false, "Sent to %s.", job->name);
        else
            app_status(app, true, "%s", job->error);
        job_free(job);
        return;
    }
    if (job->kind == JOB_PING_ALL) {
        if (app->mode == MODE_SETTINGS && job->id == app->settings.job_id) {
            app->settings.answer = job;
            app->settings.job_id = 0;
            return; /* the dialog owns it now */
        }
    } else if (job->kind == JOB_SESSION && app->mode == MODE_FORM &&
               job->id == app->form.pending_job) {
        form_job_done(app, job);
    } else if (job->kind == JOB_SESSION) {
        /* the form was closed with Esc while the agent worked on it */
        if (job->ok)
            app_status(app, false, "%s %s done.", job->op, job->name);
        else
            app_status(app, true, "%s %s: %s", job->op, job->name, job->error);
    } else {
        action_job_report(app, job);
    }
    if (job->ok && job->agent)
        model_refresh(app->model, job->agent->id);
    job_free(job);
}
