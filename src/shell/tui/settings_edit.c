#include "shell/tui/settings_edit.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "shell/cli_settings.h"
#include "shell/tui/actions.h"
#include "shell/tui/text.h"

/* The agent whose settings E changes: the selected session's, or the only
 * one registered. NULL (with the reason on the status line) otherwise. */
static const agent_entry *edited_agent(tui_app *app)
{
    const tui_row *row = app_selected(app);
    if (row != NULL)
        return registry_find(&app->reg, row->agent);
    if (app->reg.n == 1)
        return &app->reg.items[0];
    app_status(app, true,
               app->reg.n == 0
                   ? "No agents registered: add one with 'convocate-host init-agent'."
                   : "Select a session of the agent whose settings you want to change.");
    return NULL;
}

void settings_edit_open(tui_app *app)
{
    const agent_entry *agent = edited_agent(app);
    if (agent == NULL)
        return;
    snprintf(app->settings_edit.agent, sizeof app->settings_edit.agent, "%s", agent->id);
    app->settings_edit.text[0] = '\0';
    app->mode = MODE_SETTINGS_EDIT;
    app_status(app, false, "KEY=VALUE for agent %s, e.g. heartbeat_s=60", agent->id);
}

/* The typed words (cut in place) as a settings object; NULL with the
 * reason in why. */
static json_t *parse_words(char *words, char *why, size_t whylen)
{
    json_t *obj = json_object();
    char *save = NULL;
    for (char *word = strtok_r(words, " ", &save); obj && word; word = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(word, '=');
        json_t *value = eq && eq != word ? cli_settings_value(eq + 1) : NULL;
        if (value == NULL) {
            snprintf(why, whylen, "\"%.200s\": want KEY=VALUE", word);
            json_decref(obj);
            return NULL;
        }
        *eq = '\0';
        json_object_set_new(obj, word, value);
    }
    if (obj && json_object_size(obj) == 0) {
        snprintf(why, whylen, "type KEY=VALUE, e.g. heartbeat_s=60");
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static void submit(tui_app *app)
{
    char why[300], words[sizeof app->settings_edit.text];
    snprintf(words, sizeof words, "%s", app->settings_edit.text);
    json_t *params = parse_words(words, why, sizeof why);
    if (params == NULL) {
        app_status(app, true, "%s", why);
        return; /* the line stays as typed */
    }
    agent_entry *agent = registry_find(&app->reg, app->settings_edit.agent);
    tui_job *job = agent ? job_new(JOB_SETTINGS, "settings-set") : NULL;
    if (job == NULL) {
        json_decref(params);
        app_status(app, true, agent ? "out of memory" : "agent %s is no longer registered",
                   app->settings_edit.agent);
        return;
    }
    job->agent = agent;
    job->params = params;
    snprintf(job->name, sizeof job->name, "%.120s",
             app->settings_edit.text); /* for the status line */
    app->mode = MODE_SETTINGS;
    unsigned id = jobs_submit(app->jobs, job);
    app_status(app, id == 0, id ? "saving %s on %s..." : "cannot start a worker thread; try again",
               app->settings_edit.text, app->settings_edit.agent);
}

void settings_edit_key(tui_app *app, bool is_key, wint_t key)
{
    if (!is_key && key == 27) {
        app->mode = MODE_SETTINGS;
        app_status(app, false, "Nothing changed.");
    } else if ((!is_key && (key == '\n' || key == '\r')) || (is_key && key == KEY_ENTER)) {
        submit(app);
    } else if ((is_key && key == KEY_BACKSPACE) || (!is_key && (key == 127 || key == 8))) {
        text_drop_last(app->settings_edit.text);
    } else if (!is_key && key >= 0x20 && key != 127) {
        if (!text_append_wchar(app->settings_edit.text, sizeof app->settings_edit.text, key))
            app_status(app, true, "the line is full");
    }
}

void settings_edit_done(tui_app *app, tui_job *job)
{
    if (job->ok)
        app_status(app, false, "Saved on %s: %s.", job->agent->id, job->name);
    else
        app_status(app, true, "%s", job->error); /* the agent's words (SPEC 7) */
    bool refresh = job->ok && app->mode == MODE_SETTINGS;
    job_free(job);
    if (refresh) {
        /* ask again, so the dialog shows what the agent now holds */
        char kept[sizeof app->status];
        snprintf(kept, sizeof kept, "%s", app->status);
        action_settings(app);
        app_status(app, false, "%s", kept);
    }
}
