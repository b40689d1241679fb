#include "shell/tui/view.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shell/tui/preview.h"
#include "shell/tui/text.h"

enum { PAIR_TITLE = 1, PAIR_ERROR, PAIR_STALE, PAIR_RUNNING, PAIR_LOCKED };

#define HEADER_ROWS 2 /* title bar, column names */
/* Beside the name of a session whose Claude runs without permission prompts. */
#define AUTONOMOUS_MARK "[A]"
#define FOOTER_ROWS 3 /* agents, key menu, status line */

static bool have_colors;
static int grey_color = -1;

void view_init_colors(void)
{
    if (!has_colors() || start_color() == ERR)
        return;
    use_default_colors();
    have_colors = true;
    /* Colour 8 is bright black (grey) on 16-colour terminals. */
    grey_color = COLORS >= 16 ? 8 : -1;
    init_pair(PAIR_TITLE, COLOR_BLACK, COLOR_CYAN);
    init_pair(PAIR_ERROR, COLOR_RED, -1);
    init_pair(PAIR_STALE, grey_color >= 0 ? (short)grey_color : COLOR_WHITE, -1);
    init_pair(PAIR_RUNNING, COLOR_GREEN, -1);
    init_pair(PAIR_LOCKED, COLOR_YELLOW, -1);
}

static attr_t color(int pair, attr_t fallback)
{
    return have_colors ? COLOR_PAIR(pair) : fallback;
}

static size_t count_waiting(const tui_snapshot *snap)
{
    size_t waiting = 0;
    for (size_t i = 0; i < snap->n_rows; i++)
        waiting += activity_is_waiting(&snap->rows[i].activity) && !snap->rows[i].activity_unknown;
    return waiting;
}

/* Load and clock on the right, as much of them as leaves the left part
 * (the counts, "N waiting" above all) whole. */
static void title_right(char *out, size_t size, int room)
{
    double load[3];
    char clock[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(clock, sizeof clock, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
    if (getloadavg(load, 3) == 3) {
        snprintf(out, size, "load %.2f %.2f %.2f  %s ", load[0], load[1], load[2], clock);
        if (text_width(out) <= room)
            return;
        snprintf(out, size, "load %.2f  %s ", load[0], clock + 11);
        if (text_width(out) <= room)
            return;
    }
    snprintf(out, size, "%s ", clock + 11);
    if (text_width(out) > room)
        out[0] = '\0';
}

static void draw_title(const tui_app *app)
{
    attr_t attr = color(PAIR_TITLE, A_REVERSE) | A_BOLD;
    char left[160], right[120];
    size_t waiting = count_waiting(&app->snap);
    int n = snprintf(left, sizeof left, " convocate   %zu session%s on %zu agent%s",
                     app->snap.n_rows, app->snap.n_rows == 1 ? "" : "s", app->snap.n_agents,
                     app->snap.n_agents == 1 ? "" : "s");
    if (waiting && n > 0 && (size_t)n < sizeof left)
        snprintf(left + n, sizeof left - (size_t)n, "   %zu waiting", waiting);
    title_right(right, sizeof right, COLS - text_width(left) - 2);
    int rw = text_width(right);
    text_put(0, 0, COLS, left, attr);
    if (rw > 0 && rw < COLS)
        text_put(0, COLS - rw, rw, right, attr);
}

/* Column widths for a table width: the fixed columns first, what is left
 * shared between name and DNS name, 60:40. Cost and context appear from
 * WIDE_COLS on, the long date from DATE_COLS on; 80 columns still hold the
 * rest with a name of 12 columns. */
enum {
    COL_STATE,
    COL_UUID,
    COL_NAME,
    COL_AGENT,
    COL_PORT,
    COL_ACT,
    COL_COST,
    COL_CTX,
    COL_DNS,
    COL_LAST,
    N_COLS
};
#define WIDE_COLS 120
#define DATE_COLS 100
#define ACTIVITY_COLS 11 /* "working 59s", "unknown" */

typedef struct {
    int w[N_COLS];
    int width; /* of the whole table */
} columns;

static columns layout(int width)
{
    bool wide = width >= WIDE_COLS;
    columns c = {
        {1, 8, 0, 8, 9, ACTIVITY_COLS, wide ? 7 : 0, wide ? 4 : 0, 0, width >= DATE_COLS ? 16 : 11},
        width};
    int fixed = 1, shown = 0;
    for (int i = 0; i < N_COLS; i++) {
        fixed += c.w[i];
        shown += c.w[i] > 0 || i == COL_NAME || i == COL_DNS;
    }
    int rest = width - fixed - (shown - 1);
    if (rest < 8)
        rest = 8;
    c.w[COL_NAME] = rest * 60 / 100;
    c.w[COL_DNS] = rest - c.w[COL_NAME];
    return c;
}

/* Draws the cells that have a width; returns nothing, clips at c->width. */
static void draw_cells(int y, const columns *c, const char *cells[N_COLS], attr_t attr)
{
    int x = 1, right = c->width < COLS ? c->width : COLS;
    text_put(y, 0, 1, "", attr);
    for (int i = 0; i < N_COLS && x < right; i++) {
        if (c->w[i] == 0)
            continue;
        int w = c->w[i] < right - x ? c->w[i] : right - x;
        text_put(y, x, w, cells[i], attr);
        x += w;
        if (x < right)
            text_put(y, x++, 1, "", attr);
    }
    if (x < right)
        text_put(y, x, right - x, "", attr);
}

/* Where a column starts, for drawing one cell over the row. */
static int column_x(const columns *c, int col)
{
    int x = 1;
    for (int i = 0; i < col; i++)
        if (c->w[i] > 0)
            x += c->w[i] + 1;
    return x;
}

static void format_time(char *out, size_t size, const char *rfc3339, int width)
{
    /* "2026-11-24T11:00:00Z" -> "2026-11-24 11:00", or "11-24 11:00" when
     * narrow (UTC, as stored). */
    if (strlen(rfc3339) >= 16 && width >= 16)
        snprintf(out, size, "%.10s %.5s", rfc3339, rfc3339 + 11);
    else if (strlen(rfc3339) >= 16)
        snprintf(out, size, "%.5s %.5s", rfc3339 + 5, rfc3339 + 11);
    else
        snprintf(out, size, "%s", rfc3339[0] ? rfc3339 : "-");
}

static attr_t row_attr(const tui_row *row, bool selected)
{
    attr_t attr = A_NORMAL;
    /* Orphans are greyed like an unreachable agent's rows: no agent can act on them. */
    if (row->stale || row->state == 'O')
        attr = color(PAIR_STALE, A_DIM) | (grey_color < 0 ? A_DIM : 0);
    else if (row->state == '!')
        attr = color(PAIR_ERROR, A_BOLD);
    else if (row->state == 'R' || row->state == 'C')
        attr = color(PAIR_RUNNING, A_BOLD);
    else if (row->state == 'L')
        attr = color(PAIR_LOCKED, A_BOLD);
    return selected ? attr | A_REVERSE : attr;
}

/* The activity cell's colour (docs/decisions.md): waiting yellow and bold,
 * working green, idle plain, exited red, shell and unknown dim; no activity
 * ("-") plain like every other empty cell, so only a stale row looks grey. */
static attr_t activity_attr(const tui_row *row)
{
    const tui_activity *a = &row->activity;
    attr_t dim = color(PAIR_STALE, A_DIM) | (grey_color < 0 ? A_DIM : 0);
    if (row->activity_unknown || (a->known && strcmp(a->state, "shell") == 0))
        return dim;
    if (!a->known)
        return A_NORMAL;
    if (strcmp(a->state, "waiting") == 0)
        return color(PAIR_LOCKED, A_BOLD) | A_BOLD;
    if (strcmp(a->state, "working") == 0)
        return color(PAIR_RUNNING, A_NORMAL);
    if (strcmp(a->state, "exited") == 0)
        return color(PAIR_ERROR, A_BOLD);
    return A_NORMAL;
}

static void activity_cells(const tui_row *row, char *act, char *cost, char *ctx, size_t size)
{
    const tui_activity *a = &row->activity;
    if (row->activity_unknown) /* SPEC 16: a silent agent's word is no longer known */
        snprintf(act, size, "unknown");
    else
        activity_words(act, size, a, time(NULL));
    snprintf(cost, size, "-");
    snprintf(ctx, size, "-");
    if (a->known && a->has_cost)
        snprintf(cost, size, a->cost_usd < 100 ? "$%.2f" : "$%.0f", a->cost_usd);
    if (a->known && a->has_context)
        snprintf(ctx, size, "%.0f%%", a->context_pct);
}

static void draw_row(int y, const columns *c, const tui_row *row, bool selected)
{
    char state[2] = {row->state, '\0'}, port[40] = "-", when[24];
    if (row->port > 0)
        snprintf(port, sizeof port, "%ld/%s", row->port, row->protocol);
    format_time(when, sizeof when, row->last_accessed, c->w[COL_LAST]);
    char name[200], act[40], cost[40], ctx[40];
    snprintf(name, sizeof name, "%s%s%s", row->name, row->autonomous ? " " AUTONOMOUS_MARK : "",
             row->error[0] ? " (broken: see get)" : "");
    activity_cells(row, act, cost, ctx, sizeof act);
    const char *agent = row->agent[0] ? row->agent : "-"; /* "" for an orphan */
    const char *cells[N_COLS] = {
        state, row->uuid, name, agent, port, act, cost, ctx, row->dns_name[0] ? row->dns_name : "-",
        when};
    attr_t attr = row_attr(row, selected);
    draw_cells(y, c, cells, attr);
    int x = column_x(c, COL_ACT);
    if (x + c->w[COL_ACT] <= c->width && !row->stale && row->state != 'O')
        text_put(y, x, c->w[COL_ACT], act, activity_attr(row) | (selected ? A_REVERSE : 0));
}

static void draw_empty_hint(const tui_app *app, int width)
{
    const char *hint;
    if (app->reg.n == 0)
        hint = "No agents registered: add one with 'convocate-host init-agent'.";
    else if (app->snap.n_agents > 0 && !app->snap.agents[0].tried)
        hint = "Asking the agents for their sessions...";
    else
        hint = "No sessions yet: press N to create one.";
    text_put(HEADER_ROWS + 1, 2, width - 2, hint, A_DIM);
}

static void adjust_scroll(tui_app *app, int height)
{
    if (height <= 0)
        return;
    if (app->selected < app->top)
        app->top = app->selected;
    if (app->selected >= app->top + (size_t)height)
        app->top = app->selected - (size_t)height + 1;
}

static bool any_autonomous(const tui_snapshot *snap)
{
    for (size_t i = 0; i < snap->n_rows; i++)
        if (snap->rows[i].autonomous)
            return true;
    return false;
}

static void draw_table(tui_app *app, int width)
{
    columns c = layout(width);
    /* The marker explains itself in the header whenever it is on screen. */
    const char *name_head =
        any_autonomous(&app->snap) ? "NAME (" AUTONOMOUS_MARK " = autonomous)" : "NAME";
    const char *header[N_COLS] = {
        "S",        "UUID", name_head, "AGENT", "PORT",
        "ACTIVITY", "COST", "CTX",     "DNS",   c.w[COL_LAST] >= 16 ? "LAST ACCESSED" : "ACCESSED"};
    draw_cells(1, &c, header, A_BOLD | A_UNDERLINE);
    int height = view_table_height(app);
    adjust_scroll(app, height);
    if (app->snap.n_rows == 0)
        draw_empty_hint(app, width);
    for (int i = 0; i < height; i++) {
        size_t k = app->top + (size_t)i;
        if (k >= app->snap.n_rows)
            break;
        draw_row(HEADER_ROWS + i, &c, &app->snap.rows[k], k == app->selected);
    }
}

static void agent_health(const tui_agent_view *a, char *word, size_t size)
{
    if (a->pending_s >= TUI_SLOW_S)
        snprintf(word, size, "NOT ANSWERING (%lds)", a->pending_s);
    else if (!a->tried)
        snprintf(word, size, "asking...");
    else if (!a->reachable)
        snprintf(word, size, "UNREACHABLE");
    else if (a->silent)
        snprintf(word, size, "SILENT");
    else
        snprintf(word, size, "up");
}

static bool agent_in_trouble(const tui_agent_view *a)
{
    return a->pending_s >= TUI_SLOW_S || a->silent || (a->tried && !a->reachable);
}

/* "cpu 12/90% mem 40/90% 3 sess": load against the admission cap (SPEC 10). */
static void capacity_gauge(const tui_agent_view *a, char *out, size_t size)
{
    const tui_capacity *c = &a->capacity;
    out[0] = '\0';
    if (c->known && a->reachable)
        snprintf(out, size, " [cpu %.0f/%ld%% mem %.0f/%ld%% %ld sess]", c->cpu_pct,
                 c->threshold_pct, c->mem_pct, c->threshold_pct, c->sessions);
}

/* One word of health and a capacity gauge per agent, then the reason the
 * first one is down. */
static void draw_agents(const tui_app *app, int y)
{
    char line[2048];
    size_t len = (size_t)snprintf(line, sizeof line, " agents:");
    const char *reason = NULL;
    bool trouble = false;
    if (app->snap.n_agents == 0)
        snprintf(line + len, sizeof line - len, " none registered (convocate-host init-agent)");
    for (size_t i = 0; i < app->snap.n_agents && len < sizeof line; i++) {
        const tui_agent_view *a = &app->snap.agents[i];
        char word[64], gauge[96];
        agent_health(a, word, sizeof word);
        capacity_gauge(a, gauge, sizeof gauge);
        if (a->tried && !a->reachable && reason == NULL)
            reason = a->error;
        trouble |= agent_in_trouble(a);
        len += (size_t)snprintf(line + len, sizeof line - len, " %s %s%s%s", a->id, word, gauge,
                                i + 1 < app->snap.n_agents ? "," : "");
    }
    if (reason && len < sizeof line)
        snprintf(line + len, sizeof line - len, "  (%s)", reason);
    text_put(y, 0, COLS, line, trouble ? color(PAIR_ERROR, A_BOLD) : A_NORMAL);
}

static const char *key_menu(tui_mode mode)
{
    static const char *table_menus[] = {
        " Enter attach  N new  C clone  E edit  B background  D delete  K kill  O override"
        "  R restart  W waiting  P preview  > send  S settings  Q quit",
        " Enter attach N new C clone E edit B bg D del K kill O override R restart W wait"
        " P preview > send S settings Q quit",
        " Enter:attach N:new C:clone E:edit B:bg D:delete K:kill O:override R:restart"
        " W:waiting P:preview >:send S:settings Q:quit",
        "Enter:attach N:new C:clone E:edit B:bg D:del K:kill O:ovr R:rst W:wait P:preview >:send"
        " S:set Q:quit",
        "Enter N C E B D K O R W:wait P:preview >:send S:set Q:quit",
        " Enter N C E B D K O R W P > S Q",
    };
    switch (mode) {
    case MODE_CONFIRM:
        return " Y yes   N no   Esc cancel";
    case MODE_FORM:
        return " Tab/Shift-Tab move   Space toggles   Enter submit   Esc cancel";
    case MODE_PICKER:
        return " Up/Down choose an agent   Enter create there   Esc cancel";
    case MODE_SETTINGS:
        return " E change an agent's settings   B bell+notification on/off   Esc close";
    case MODE_SETTINGS_EDIT:
        return " KEY=VALUE ...   Enter save   Esc back";
    case MODE_SEND:
        return " Enter send (with Enter)   Esc cancel";
    default:
        break;
    }
    for (size_t i = 0; i + 1 < sizeof table_menus / sizeof *table_menus; i++)
        if (text_width(table_menus[i]) <= COLS)
            return table_menus[i];
    return table_menus[sizeof table_menus / sizeof *table_menus - 1];
}

bool view_preview_rect(const tui_app *app, view_rect *r)
{
    bool wide = COLS >= PREVIEW_AUTO_COLS;
    if (app->preview.pref == 0 || (app->preview.pref < 0 && !wide))
        return false;
    int area = LINES - HEADER_ROWS - FOOTER_ROWS;
    if (wide) { /* beside the table, from the column names down */
        int table = COLS / 2 > 80 ? COLS / 2 : 80;
        *r = (view_rect){1, table, area + 1, COLS - table};
        return true;
    }
    if (area < 10)
        return false; /* too short to share: the table wins */
    int table_rows = area / 3;
    *r = (view_rect){HEADER_ROWS + table_rows, 0, area - table_rows, COLS};
    return true;
}

int view_table_height(const tui_app *app)
{
    int h = LINES - HEADER_ROWS - FOOTER_ROWS;
    view_rect r;
    if (view_preview_rect(app, &r) && r.x == 0)
        h = r.y - HEADER_ROWS;
    return h > 0 ? h : 0;
}

/* A prompt and the line typed after it, the cursor at its end. */
static void draw_prompt(const char *prompt, const char *typed)
{
    int pw = text_width(prompt);
    text_put(LINES - 1, 0, COLS - 1, prompt, A_BOLD);
    /* The end of a long line stays in sight, with the cursor after it. */
    const char *shown = text_tail(typed, COLS - 2 - pw);
    if (pw < COLS - 1)
        text_put(LINES - 1, pw, COLS - 1 - pw, shown, A_NORMAL);
    int cx = pw + text_width(shown);
    move(LINES - 1, cx < COLS - 1 ? cx : COLS - 2);
}

static void draw_bottom_line(tui_app *app)
{
    char prompt[300];
    if (app->mode == MODE_SEND) {
        snprintf(prompt, sizeof prompt, "send to %s> ", app->send.row.name);
        draw_prompt(prompt, app->send.text);
        return;
    }
    if (app->mode == MODE_SETTINGS_EDIT) {
        snprintf(prompt, sizeof prompt, "settings of %s> ", app->settings_edit.agent);
        draw_prompt(prompt, app->settings_edit.text);
        return;
    }
    const char *status = app->mode == MODE_CONFIRM ? app->confirm.question : app->status;
    attr_t attr =
        app->status_is_error && app->mode != MODE_CONFIRM ? color(PAIR_ERROR, A_BOLD) : A_BOLD;
    text_put(LINES - 1, 0, COLS - 1, status, attr);
}

void view_draw(tui_app *app)
{
    erase();
    if (LINES < HEADER_ROWS + FOOTER_ROWS + 1 || COLS < 20) {
        text_put(0, 0, COLS, "convocate: the terminal is too small", A_BOLD);
        return;
    }
    draw_title(app);
    view_rect pane;
    bool preview = view_preview_rect(app, &pane);
    draw_table(app, preview && pane.x > 0 ? pane.x - 1 : COLS);
    if (preview)
        preview_draw(app, &pane);
    draw_agents(app, LINES - 3);
    text_put(LINES - 2, 0, COLS, key_menu(app->mode), A_REVERSE);
    draw_bottom_line(app);
}
