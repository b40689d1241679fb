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

/* 3400 -> "3,400": the filter's counts are read at a glance. */
static void thousands(char *out, size_t size, size_t n)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%zu", n), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
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
    char left[300], right[120];
    size_t waiting = app->table.waiting;
    int n = snprintf(left, sizeof left, " convocate   %zu session%s on %zu agent%s",
                     app->snap.n_rows, app->snap.n_rows == 1 ? "" : "s", app->snap.n_agents,
                     app->snap.n_agents == 1 ? "" : "s");
    if (waiting && n > 0 && (size_t)n < sizeof left)
        n += snprintf(left + n, sizeof left - (size_t)n, "   %zu waiting", waiting);
    if (app->table.filter[0] && n > 0 && (size_t)n < sizeof left) {
        char shown[32], all[32];
        thousands(shown, sizeof shown, app->table.n_shown);
        thousands(all, sizeof all, app->snap.n_rows);
        snprintf(left + n, sizeof left - (size_t)n, "   filter: %s  %s/%s", app->table.filter,
                 shown, all);
    }
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
static void draw_cells(int y, const columns *c, const char *const cells[N_COLS], attr_t attr)
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

/* A table line as drawn: its cells and attributes. Two lines with equal
 * keys look the same, so the frame cache skips drawing the second. */
typedef struct {
    const char *cells[N_COLS];
    attr_t attr, act_attr;
    bool act_over; /* the activity cell drawn again in its own colour */
    char state[2], port[40], when[24], name[200], act[40], cost[40], ctx[40];
} row_look;

static void look_of(row_look *l, const columns *c, const tui_row *row, bool selected)
{
    l->state[0] = row->state;
    l->state[1] = '\0';
    snprintf(l->port, sizeof l->port, "-");
    if (row->port > 0)
        snprintf(l->port, sizeof l->port, "%ld/%s", row->port, row->protocol);
    format_time(l->when, sizeof l->when, row->last_accessed, c->w[COL_LAST]);
    snprintf(l->name, sizeof l->name, "%s%s%s", row->name,
             row->autonomous ? " " AUTONOMOUS_MARK : "", row->error[0] ? " (broken: see get)" : "");
    activity_cells(row, l->act, l->cost, l->ctx, sizeof l->act);
    const char *cells[N_COLS] = {l->state,
                                 row->uuid,
                                 l->name,
                                 row->agent[0] ? row->agent : "-", /* "" for an orphan */
                                 l->port,
                                 l->act,
                                 l->cost,
                                 l->ctx,
                                 row->dns_name[0] ? row->dns_name : "-",
                                 l->when};
    memcpy(l->cells, cells, sizeof cells);
    l->attr = row_attr(row, selected);
    int x = column_x(c, COL_ACT);
    l->act_over = x + c->w[COL_ACT] <= c->width && !row->stale && row->state != 'O';
    l->act_attr = activity_attr(row) | (selected ? A_REVERSE : 0);
}

static void look_key(const row_look *l, char *key, size_t size)
{
    size_t len = (size_t)snprintf(key, size, "%lx|%lx|%d", (unsigned long)l->attr,
                                  (unsigned long)l->act_attr, l->act_over);
    for (int i = 0; i < N_COLS && len < size; i++)
        len += (size_t)snprintf(key + len, size - len, "\x1f%s", l->cells[i]);
}

static void draw_look(int y, const columns *c, const row_look *l)
{
    draw_cells(y, c, l->cells, l->attr);
    if (l->act_over)
        text_put(y, column_x(c, COL_ACT), c->w[COL_ACT], l->act, l->act_attr);
}

static const char *empty_hint(const tui_app *app)
{
    if (app->reg.n == 0)
        return "No agents registered: add one with 'convocate-host init-agent'.";
    if (app->snap.n_agents > 0 && !app->snap.agents[0].tried)
        return "Asking the agents for their sessions...";
    if (app->snap.n_rows > 0)
        return "No session matches the filter: / to change it, Esc there to clear it.";
    return "No sessions yet: press N to create one.";
}

static void adjust_scroll(tui_app *app, int height)
{
    if (height <= 0)
        return;
    if (app->selected < app->top)
        app->top = app->selected;
    if (app->selected >= app->top + (size_t)height)
        app->top = app->selected - (size_t)height + 1;
    /* Rows that went away (filter, deletes) leave no blank screen below. */
    size_t n = app->table.n_shown;
    if (app->top > 0 && app->top + (size_t)height > n)
        app->top = n > (size_t)height ? n - (size_t)height : 0;
}

/* Draws table line i only when it would look different from last time. */
static void put_line(tui_app *app, int i, const char *key, const columns *c, const row_look *l,
                     const char *hint)
{
    tui_frame *f = &app->frame;
    if (i < f->n_keys && f->keys[i] && strcmp(f->keys[i], key) == 0)
        return;
    int y = HEADER_ROWS + i;
    text_put(y, 0, c->width < COLS ? c->width : COLS, "", A_NORMAL);
    if (l)
        draw_look(y, c, l);
    else if (hint)
        text_put(y, 2, c->width - 2, hint, A_DIM);
    if (i < f->n_keys) {
        free(f->keys[i]);
        f->keys[i] = strdup(key); /* out of memory: drawn again next time */
    }
}

static void draw_table(tui_app *app, int width)
{
    columns c = layout(width);
    /* The marker explains itself in the header whenever it is on screen. */
    const char *name_head =
        app->table.any_autonomous ? "NAME (" AUTONOMOUS_MARK " = autonomous)" : "NAME";
    const char *header[N_COLS] = {
        "S",        "UUID", name_head, "AGENT", "PORT",
        "ACTIVITY", "COST", "CTX",     "DNS",   c.w[COL_LAST] >= 16 ? "LAST ACCESSED" : "ACCESSED"};
    draw_cells(1, &c, header, A_BOLD | A_UNDERLINE);
    int height = view_table_height(app);
    adjust_scroll(app, height);
    char key[1024];
    for (int i = 0; i < height; i++) {
        size_t pos = app->top + (size_t)i;
        if (pos < app->table.n_shown) {
            row_look l;
            look_of(&l, &c, app_shown(app, pos), pos == app->selected);
            look_key(&l, key, sizeof key);
            put_line(app, i, key, &c, &l, NULL);
        } else if (i == 1 && app->table.n_shown == 0) {
            snprintf(key, sizeof key, "hint\x1f%s", empty_hint(app));
            put_line(app, i, key, &c, NULL, empty_hint(app));
        } else {
            put_line(app, i, "", &c, NULL, NULL);
        }
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
        "  R restart  W waiting  P preview  > send  / filter  S settings  Q quit",
        " Enter attach N new C clone E edit B bg D del K kill O ovr R restart W wait"
        " P preview > send / filter S settings Q quit",
        " Enter:attach N:new C:clone E:edit B:bg D:delete K:kill O:override R:restart"
        " W:waiting P:preview >:send /:filter S:settings Q:quit",
        "Enter:attach N:new C:clone E:edit B:bg D:del K:kill O:ovr R:rst W:wait P:preview >:send"
        " /:filter S:set Q:quit",
        "Enter:attach N C E B D K O R W:wait P:preview >:send /:filter S:set Q:quit",
        "Enter N C E B D K O R W:wait P:preview >:send /:filter S:set Q:quit",
        " Enter N C E B D K O R W P > / S Q",
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
    case MODE_FILTER:
        return " type to narrow: name, agent or state   Enter keep   Esc clear";
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
    if (app->mode == MODE_FILTER) {
        draw_prompt("/", app->table.filter);
        return;
    }
    const char *status = app->mode == MODE_CONFIRM ? app->confirm.question : app->status;
    attr_t attr =
        app->status_is_error && app->mode != MODE_CONFIRM ? color(PAIR_ERROR, A_BOLD) : A_BOLD;
    text_put(LINES - 1, 0, COLS - 1, status, attr);
}

void view_free(tui_app *app)
{
    for (int i = 0; i < app->frame.n_keys; i++)
        free(app->frame.keys[i]);
    free(app->frame.keys);
    memset(&app->frame, 0, sizeof app->frame);
}

/* The frame cache holds while nothing but the table's own lines can have
 * changed under it: same size, same mode (no dialog opened or closed), same
 * table area. Otherwise the screen is blanked and every line drawn; curses
 * still sends the terminal only what differs. */
static void check_frame(tui_app *app, int table_width)
{
    tui_frame *f = &app->frame;
    int height = view_table_height(app);
    /* A dialog box over the table may shrink or move between draws and
     * leave its old edges on lines the cache thinks unchanged. */
    bool boxed = app->mode == MODE_FORM || app->mode == MODE_PICKER || app->mode == MODE_SETTINGS ||
                 app->mode == MODE_SETTINGS_EDIT;
    if (f->valid && !boxed && f->lines == LINES && f->cols == COLS && f->mode == (int)app->mode &&
        f->table_width == table_width && f->table_height == height)
        return;
    view_free(app);
    erase();
    f->keys = calloc(height > 0 ? (size_t)height : 1, sizeof *f->keys);
    f->n_keys = f->keys ? height : 0;
    f->valid = true;
    f->lines = LINES;
    f->cols = COLS;
    f->mode = (int)app->mode;
    f->table_width = table_width;
    f->table_height = height;
}

void view_draw(tui_app *app)
{
    if (LINES < HEADER_ROWS + FOOTER_ROWS + 1 || COLS < 20) {
        view_free(app);
        erase();
        text_put(0, 0, COLS, "convocate: the terminal is too small", A_BOLD);
        return;
    }
    view_rect pane;
    bool preview = view_preview_rect(app, &pane);
    int table_width = preview && pane.x > 0 ? pane.x - 1 : COLS;
    check_frame(app, table_width);
    draw_title(app);
    draw_table(app, table_width);
    if (preview)
        preview_draw(app, &pane);
    draw_agents(app, LINES - 3);
    text_put(LINES - 2, 0, COLS, key_menu(app->mode), A_REVERSE);
    draw_bottom_line(app);
}
