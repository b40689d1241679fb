#include "shell/tui/preview.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shell/tui/sgr.h"
#include "shell/tui/text.h"

#define PAIR_BASE 16 /* below are the table's own pairs */
#define PREVIEW_SLACK_MS 150

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static bool is_running(const tui_row *row)
{
    return row->state == 'R' || row->state == 'C';
}

void preview_toggle(tui_app *app)
{
    view_rect r;
    app->preview.pref = view_preview_rect(app, &r) ? 0 : 1;
    if (app->preview.pref == 1 && !view_preview_rect(app, &r))
        app_status(app, true, "The terminal is too small for the preview: make it taller.");
}

void preview_tick(tui_app *app)
{
    view_rect r;
    const tui_row *row = app_selected(app);
    tui_preview *p = &app->preview;
    if (!view_preview_rect(app, &r) || row == NULL || !is_running(row) || p->job_id != 0)
        return;
    bool other = strcmp(p->uuid, row->uuid) != 0;
    /* The main loop wakes on the second: a little slack keeps the pace at
     * one peek a second rather than one every two. */
    if (!other && now_ms() - p->last_asked_ms < PREVIEW_EVERY_MS - PREVIEW_SLACK_MS)
        return;
    agent_entry *agent = registry_find(&app->reg, row->agent);
    tui_job *job = agent ? job_new(JOB_PEEK, "peek") : NULL;
    if (job == NULL || (job->params = json_pack("{s:s}", "id", row->uuid)) == NULL) {
        job_free(job);
        return;
    }
    job->agent = agent;
    snprintf(job->uuid, sizeof job->uuid, "%s", row->uuid);
    snprintf(job->name, sizeof job->name, "%s", row->name);
    p->job_id = jobs_submit(app->jobs, job);
    p->last_asked_ms = now_ms();
}

void preview_job_done(tui_app *app, tui_job *job)
{
    tui_preview *p = &app->preview;
    if (job->id == p->job_id) {
        p->job_id = 0;
        free(p->screen);
        p->screen = NULL;
        p->error[0] = '\0';
        snprintf(p->uuid, sizeof p->uuid, "%s", job->uuid);
        const char *screen = json_string_value(json_object_get(job->result, "screen"));
        if (!job->ok)
            snprintf(p->error, sizeof p->error, "%s", job->error);
        else if (screen == NULL || strlen(screen) > PREVIEW_SCREEN_MAX)
            snprintf(p->error, sizeof p->error, "agent %s answered peek without a usable screen",
                     job->agent->id);
        else if ((p->screen = strdup(screen)) == NULL)
            snprintf(p->error, sizeof p->error, "out of memory");
    }
    job_free(job);
}

void preview_free(tui_app *app)
{
    free(app->preview.screen);
    app->preview.screen = NULL;
}

/* A colour pair for fg/bg (-1 = default), made the first time it is used. */
static short pair_for(int fg, int bg)
{
    static bool made[81];
    if (!has_colors() || (fg < 0 && bg < 0))
        return 0;
    int idx = (fg + 1) * 9 + (bg + 1);
    if (PAIR_BASE + idx >= COLOR_PAIRS)
        return 0;
    if (!made[idx]) {
        init_pair((short)(PAIR_BASE + idx), (short)fg, (short)bg);
        made[idx] = true;
    }
    return (short)(PAIR_BASE + idx);
}

static attr_t style_attr(const sgr_style *st)
{
    attr_t a = A_NORMAL;
    a |= st->bold ? A_BOLD : 0;
    a |= st->dim ? A_DIM : 0;
    a |= st->underline ? A_UNDERLINE : 0;
    a |= st->reverse ? A_REVERSE : 0;
#ifdef A_ITALIC
    a |= st->italic ? A_ITALIC : 0;
#endif
    return a | COLOR_PAIR(pair_for(st->fg, st->bg));
}

/* The length of screen up to the end of its last line that shows text: a
 * tmux pane keeps its blank rows below the cursor (a fresh shell's prompt
 * sits on the first of fifty), and the last rows of those show nothing. */
static size_t shown_length(const char *screen)
{
    size_t len = strlen(screen), end = 0;
    sgr_style st;
    sgr_reset(&st);
    for (size_t k = 0; k < len;) {
        sgr_token kind;
        size_t n = sgr_next(screen + k, len - k, &st, &kind);
        if (kind == SGR_TEXT && strspn(screen + k, " ") < n) {
            const char *nl = memchr(screen + k + n, '\n', len - k - n);
            end = nl ? (size_t)(nl - screen) : len;
        }
        k += n;
    }
    return end;
}

/* Draws the screen's last h lines that show text (where Claude's prompt
 * is) in the box, clipped to w columns, styles carried over from the lines
 * above. */
static void draw_screen(const char *screen, int y, int x, int h, int w)
{
    size_t len = shown_length(screen), lines = 0;
    for (size_t k = 0; k < len; k++)
        lines += screen[k] == '\n';
    if (len > 0 && screen[len - 1] != '\n')
        lines++;
    size_t skip = lines > (size_t)h ? lines - (size_t)h : 0, line = 0;
    sgr_style st;
    sgr_reset(&st);
    int col = 0;
    for (size_t k = 0; k < len;) {
        sgr_token kind;
        size_t n = sgr_next(screen + k, len - k, &st, &kind);
        if (kind == SGR_NEWLINE) {
            line++;
            col = 0;
        } else if (kind == SGR_TEXT && line >= skip && col < w) {
            col += text_put_run(y + (int)(line - skip), x + col, w - col, screen + k, n,
                                style_attr(&st));
        }
        k += n;
    }
}

/* The agent's refusal, verbatim, over as many lines as it needs. */
static void draw_wrapped(const char *text, int y, int x, int h, int w)
{
    for (int line = 0; line < h && *text; line++) {
        size_t n = text_fit(text, w);
        if (n == 0)
            break; /* a character wider than the pane */
        text_put_run(y + line, x, w, text, n, A_BOLD);
        text += n;
    }
}

void preview_draw(tui_app *app, const view_rect *r)
{
    const tui_row *row = app_selected(app);
    const tui_preview *p = &app->preview;
    char title[400];
    /* What the session waits for (the hook's detail) says why it matters. */
    if (row && row->activity.known && row->activity.detail[0] && !row->activity_unknown)
        snprintf(title, sizeof title, "preview: %s (%s: %s)", row->name, row->activity.state,
                 row->activity.detail);
    else
        snprintf(title, sizeof title, "preview: %s", row ? row->name : "no session");
    if (r->h < 3 || r->w < 10)
        return;
    text_box(r->y, r->x, r->h, r->w, title);
    int y = r->y + 1, x = r->x + 1, h = r->h - 2, w = r->w - 2;
    if (row == NULL)
        return;
    if (!is_running(row))
        text_put(y, x, w, "not running", A_DIM);
    else if (strcmp(p->uuid, row->uuid) != 0)
        text_put(y, x, w, "asking...", A_DIM);
    else if (p->error[0])
        draw_wrapped(p->error, y, x, h, w);
    else if (p->screen)
        draw_screen(p->screen, y, x, h, w);
}
