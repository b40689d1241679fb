#include "shell/tui/view.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int view_table_height(void)
{
    int h = LINES - HEADER_ROWS - FOOTER_ROWS;
    return h > 0 ? h : 0;
}

static void draw_title(const tui_app *app)
{
    attr_t attr = color(PAIR_TITLE, A_REVERSE) | A_BOLD;
    char right[120] = "";
    double load[3];
    char clock[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(clock, sizeof clock, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
    if (getloadavg(load, 3) == 3)
        snprintf(right, sizeof right, "load %.2f %.2f %.2f  %s ", load[0], load[1], load[2], clock);
    else
        snprintf(right, sizeof right, "%s ", clock);
    char left[120];
    snprintf(left, sizeof left, " convocate   %zu session%s on %zu agent%s", app->snap.n_rows,
             app->snap.n_rows == 1 ? "" : "s", app->snap.n_agents,
             app->snap.n_agents == 1 ? "" : "s");
    int rw = text_width(right);
    text_put(0, 0, COLS, left, attr);
    if (rw < COLS)
        text_put(0, COLS - rw, rw, right, attr);
}

/* Column widths for the current terminal width: the fixed columns first,
 * what is left shared between name and DNS name. */
typedef struct {
    int state, uuid, name, agent, port, dns, last;
} columns;

static columns layout(void)
{
    columns c = {1, 8, 0, 8, 9, 0, 16};
    int fixed = 1 + c.state + c.uuid + c.agent + c.port + c.last + 6;
    int rest = COLS - fixed;
    if (rest < 8)
        rest = 8;
    c.name = rest * 55 / 100;
    c.dns = rest - c.name;
    return c;
}

static void draw_cells(int y, const columns *c, const char *cells[7], attr_t attr)
{
    int widths[7] = {c->state, c->uuid, c->name, c->agent, c->port, c->dns, c->last};
    int x = 1;
    text_put(y, 0, 1, "", attr);
    for (int i = 0; i < 7 && x < COLS; i++) {
        int w = widths[i] < COLS - x ? widths[i] : COLS - x;
        text_put(y, x, w, cells[i], attr);
        x += w;
        if (x < COLS)
            text_put(y, x++, 1, "", attr);
    }
    if (x < COLS)
        text_put(y, x, COLS - x, "", attr);
}

static void format_time(char *out, size_t size, const char *rfc3339)
{
    /* "2026-11-24T11:00:00Z" -> "2026-11-24 11:00" (UTC, as stored). */
    if (strlen(rfc3339) >= 16)
        snprintf(out, size, "%.10s %.5s", rfc3339, rfc3339 + 11);
    else
        snprintf(out, size, "%s", rfc3339[0] ? rfc3339 : "-");
}

static attr_t row_attr(const tui_row *row, bool selected)
{
    attr_t attr = A_NORMAL;
    /* Orphans are greyed like an unreachable agent's rows: no agent can act on them. */
    if (row->stale || row->state == 'O')
        attr = color(PAIR_STALE, A_DIM) | (grey_color < 0 ? A_DIM : 0);
    else if (row->state == '?')
        attr = color(PAIR_ERROR, A_BOLD);
    else if (row->state == 'R' || row->state == 'C')
        attr = color(PAIR_RUNNING, A_BOLD);
    else if (row->state == 'L')
        attr = color(PAIR_LOCKED, A_BOLD);
    return selected ? attr | A_REVERSE : attr;
}

static void draw_row(int y, const columns *c, const tui_row *row, bool selected)
{
    char state[2] = {row->state, '\0'}, port[40] = "-", when[24];
    if (row->port > 0)
        snprintf(port, sizeof port, "%ld/%s", row->port, row->protocol);
    format_time(when, sizeof when, row->last_accessed);
    char name[200];
    snprintf(name, sizeof name, "%s%s%s", row->name, row->autonomous ? " " AUTONOMOUS_MARK : "",
             row->error[0] ? " (broken session.json)" : "");
    const char *agent = row->agent[0] ? row->agent : "-"; /* "" for an orphan */
    const char *cells[7] = {
        state, row->uuid, name, agent, port, row->dns_name[0] ? row->dns_name : "-", when};
    draw_cells(y, c, cells, row_attr(row, selected));
}

static void draw_empty_hint(const tui_app *app)
{
    const char *hint;
    if (app->reg.n == 0)
        hint = "No agents registered: add one with 'convocate-host init-agent'.";
    else if (app->snap.n_agents > 0 && !app->snap.agents[0].tried)
        hint = "Asking the agents for their sessions...";
    else
        hint = "No sessions yet: press N to create one.";
    text_put(HEADER_ROWS + 1, 2, COLS - 2, hint, A_DIM);
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

static void draw_table(tui_app *app)
{
    columns c = layout();
    /* The marker explains itself in the header whenever it is on screen. */
    const char *name_head =
        any_autonomous(&app->snap) ? "NAME (" AUTONOMOUS_MARK " = autonomous)" : "NAME";
    const char *header[7] = {"S", "UUID", name_head, "AGENT", "PORT", "DNS", "LAST ACCESSED"};
    draw_cells(1, &c, header, A_BOLD | A_UNDERLINE);
    int height = view_table_height();
    adjust_scroll(app, height);
    if (app->snap.n_rows == 0)
        draw_empty_hint(app);
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

/* One word of health per agent, then the reason the first one is down. */
static void draw_agents(const tui_app *app, int y)
{
    char line[1024];
    size_t len = (size_t)snprintf(line, sizeof line, " agents:");
    const char *reason = NULL;
    bool trouble = false;
    if (app->snap.n_agents == 0)
        snprintf(line + len, sizeof line - len, " none registered (convocate-host init-agent)");
    for (size_t i = 0; i < app->snap.n_agents && len < sizeof line; i++) {
        const tui_agent_view *a = &app->snap.agents[i];
        char word[64];
        agent_health(a, word, sizeof word);
        if (a->tried && !a->reachable && reason == NULL)
            reason = a->error;
        trouble |= agent_in_trouble(a);
        len += (size_t)snprintf(line + len, sizeof line - len, " %s %s%s", a->id, word,
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
        "  R restart  S settings  Q quit",
        " Enter:attach N:new C:clone E:edit B:bg D:delete K:kill O:override R:restart"
        " S:settings Q:quit",
        "Enter:attach N:new C:clone E:edit B:bg D:del K:kill O:ovr R:restart S:set Q:quit",
        " Enter N C E B D K O R S Q",
    };
    switch (mode) {
    case MODE_CONFIRM:
        return " Y yes   N no   Esc cancel";
    case MODE_FORM:
        return " Tab/Shift-Tab move   Space toggles   Enter submit   Esc cancel";
    case MODE_PICKER:
        return " Up/Down choose an agent   Enter create there   Esc cancel";
    case MODE_SETTINGS:
        return " Esc close";
    default:
        break;
    }
    for (size_t i = 0; i + 1 < sizeof table_menus / sizeof *table_menus; i++)
        if (text_width(table_menus[i]) <= COLS)
            return table_menus[i];
    return table_menus[sizeof table_menus / sizeof *table_menus - 1];
}

void view_draw(tui_app *app)
{
    erase();
    if (LINES < HEADER_ROWS + FOOTER_ROWS + 1 || COLS < 20) {
        text_put(0, 0, COLS, "convocate: the terminal is too small", A_BOLD);
        return;
    }
    draw_title(app);
    draw_table(app);
    draw_agents(app, LINES - 3);
    text_put(LINES - 2, 0, COLS, key_menu(app->mode), A_REVERSE);
    const char *status = app->mode == MODE_CONFIRM ? app->confirm.question : app->status;
    attr_t attr =
        app->status_is_error && app->mode != MODE_CONFIRM ? color(PAIR_ERROR, A_BOLD) : A_BOLD;
    text_put(LINES - 1, 0, COLS - 1, status, attr);
}
