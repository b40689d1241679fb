#include "shell/tui/tui.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wctype.h>

#include "shell/tui/actions.h"
#include "shell/tui/app.h"
#include "shell/tui/dialog.h"
#include "shell/tui/feed.h"
#include "shell/tui/notify.h"
#include "shell/tui/preview.h"
#include "shell/tui/selection.h"
#include "shell/tui/view.h"
#include "shell/tui/settings_edit.h"

#define ESCAPE_DELAY_MS 25 /* long enough for a key's escape sequence, short for Esc itself */
#define STOP_WAIT_MS 500   /* how long Q waits for threads still inside a network call */

void app_status(tui_app *app, bool is_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(app->status, sizeof app->status, fmt, ap);
    va_end(ap);
    app->status_is_error = is_error;
}

static void table_letter_key(tui_app *app, wint_t key)
{
    switch (towlower(key)) {
    case 'n':
        action_new(app);
        break;
    case 'c':
        action_clone(app);
        break;
    case 'e':
        action_edit(app);
        break;
    case 'b':
        action_ask(app, "background");
        break;
    case 'd':
        action_ask(app, "delete");
        break;
    case 'k':
        action_ask(app, "kill");
        break;
    case 'o':
        action_ask(app, "override");
        break;
    case 'r':
        action_ask(app, "restart");
        break;
    case 's':
        action_settings(app);
        break;
    case 'w':
        selection_next_waiting(app);
        break;
    case '/':
        filter_open(app);
        break;
    case 'p':
        preview_toggle(app);
        break;
    case '>':
        action_send_open(app);
        break;
    case 'q':
        app->quit = true;
        break;
    case 0x0c: /* Ctrl-L: repaint, and ask every agent again now */
        clearok(curscr, TRUE);
        model_refresh(app->model, NULL);
        break;
    case '\n':
    case '\r':
        action_attach(app);
        break;
    default:
        break;
    }
}

static void handle_key(tui_app *app, bool is_key, wint_t key)
{
    if (is_key && key == KEY_RESIZE)
        return; /* curses has the new size; the next draw uses it */
    switch (app->mode) {
    case MODE_TABLE:
        if (is_key && key == KEY_ENTER)
            action_attach(app);
        else if (is_key)
            selection_motion_key(app, key);
        else
            table_letter_key(app, key);
        break;
    case MODE_FORM:
        switch (form_key(&app->form, is_key, key)) {
        case FORM_SUBMIT:
            action_submit_form(app);
            break;
        case FORM_CANCEL:
            app->mode = MODE_TABLE;
            app_status(app, false,
                       app->form.pending_job ? "The agent is still working on it."
                                             : "Nothing changed.");
            break;
        default:
            break;
        }
        break;
    case MODE_SEND:
        action_send_key(app, is_key, key);
        break;
    case MODE_SETTINGS_EDIT:
        settings_edit_key(app, is_key, key);
        break;
    case MODE_FILTER:
        filter_key(app, is_key, key);
        break;
    default:
        dialog_key(app, is_key, key);
        break;
    }
}

static void read_keys(tui_app *app)
{
    wint_t key;
    int kind;
    while (!app->quit && (kind = get_wch(&key)) != ERR)
        handle_key(app, kind == KEY_CODE_YES, key);
}

static void drain_notify(tui_app *app)
{
    char drain[256];
    while (read(app->notify_pipe[0], drain, sizeof drain) > 0) {
    }
    tui_job *job;
    while ((job = jobs_take_done(app->jobs)) != NULL)
        action_job_done(app, job);
    selection_sync(app);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* CONVOCATE_TUI_TIMING=FILE: one line per draw, "draw CAUSE MS ROWS SHOWN",
 * MS from the wake-up (a key read, an event) to the screen written; and
 * "first-rows MS" from start to the first screen holding rows. For the
 * bench (bench/rows_tui.py); off, it costs one branch per draw. */
static void log_timing(tui_app *app, const char *cause, double woke_ms, double started_ms)
{
    static bool rows_seen;
    if (app->timing == NULL)
        return;
    double done = now_ms();
    fprintf(app->timing, "draw %s %.3f %zu %zu\n", cause, done - woke_ms, app->snap.n_rows,
            app->table.n_shown);
    if (!rows_seen && app->snap.n_rows > 0) {
        rows_seen = true;
        fprintf(app->timing, "first-rows %.3f\n", done - started_ms);
    }
    fflush(app->timing);
}

static void draw(tui_app *app)
{
    view_draw(app);
    if (app->mode == MODE_FORM)
        form_draw(&app->form);
    else
        dialog_draw(app);
    curs_set(app->mode == MODE_FORM || app->mode == MODE_SEND || app->mode == MODE_SETTINGS_EDIT ||
                     app->mode == MODE_FILTER
                 ? 1
                 : 0);
    refresh();
    notify_flush(app);
}

static int ms_to_next_second(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int)(1000 - now.tv_nsec / 1000000L);
}

static void main_loop(tui_app *app, tui_feed *feed, double started_ms)
{
    time_t last_feed_try = 0;
    const char *cause = "start";
    double woke = started_ms;
    while (!app->quit) {
        preview_tick(app);
        draw(app);
        log_timing(app, cause, woke, started_ms);
        struct pollfd pfd[3] = {
            {.fd = STDIN_FILENO, .events = POLLIN},
            {.fd = app->notify_pipe[0], .events = POLLIN},
            {.fd = feed->fd, .events = POLLIN},
        };
        int n = poll(pfd, 3, ms_to_next_second());
        if (n < 0 && errno != EINTR)
            break;
        woke = now_ms();
        cause = pfd[0].revents ? "key" : n > 0 ? "event" : "tick";
        if (pfd[1].revents & POLLIN)
            drain_notify(app);
        if (feed->fd >= 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
            feed_on_readable(feed, app->model);
        read_keys(app); /* also after EINTR: a SIGWINCH arrives as KEY_RESIZE */
        if (n == 0) {
            selection_sync(app); /* the 1 s tick: clock, load, "not answering" timers */
            time_t now = time(NULL);
            if (feed->fd < 0 && now - last_feed_try >= FEED_RETRY_S) {
                last_feed_try = now;
                feed_try_connect(feed);
            }
        }
    }
}

/* Names and keys are UTF-8; a bare "C" locale would garble them. */
static void use_utf8_locale(void)
{
    setlocale(LC_ALL, "");
    if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C.UTF-8");
}

static void start_curses(void)
{
    set_escdelay(ESCAPE_DELAY_MS);
    initscr();
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    view_init_colors();
}

static int open_app(tui_app *app)
{
    char err[512];
    memset(app, 0, sizeof *app);
    app->notify_pipe[0] = app->notify_pipe[1] = -1;
    if (registry_load(&app->reg, err, sizeof err) < 0) {
        fprintf(stderr, "convocate: %s\n", err);
        return -1;
    }
    if (pipe2(app->notify_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        fprintf(stderr, "convocate: pipe: %s\n", strerror(errno));
        return -1;
    }
    app->model = model_start(&app->reg, app->notify_pipe[1]);
    app->jobs = jobs_new(app->notify_pipe[1]);
    if (app->model == NULL || app->jobs == NULL) {
        fprintf(stderr, "convocate: out of memory starting the terminal UI\n");
        return -1;
    }
    app->notify_on = notify_load();
    const char *timing = getenv("CONVOCATE_TUI_TIMING");
    if (timing && timing[0] == '/')
        app->timing = fopen(timing, "ae");
    app->preview.pref = -1;
    selection_sync(app);
    if (app->reg.n == 0)
        app_status(app, true, "No agents registered: add one with 'convocate-host init-agent'.");
    else
        app_status(app, false, "Asking %zu agent%s for their sessions...", app->reg.n,
                   app->reg.n == 1 ? "" : "s");
    return 0;
}

/* Threads still inside a network call keep the registry and the pipe: the
 * process is about to exit and the kernel takes them back. */
static void close_app(tui_app *app)
{
    bool model_done = app->model == NULL || model_stop(app->model, STOP_WAIT_MS);
    bool jobs_done = app->jobs == NULL || jobs_stop(app->jobs, STOP_WAIT_MS);
    job_free(app->settings.answer);
    preview_free(app);
    view_free(app);
    table_free(&app->table);
    snapshot_free(&app->snap);
    if (app->timing)
        fclose(app->timing); /* only the UI thread writes it */
    if (!model_done || !jobs_done)
        return;
    registry_free(&app->reg);
    for (int i = 0; i < 2; i++)
        if (app->notify_pipe[i] >= 0)
            close(app->notify_pipe[i]);
}

int tui_run(void)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "convocate: the terminal UI needs a terminal; use 'convocate ls' and "
                        "the other commands in scripts (see 'convocate help')\n");
        return 1;
    }
    double started_ms = now_ms();
    use_utf8_locale();
    tui_app *app = calloc(1, sizeof *app);
    if (app == NULL) {
        fprintf(stderr, "convocate: out of memory\n");
        return 1;
    }
    int rc = 1;
    if (open_app(app) == 0) {
        tui_feed feed;
        feed_init(&feed);
        feed_try_connect(&feed);
        start_curses();
        main_loop(app, &feed, started_ms);
        endwin();
        feed_close(&feed);
        rc = 0;
    }
    close_app(app);
    free(app);
    return rc;
}
