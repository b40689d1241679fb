#include "shell/tui/dialog.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "common/paths.h"
#include "shell/tui/actions.h"
#include "shell/tui/notify.h"
#include "shell/tui/text.h"
#include "shell/tui/settings_edit.h"
#include "version.h"

#define KEY_ESCAPE 27

static bool is_escape(bool is_key, wint_t key)
{
    return !is_key && key == KEY_ESCAPE;
}

static bool is_enter(bool is_key, wint_t key)
{
    return (!is_key && (key == '\n' || key == '\r')) || (is_key && key == KEY_ENTER);
}

static void confirm_key(tui_app *app, bool is_key, wint_t key)
{
    if (!is_key && (key == 'y' || key == 'Y')) {
        app->mode = MODE_TABLE;
        action_confirmed(app);
    } else if (is_escape(is_key, key) || (!is_key && (key == 'n' || key == 'N'))) {
        app->mode = MODE_TABLE;
        app_status(app, false, "Nothing done.");
    }
}

static void picker_key(tui_app *app, bool is_key, wint_t key)
{
    size_t n = app->reg.n;
    if (is_escape(is_key, key)) {
        app->mode = MODE_TABLE;
        app_status(app, false, "Nothing created.");
    } else if (is_key && key == KEY_UP && app->picker_selected > 0) {
        app->picker_selected--;
    } else if (is_key && key == KEY_DOWN && app->picker_selected + 1 < n) {
        app->picker_selected++;
    } else if (is_enter(is_key, key) && app->picker_selected < n) {
        action_new_on(app, app->reg.items[app->picker_selected].id);
    }
}

/* B in the settings dialog: the bell and OSC 9 on a session turning waiting. */
static void toggle_notify(tui_app *app)
{
    char err[300];
    app->notify_on = !app->notify_on;
    if (notify_save(app->notify_on, err, sizeof err) < 0)
        app_status(app, true, "%s (the change holds until you quit)", err);
    else
        app_status(app, false, "Bell and notification when a session waits: %s.",
                   app->notify_on ? "on" : "off");
}

static void settings_key(tui_app *app, bool is_key, wint_t key)
{
    if (!is_key && (key == 'b' || key == 'B')) {
        toggle_notify(app);
        return;
    }
    if (!is_key && (key == 'e' || key == 'E')) {
        settings_edit_open(app);
        return;
    }
    if (is_escape(is_key, key) || is_enter(is_key, key) ||
        (!is_key && (key == 'q' || key == 'Q' || key == 's' || key == 'S'))) {
        app->mode = MODE_TABLE;
        job_free(app->settings.answer);
        app->settings.answer = NULL;
        app->settings.job_id = 0; /* a late answer is dropped */
    }
}

void dialog_key(tui_app *app, bool is_key, wint_t key)
{
    switch (app->mode) {
    case MODE_CONFIRM:
        confirm_key(app, is_key, key);
        break;
    case MODE_PICKER:
        picker_key(app, is_key, key);
        break;
    case MODE_SETTINGS:
        settings_key(app, is_key, key);
        break;
    default:
        break;
    }
}

/* A centred box of the given inner height; returns its top-left corner. */
/* A centred box for inner lines (clipped to the screen); fills its corner,
 * width and the last row inside it. */
static bool centred_box(int inner, int *y, int *x, int *w, int *last, const char *title)
{
    *w = COLS - 4 < 76 ? COLS - 4 : 76;
    int h = inner + 2;
    if (h > LINES - 2)
        h = LINES - 2;
    if (*w < 30 || h < 3)
        return false;
    *y = (LINES - h) / 2;
    *x = (COLS - *w) / 2;
    *last = *y + h - 2;
    text_box(*y, *x, h, *w, title);
    return true;
}

static const tui_agent_view *agent_view(const tui_app *app, const char *id)
{
    for (size_t i = 0; i < app->snap.n_agents; i++)
        if (strcmp(app->snap.agents[i].id, id) == 0)
            return &app->snap.agents[i];
    return NULL;
}

static void picker_draw(tui_app *app)
{
    int y, x, w, last, n = (int)app->reg.n;
    if (!centred_box(n + 2, &y, &x, &w, &last, "New session: which agent?"))
        return;
    for (int i = 0; i < n && y + 2 + i <= last; i++) {
        const agent_entry *a = &app->reg.items[i];
        const tui_agent_view *v = agent_view(app, a->id);
        char line[400];
        snprintf(line, sizeof line, "%s  %s:%d  %s", a->id, a->host, a->port,
                 v == NULL || !v->tried ? "asking..."
                 : v->reachable         ? "up"
                                        : "UNREACHABLE");
        text_put(y + 2 + i, x + 2, w - 4, line,
                 (size_t)i == app->picker_selected ? A_REVERSE : A_NORMAL);
    }
}

static void capacity_line(char *out, size_t size, json_t *ping)
{
    json_t *cap = json_object_get(ping, "capacity");
    if (cap == NULL) {
        snprintf(out, size, "    capacity: not reported");
        return;
    }
    snprintf(out, size, "    cpu %.1f%%  mem %.1f%%  admission at %lld%%  %lld session(s)",
             json_number_value(json_object_get(cap, "cpu_pct")),
             json_number_value(json_object_get(cap, "mem_pct")),
             (long long)json_integer_value(json_object_get(cap, "threshold_pct")),
             (long long)json_integer_value(json_object_get(cap, "sessions")));
}

static const char *str_of(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && *v ? v : "-";
}

/* The agent's Claude credentials as auth-get describes them: kind and hint,
 * never the secret (SPEC 14). */
static void auth_line(char *out, size_t size, const tui_job *answer, size_t i)
{
    const agent_reply *r = answer->auth && i < answer->n_replies ? &answer->auth[i] : NULL;
    json_t *auth = r ? r->result : NULL;
    if (r == NULL || (auth == NULL && !r->answered))
        snprintf(out, size, "    claude auth: unreachable");
    else if (auth == NULL)
        snprintf(out, size, "    claude auth: %s", r->error);
    else if (strcmp(str_of(auth, "kind"), "none") == 0)
        snprintf(out, size, "    claude auth: none  base_url %s  model %s",
                 str_of(auth, "base_url"), str_of(auth, "model"));
    else
        snprintf(out, size, "    claude auth: %s %s  base_url %s  model %s", str_of(auth, "kind"),
                 str_of(auth, "hint"), str_of(auth, "base_url"), str_of(auth, "model"));
}

/* The agent's settings as settings-get answers them, KEY=VALUE the way the
 * editor (E) takes them back. */
static void settings_line(char *out, size_t size, const tui_job *answer, size_t i)
{
    const agent_reply *r = answer->settings && i < answer->n_replies ? &answer->settings[i] : NULL;
    json_t *settings = r ? r->result : NULL;
    if (settings == NULL) {
        snprintf(out, size, "    settings: %s", r && r->answered ? r->error : "unreachable");
        return;
    }
    size_t used = (size_t)snprintf(out, size, "    settings:");
    const char *key;
    json_t *value;
    json_object_foreach(settings, key, value)
    {
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        if (used < size)
            used += (size_t)snprintf(out + used, size - used, " %s=%s", key, text ? text : "?");
        free(text);
    }
}

/* Five lines per agent: identity and health, version and image, capacity,
 * Claude credentials, settings. */
static int agent_lines(const tui_app *app, size_t i, char lines[5][600])
{
    const agent_entry *a = &app->reg.items[i];
    const tui_job *answer = app->settings.answer;
    json_t *ping = answer && i < answer->n_replies ? answer->replies[i].result : NULL;
    if (answer == NULL) {
        snprintf(lines[0], 600, "%s  %s:%d  asking...", a->id, a->host, a->port);
        return 1;
    }
    if (ping == NULL) {
        snprintf(lines[0], 600, "%s  %s:%d  UNREACHABLE", a->id, a->host, a->port);
        snprintf(lines[1], 600, "    %s", i < answer->n_replies ? answer->replies[i].error : "");
        auth_line(lines[2], sizeof lines[2], answer, i);
        return 3;
    }
    snprintf(lines[0], 600, "%s  %s:%d  up", a->id, a->host, a->port);
    snprintf(lines[1], 600, "    version %s  image %s", str_of(ping, "version"),
             str_of(ping, "image_tag"));
    capacity_line(lines[2], sizeof lines[2], ping);
    auth_line(lines[3], sizeof lines[3], answer, i);
    settings_line(lines[4], sizeof lines[4], answer, i);
    return 5;
}

/* text over as many rows as it needs (up to last), broken at spaces, the
 * rows after the first indented under its first word's end; returns the
 * next free row. */
static int put_wrapped(int row, int x, int w, int last, const char *text)
{
    const char *colon = strchr(text, ':');
    int indent = colon && colon - text < w / 2 ? (int)(colon - text) + 2 : 4;
    char line[600];
    size_t len = strlen(text), at = 0;
    for (bool first = true; at < len && row <= last; first = false) {
        int room = first ? w : w - indent;
        size_t take = len - at;
        if ((int)take > room) {
            take = (size_t)room;
            while (take > 0 && text[at + take] != ' ')
                take--;
            if (take == 0)
                take = (size_t)room; /* one word wider than the box: cut it */
        }
        snprintf(line, sizeof line, "%*s%.*s", first ? 0 : indent, "", (int)take, text + at);
        text_put(row++, x, w, line, A_NORMAL);
        at += take;
        while (at < len && text[at] == ' ')
            at++;
    }
    return row;
}

static void settings_draw(tui_app *app)
{
    int y, x, w, last, inner = 2 + 8 * (int)app->reg.n + (app->reg.n == 0 ? 2 : 0);
    if (!centred_box(inner, &y, &x, &w, &last, "Settings"))
        return;
    int row = y + 1;
    char head[PATH_BUF + 80];
    const char *root = paths_root();
    snprintf(head, sizeof head, "convocate %s   root %s", CONVOCATE_VERSION,
             root && *root ? root : "/");
    text_put(row++, x + 2, w - 4, head, A_BOLD);
    text_put(row++, x + 2, w - 4,
             app->notify_on ? "bell + notification when a session waits: on   (B: turn off)"
                            : "bell + notification when a session waits: off  (B: turn on)",
             A_NORMAL);
    if (app->reg.n == 0)
        text_put(++row, x + 2, w - 4,
                 "No agents registered: add one with 'convocate-host init-agent'.", A_NORMAL);
    for (size_t i = 0; i < app->reg.n; i++) {
        char lines[5][600];
        int n = agent_lines(app, i, lines);
        row++;
        for (int k = 0; k < n && row <= last; k++) {
            if (k == 4) /* the settings: as many rows as they need */
                row = put_wrapped(row, x + 2, w - 4, last, lines[k]);
            else
                text_put(row++, x + 2, w - 4, lines[k], k == 0 ? A_BOLD : A_NORMAL);
        }
    }
}

void dialog_draw(tui_app *app)
{
    if (app->mode == MODE_PICKER)
        picker_draw(app);
    else if (app->mode == MODE_SETTINGS || app->mode == MODE_SETTINGS_EDIT)
        settings_draw(app);
}
