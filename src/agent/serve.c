/* `convocate-agent serve`: the tcp/222 listener with its two subsystems.
 *
 *   convocate-agent-rpc     one request line in, one response line out
 *   convocate-agent-attach  one header line in, then a raw PTY relay
 *
 * Every handler here runs on its connection's thread and never blocks it:
 * agent calls that may be slow (any RPC, attach preparation, stopping the
 * attach process) run as listener jobs on worker threads. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/attach.h"
#include "agent/serve.h"
#include "common/log.h"
#include "proto/attach_header.h"
#include "proto/rpc.h"
#include "ssh/listener.h"

#define SUBSYSTEM_RPC "convocate-agent-rpc"
#define SUBSYSTEM_ATTACH "convocate-agent-attach"
#define RELAY_BUF 16384
#define RELAY_READS_PER_ROUND 8

static listener *g_listener;
static volatile sig_atomic_t g_signal;

/* ---------- convocate-agent-rpc ---------- */

enum rpc_phase { RPC_READING, RPC_WORKING, RPC_DONE };

typedef struct {
    agent *a;
    enum rpc_phase phase;
    char *line; /* the request, up to and including its newline */
    size_t used, cap;
    char *response; /* set by the worker */
} rpc_chan;

static void *rpc_open(lchan *ch, void *app)
{
    (void)ch;
    rpc_chan *st = calloc(1, sizeof *st);
    if (st != NULL)
        st->a = app;
    return st;
}

static size_t rpc_room(void *state)
{
    rpc_chan *st = state;
    /* One byte past the limit tells "too long" from "exactly 1 MiB". */
    return st->phase == RPC_READING ? (size_t)RPC_MAX_LINE + 1 - st->used : 0;
}

static void rpc_work(void *arg)
{
    rpc_chan *st = arg;
    st->response = agent_rpc_handle(st->a, st->line ? st->line : "", st->used);
}

static void rpc_done(lchan *ch, void *arg, void *state)
{
    rpc_chan *st = arg;
    (void)state;
    st->phase = RPC_DONE;
    char *response = st->response;
    st->response = NULL;
    if (lchan_is_closing(ch)) {
        free(response);
        return;
    }
    lchan_reply_and_close(ch, response);
}

static void rpc_start(lchan *ch, rpc_chan *st)
{
    st->phase = RPC_WORKING;
    if (lchan_run_job(ch, rpc_work, rpc_done, st) < 0) {
        st->phase = RPC_DONE;
        lchan_reply_and_close(ch,
                              rpc_response_error("agent busy: cannot start a worker, try again"));
    }
}

static int rpc_reserve(rpc_chan *st, size_t need)
{
    if (need <= st->cap)
        return 0;
    size_t cap = st->cap ? st->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > (size_t)RPC_MAX_LINE + 1)
        cap = (size_t)RPC_MAX_LINE + 1;
    char *grown = realloc(st->line, cap);
    if (grown == NULL)
        return -1;
    st->line = grown;
    st->cap = cap;
    return 0;
}

static void rpc_input(lchan *ch, const void *buf, size_t len, void *state)
{
    rpc_chan *st = state;
    if (rpc_reserve(st, st->used + len) < 0) {
        st->phase = RPC_DONE;
        lchan_reply_and_close(ch, rpc_response_error("agent out of memory"));
        return;
    }
    memcpy(st->line + st->used, buf, len);
    const char *nl = memchr(st->line + st->used, '\n', len);
    st->used += len;
    if (nl != NULL) {
        st->used = (size_t)(nl - st->line) + 1; /* bytes after the line are ignored */
        rpc_start(ch, st);
    } else if (st->used > RPC_MAX_LINE) {
        log_info("%s: request line over %d bytes refused", lchan_name(ch), RPC_MAX_LINE);
        st->phase = RPC_DONE;
        char msg[96];
        snprintf(msg, sizeof msg, "request line too long (limit %d bytes)", RPC_MAX_LINE);
        lchan_reply_and_close(ch, rpc_response_error(msg));
    }
}

static void rpc_eof(lchan *ch, void *state)
{
    rpc_chan *st = state;
    if (st->phase == RPC_READING)
        rpc_start(ch, st);
}

static void rpc_release(void *state)
{
    rpc_chan *st = state;
    free(st->line);
    free(st->response);
    free(st);
}

static const lchan_handler rpc_handler = {
    .open = rpc_open, .room = rpc_room, .input = rpc_input, .eof = rpc_eof, .release = rpc_release};

/* ---------- convocate-agent-attach ---------- */

enum attach_phase { ATTACH_HEADER, ATTACH_PREPARING, ATTACH_RELAY, ATTACH_DONE };

typedef struct {
    agent *a;
    enum attach_phase phase;
    char header[ATTACH_HEADER_MAX];
    size_t header_used;
    attach_header hdr;
    char to_pty[RELAY_BUF]; /* operator keystrokes not yet written to the PTY */
    size_t to_pty_used;
    int cols, rows; /* latest window-change; 0 = none */
    bool client_eof;
    int prepare_rc; /* set by the worker */
    char error[256];
    attach_proc proc;
    bool proc_started;
    bool entered; /* counted in agent_attach_enter() */
} attach_chan;

static void *attach_open(lchan *ch, void *app)
{
    (void)ch;
    attach_chan *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->a = app;
    st->proc.pid = -1;
    st->proc.master_fd = -1;
    return st;
}

static void attach_fail(lchan *ch, attach_chan *st, const char *why)
{
    log_info("%s: attach refused: %s", lchan_name(ch), why);
    st->phase = ATTACH_DONE;
    lchan_reply_and_close(ch, rpc_response_error(why));
}

static void attach_stop_work(void *arg)
{
    attach_chan *st = arg;
    attach_proc_stop(&st->proc);
}

/* Ends the process side off the connection thread: it may wait seconds. */
static void attach_stop_proc(lchan *ch, attach_chan *st)
{
    if (!st->proc_started)
        return;
    st->proc_started = false;
    if (lchan_run_job(ch, attach_stop_work, NULL, st) < 0)
        attach_proc_stop(&st->proc);
}

static void attach_end_relay(lchan *ch, attach_chan *st, const char *why)
{
    if (st->phase != ATTACH_RELAY)
        return;
    log_info("%s: attach to %s ended: %s", lchan_name(ch), st->hdr.id, why);
    st->phase = ATTACH_DONE;
    lchan_watch_fd(ch, st->proc.master_fd, 0);
    if (st->entered) {
        agent_attach_leave(st->a, st->hdr.id);
        st->entered = false;
    }
    attach_stop_proc(ch, st);
    lchan_close(ch);
}

static void attach_prepare_work(void *arg)
{
    attach_chan *st = arg;
    st->prepare_rc = agent_attach_prepare(st->a, st->hdr.id, st->error, sizeof st->error);
    if (st->prepare_rc != 0)
        return;
    st->prepare_rc = attach_proc_start(&st->proc, agent_cfg(st->a)->docker_host, st->hdr.id,
                                       st->hdr.cols, st->hdr.rows, st->error, sizeof st->error);
    st->proc_started = st->prepare_rc == 0;
}

static void attach_prepare_done(lchan *ch, void *arg, void *state)
{
    attach_chan *st = arg;
    (void)state;
    if (lchan_is_closing(ch) || st->client_eof) {
        st->phase = ATTACH_DONE;
        attach_stop_proc(ch, st);
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
    if (st->cols > 0 && attach_proc_resize(&st->proc, st->cols, st->rows) < 0)
        log_info("%s: resize: %s", lchan_name(ch), strerror(errno));
    log_info("%s: attached to %s", lchan_name(ch), st->hdr.id);
}

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
    memcpy(st->to_pty, nl + 1, rest);
    st->to_pty_used = rest;
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
        return sizeof st->to_pty - st->to_pty_used;
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
        memcpy(st->to_pty + st->to_pty_used, buf, len);
        st->to_pty_used += len;
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

static int attach_window_change(lchan *ch, int cols, int rows, void *state)
{
    attach_chan *st = state;
    (void)ch;
    if (cols < 1 || rows < 1 || cols > 1000 || rows > 1000)
        return -1;
    st->cols = cols;
    st->rows = rows;
    if (st->phase == ATTACH_RELAY)
        return attach_proc_resize(&st->proc, cols, rows) < 0 ? -1 : 0;
    return 0; /* applied when the relay starts */
}

/* Operator -> PTY. Returns false when the PTY is gone. */
static bool relay_to_pty(attach_chan *st)
{
    while (st->to_pty_used > 0) {
        ssize_t n = write(st->proc.master_fd, st->to_pty, st->to_pty_used);
        if (n > 0) {
            memmove(st->to_pty, st->to_pty + n, st->to_pty_used - (size_t)n);
            st->to_pty_used -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return true; /* the PTY is full: wait for POLLOUT */
        } else {
            return false;
        }
    }
    return true;
}

/* PTY -> operator, never more than the SSH window takes. Returns false
 * when the PTY closed (detach, or the container ended). */
static bool relay_from_pty(lchan *ch, attach_chan *st)
{
    char buf[RELAY_BUF];
    for (int i = 0; i < RELAY_READS_PER_ROUND; i++) {
        size_t room = lchan_writable(ch);
        if (room == 0)
            return true;
        if (room > sizeof buf)
            room = sizeof buf;
        ssize_t n = read(st->proc.master_fd, buf, room);
        if (n > 0) {
            if (lchan_write(ch, buf, (size_t)n) < 0)
                return false;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return true;
        } else {
            return false; /* EOF, or EIO once the last slave descriptor closed */
        }
    }
    return true;
}

static void attach_pump(lchan *ch, void *state)
{
    attach_chan *st = state;
    if (st->phase != ATTACH_RELAY)
        return;
    if (!relay_to_pty(st)) {
        attach_end_relay(ch, st, "terminal closed");
        return;
    }
    if (!relay_from_pty(ch, st)) {
        attach_end_relay(ch, st, "terminal closed");
        return;
    }
    /* Watch only for what we can act on, so a full window never spins. */
    short events = 0;
    if (lchan_writable(ch) > 0)
        events |= POLLIN;
    if (st->to_pty_used > 0)
        events |= POLLOUT;
    if (lchan_watch_fd(ch, st->proc.master_fd, events) < 0)
        attach_end_relay(ch, st, "cannot watch the terminal");
}

static void attach_closed(lchan *ch, void *state)
{
    attach_chan *st = state;
    if (st->phase == ATTACH_RELAY)
        attach_end_relay(ch, st, "channel closed");
    else if (st->phase == ATTACH_HEADER)
        st->phase = ATTACH_DONE;
    /* ATTACH_PREPARING: attach_prepare_done() sees the channel closing. */
}

static void attach_release(void *state)
{
    attach_chan *st = state;
    if (st->entered)
        agent_attach_leave(st->a, st->hdr.id);
    if (st->proc_started)
        attach_proc_stop(&st->proc);
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

/* ---------- the service ---------- */

static void on_signal(int sig)
{
    g_signal = sig;
    if (g_listener != NULL)
        listener_stop(g_listener);
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
        return -1;
    /* A peer that vanishes mid-write must cost an EPIPE, not the process. */
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

static void announce_stopping(void *app)
{
    agent_announce_shutdown(app, g_signal == SIGINT ? "SIGINT" : "SIGTERM");
}

static int open_listener(const agent_config *cfg, agent *a, listener **out)
{
    char err[512];
    /* Filled here, not initialised: a handler defined in another file is no
     * constant expression. Static: the listener keeps a pointer to it. */
    static listener_subsystem agent_subsystems[2];
    agent_subsystems[0] = (listener_subsystem){SUBSYSTEM_RPC, rpc_handler};
    agent_subsystems[1] = (listener_subsystem){SUBSYSTEM_ATTACH, attach_relay_handler};
    listener_config lc = {.bind_addr = cfg->listen_addr,
                          .port = cfg->listen_port,
                          .host_key_path = cfg->host_key,
                          .auth_keys_path = cfg->auth_keys,
                          .subsystems = agent_subsystems,
                          .n_subsystems = sizeof agent_subsystems / sizeof agent_subsystems[0],
                          .app = a,
                          .stopping = announce_stopping};
    /* listener keeps a copy of lc; the strings live in cfg, owned by the agent. */
    switch (listener_open(out, &lc, err, sizeof err)) {
    case LISTENER_OK:
        return 0;
    case LISTENER_ERR_HOST_KEY_MISSING:
        fprintf(stderr,
                "convocate-agent: host key %s not found; run 'convocate-agent install' first\n",
                cfg->host_key);
        return -1;
    default:
        fprintf(stderr, "convocate-agent: %s\n", err);
        return -1;
    }
}

int agent_serve(const agent_config *cfg)
{
    char err[512];
    listener *l = NULL;

    if (install_signals() < 0) {
        fprintf(stderr, "convocate-agent: cannot install signal handlers: %s\n", strerror(errno));
        return 1;
    }
    agent *a = agent_new(cfg, err, sizeof err);
    if (a == NULL) {
        fprintf(stderr, "convocate-agent: %s\n", err);
        return 1;
    }
    const agent_config *live = agent_cfg(a);
    if (open_listener(live, a, &l) < 0) {
        agent_free(a);
        return 1;
    }
    g_listener = l;
    if (g_signal != 0) /* a signal that came before g_listener was set */
        listener_stop(l);
    log_info("listening on %s:%d (agent %s)", live->listen_addr, live->listen_port, agent_id(a));
    agent_announce_start(a);
    int rc = listener_run(l);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL); /* the handler must not see l freed */
    g_listener = NULL;
    listener_free(l);
    agent_free(a);
    log_info("stopped");
    return rc == 0 ? 0 : 1;
}
