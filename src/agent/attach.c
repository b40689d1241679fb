/* The attach relay (SPEC 9): the convocate-agent-attach subsystem.
 *
 * One header line in; on a worker thread the preparation (start the
 * container when stopped, then an Engine API exec of tmux attach with a
 * TTY, engine/exec_tty.h); then bytes both ways between the channel and the
 * exec's hijacked stream in the connection's loop, never more than the SSH
 * window or the socket takes. A window-change resizes the exec through the
 * engine, one call in flight at a time and always the latest size. When the
 * stream ends, a worker asks the engine why, so an operator whose engine
 * went away reads that before the channel closes. Nothing here ever stops
 * the container. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/attach.h"
#include "agent/ops.h"
#include "common/ids.h"
#include "common/log.h"
#include "engine/exec_tty.h"
#include "proto/attach_header.h"
#include "proto/rpc.h"

#define RELAY_BUF 16384
#define RELAY_READS_PER_ROUND 8

enum attach_phase { ATTACH_HEADER, ATTACH_PREPARING, ATTACH_RELAY, ATTACH_ENDING, ATTACH_DONE };

typedef struct {
    agent *a;
    enum attach_phase phase;
    char header[ATTACH_HEADER_MAX];
    size_t header_used;
    attach_header hdr;
    char to_tty[RELAY_BUF]; /* operator keystrokes not yet sent to the exec */
    size_t to_tty_used;
    bool client_eof;
    int prepare_rc; /* set by the worker */
    char error[256];
    docker_tty tty;
    bool tty_open;
    bool entered; /* counted in agent_attach_enter() */
    /* Resizes: the latest size asked for (0 = none), the one the engine has,
     * and the one a worker is applying now. */
    int want_cols, want_rows;
    int have_cols, have_rows;
    int job_cols, job_rows;
    bool resizing;
    docker_tty_end end; /* why the stream ended, from the ending worker */
    char name[SESSION_NAME_MAX + 1];
} attach_chan;

static void *attach_open(lchan *ch, void *app)
{
    /* Its header and keystroke buffers count against the connection's
     * input budget. */
    if (lchan_hold_input(ch, ATTACH_HEADER_MAX + RELAY_BUF) < 0)
        return NULL;
    attach_chan *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->a = app;
    st->tty.fd = -1;
    return st;
}

static void attach_fail(lchan *ch, attach_chan *st, const char *why)
{
    log_info("%s: attach refused: %s", lchan_name(ch), why);
    st->phase = ATTACH_DONE;
    lchan_reply_and_close(ch, rpc_response_error(why));
}

static void attach_leave(attach_chan *st)
{
    if (st->entered) {
        agent_attach_leave(st->a, st->hdr.id);
        st->entered = false;
    }
}

/* ---- the end of a relay ---- */

static void close_tty_work(void *arg)
{
    attach_chan *st = arg;
    docker_tty_close(st->a->docker, &st->tty);
}

/* Closes the exec's stream off the connection thread: it asks the engine. */
static void attach_close_tty(lchan *ch, attach_chan *st)
{
    if (!st->tty_open)
        return;
    st->tty_open = false;
    if (lchan_run_job(ch, close_tty_work, NULL, st) < 0)
        docker_tty_close(st->a->docker, &st->tty);
}

/* The operator's side ended the relay (EOF, channel closed). */
static void attach_end_relay(lchan *ch, attach_chan *st, const char *why)
{
    if (st->phase != ATTACH_RELAY)
        return;
    log_info("%s: attach to %s ended: %s", lchan_name(ch), st->hdr.id, why);
    st->phase = ATTACH_DONE;
    lchan_watch_fd(ch, st->tty.fd, 0);
    attach_leave(st);
    attach_close_tty(ch, st);
    lchan_close(ch);
}

static void stream_end_work(void *arg)
{
    attach_chan *st = arg;
    st->end = docker_tty_why_ended(st->a->docker, st->hdr.id, st->tty.exec_id);
    docker_tty_close(st->a->docker, &st->tty);
}

static void stream_end_done(lchan *ch, void *arg, void *state)
{
    attach_chan *st = arg;
    char line[160];
    (void)state;
    st->phase = ATTACH_DONE;
    line[0] = '\0';
    if (st->end == TTY_END_ENGINE_GONE)
        snprintf(line, sizeof line,
                 "\r\nconvocate: the container engine went away; session %s ended\r\n", st->name);
    else if (st->end == TTY_END_CONTAINER_ENDED)
        snprintf(line, sizeof line, "\r\nconvocate: session %s ended\r\n", st->name);
    log_info("%s: attach to %s ended: %s", lchan_name(ch), st->hdr.id,
             st->end == TTY_END_DETACHED      ? "detached"
             : st->end == TTY_END_ENGINE_GONE ? "the container engine went away"
                                              : "the container ended");
    if (line[0] != '\0' && !lchan_is_closing(ch))
        lchan_write(ch, line, strlen(line));
    lchan_close(ch);
}

/* The exec's side ended the stream (detach, container or engine gone). */
static void attach_stream_ended(lchan *ch, attach_chan *st)
{
    st->phase = ATTACH_ENDING;
    lchan_watch_fd(ch, st->tty.fd, 0);
    attach_leave(st);
    st->tty_open = false;
    if (lchan_run_job(ch, stream_end_work, stream_end_done, st) < 0) {
        docker_tty_close(st->a->docker, &st->tty);
        st->phase = ATTACH_DONE;
        lchan_close(ch);
    }
}

/* ---- resizes ---- */

static void resize_work(void *arg)
{
    attach_chan *st = arg;
    char err[256];
    if (docker_tty_resize(st->a->docker, st->tty.exec_id, st->job_cols, st->job_rows, err,
                          sizeof err) < 0)
        log_info("attach %s: %s", st->hdr.id, err);
}

static void attach_apply_size(lchan *ch, attach_chan *st);

static void resize_done(lchan *ch, void *arg, void *state)
{
    attach_chan *st = arg;
    (void)state;
    st->resizing = false;
    st->have_cols = st->job_cols;
    st->have_rows = st->job_rows;
    attach_apply_size(ch, st); /* a newer size may have come meanwhile */
}

/* Starts a resize when the latest wanted size is not the engine's. */
static void attach_apply_size(lchan *ch, attach_chan *st)
{
    if (st->phase != ATTACH_RELAY || !st->tty_open || st->resizing || st->want_cols == 0 ||
        (st->want_cols == st->have_cols && st->want_rows == st->have_rows))
        return;
    st->job_cols = st->want_cols;
    st->job_rows = st->want_rows;
    st->resizing = true;
    if (lchan_run_job(ch, resize_work, resize_done, st) < 0) {
        st->resizing = false;
        log_info("%s: resize: no worker thread", lchan_name(ch));
    }
}

/* ---- preparation ---- */

static void attach_prepare_work(void *arg)
{
    attach_chan *st = arg;
    store_entry e;
    char ignored[256];
    snprintf(st->name, sizeof st->name, "%s", st->hdr.id);
    st->prepare_rc = agent_attach_prepare(st->a, st->hdr.id, st->error, sizeof st->error);
    if (st->prepare_rc != 0)
        return;
    if (store_get(st->a->store, st->hdr.id, &e, ignored, sizeof ignored) == 0) {
        if (e.valid)
            snprintf(st->name, sizeof st->name, "%s", e.meta.name);
        store_entry_clear(&e);
    }
    st->prepare_rc = docker_tty_open(st->a->docker, st->hdr.id, st->hdr.cols, st->hdr.rows,
                                     &st->tty, st->error, sizeof st->error);
    st->tty_open = st->prepare_rc == 0;
}

static void attach_prepare_done(lchan *ch, void *arg, void *state)
{
    attach_chan *st = arg;
    (void)state;
    if (lchan_is_closing(ch) || st->client_eof) {
        st->phase = ATTACH_DONE;
        attach_close_tty(ch, st);
        lchan_close(ch);
        return;
    }
    if (st->prepare_rc != 0) {
        attach_fail(ch, st, st->error[0] ? st->error : "attach failed");
        return;
    }
    st->phase = ATTACH_RELAY;
    agent_attach_enter(st->a, st->hdr.id);
    st->entered = true;
    st->have_cols = st->hdr.cols;
    st->have_rows = st->hdr.rows;
    if (st->tty.early_len > 0 && lchan_write(ch, st->tty.early, st->tty.early_len) < 0)
        log_warn("%s: out of memory relaying the first bytes", lchan_name(ch));
    attach_apply_size(ch, st);
    log_info("%s: attached to %s (exec %.12s, %dx%d)", lchan_name(ch), st->hdr.id, st->tty.exec_id,
             st->hdr.cols, st->hdr.rows);
}

/* ---- the channel callbacks ---- */

static void attach_take_header(lchan *ch, attach_chan *st)
{
    char *nl = memchr(st->header, '\n', st->header_used);
    if (nl == NULL) {
        if (st->header_used >= ATTACH_HEADER_MAX)
            attach_fail(ch, st, "attach header too long");
        return;
    }
    size_t line_len = (size_t)(nl - st->header);
    char err[256];
    if (attach_header_decode(st->header, line_len, &st->hdr, err, sizeof err) < 0) {
        attach_fail(ch, st, err);
        return;
    }
    /* Bytes after the header are the operator's first keystrokes. */
    size_t rest = st->header_used - line_len - 1;
    memcpy(st->to_tty, nl + 1, rest);
    st->to_tty_used = rest;
    st->phase = ATTACH_PREPARING;
    if (lchan_run_job(ch, attach_prepare_work, attach_prepare_done, st) < 0)
        attach_fail(ch, st, "agent busy: cannot start a worker, try again");
}

static size_t attach_room(void *state)
{
    attach_chan *st = state;
    switch (st->phase) {
    case ATTACH_HEADER:
        return sizeof st->header - st->header_used;
    case ATTACH_PREPARING:
    case ATTACH_RELAY:
        return sizeof st->to_tty - st->to_tty_used;
    default:
        return 0;
    }
}

static void attach_input(lchan *ch, const void *buf, size_t len, void *state)
{
    attach_chan *st = state;
    if (st->phase == ATTACH_HEADER) {
        memcpy(st->header + st->header_used, buf, len);
        st->header_used += len;
        attach_take_header(ch, st);
    } else if (st->phase == ATTACH_PREPARING || st->phase == ATTACH_RELAY) {
        memcpy(st->to_tty + st->to_tty_used, buf, len);
        st->to_tty_used += len;
    }
}

static void attach_eof(lchan *ch, void *state)
{
    attach_chan *st = state;
    st->client_eof = true;
    if (st->phase == ATTACH_HEADER)
        attach_fail(ch, st, "attach header missing");
    else if (st->phase == ATTACH_RELAY)
        attach_end_relay(ch, st, "operator sent EOF");
}

/* Runs inside libssh's callback: only records the size; pump applies it. */
static int attach_window_change(lchan *ch, int cols, int rows, void *state)
{
    attach_chan *st = state;
    (void)ch;
    if (cols < 1 || rows < 1 || cols > EXEC_TTY_SIZE_MAX || rows > EXEC_TTY_SIZE_MAX)
        return -1;
    st->want_cols = cols;
    st->want_rows = rows;
    return 0;
}

/* Operator -> exec. Returns false when the stream is gone. */
static bool relay_to_tty(attach_chan *st)
{
    while (st->to_tty_used > 0) {
        ssize_t n = send(st->tty.fd, st->to_tty, st->to_tty_used, MSG_NOSIGNAL);
        if (n > 0) {
            memmove(st->to_tty, st->to_tty + n, st->to_tty_used - (size_t)n);
            st->to_tty_used -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true; /* the socket is full: wait for POLLOUT */
        } else {
            return false;
        }
    }
    return true;
}

/* Exec -> operator, never more than the SSH window takes. Returns false
 * when the stream ended (detach, the container or the engine gone). */
static bool relay_from_tty(lchan *ch, attach_chan *st)
{
    char buf[RELAY_BUF];
    for (int i = 0; i < RELAY_READS_PER_ROUND; i++) {
        size_t room = lchan_writable(ch);
        if (room == 0)
            return true;
        if (room > sizeof buf)
            room = sizeof buf;
        ssize_t n = recv(st->tty.fd, buf, room, 0);
        if (n > 0) {
            if (lchan_write(ch, buf, (size_t)n) < 0)
                return false;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        } else {
            return false;
        }
    }
    return true;
}

static void attach_pump(lchan *ch, void *state)
{
    attach_chan *st = state;
    if (st->phase != ATTACH_RELAY)
        return;
    attach_apply_size(ch, st);
    if (!relay_to_tty(st) || !relay_from_tty(ch, st)) {
        attach_stream_ended(ch, st);
        return;
    }
    /* Watch only for what we can act on, so a full window never spins. */
    short events = 0;
    if (lchan_writable(ch) > 0)
        events |= POLLIN;
    if (st->to_tty_used > 0)
        events |= POLLOUT;
    if (lchan_watch_fd(ch, st->tty.fd, events) < 0)
        attach_end_relay(ch, st, "cannot watch the terminal stream");
}

static void attach_closed(lchan *ch, void *state)
{
    attach_chan *st = state;
    if (st->phase == ATTACH_RELAY)
        attach_end_relay(ch, st, "channel closed");
    else if (st->phase == ATTACH_HEADER)
        st->phase = ATTACH_DONE;
    /* ATTACH_PREPARING and ATTACH_ENDING: their workers' done sees the close. */
}

static void attach_release(void *state)
{
    attach_chan *st = state;
    attach_leave(st);
    if (st->tty_open)
        docker_tty_close(st->a->docker, &st->tty);
    free(st);
}

const lchan_handler attach_relay_handler = {.open = attach_open,
                                            .room = attach_room,
                                            .input = attach_input,
                                            .eof = attach_eof,
                                            .window_change = attach_window_change,
                                            .pump = attach_pump,
                                            .closed = attach_closed,
                                            .release = attach_release};
