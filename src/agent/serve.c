/* `convocate-agent serve`: the tcp/222 listener with its two subsystems.
 *
 *   convocate-agent-rpc     one request line in, one response line out
 *   convocate-agent-attach  one header line in, then a raw PTY relay
 *
 * Every handler here runs on its connection's thread and never blocks it:
 * agent calls that may be slow (any RPC, attach preparation, stopping the
 * attach process) run as listener jobs on worker threads. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/attach.h"
#include "agent/serve.h"
#include "common/log.h"
#include "proto/rpc.h"
#include "ssh/listener.h"

#define SUBSYSTEM_RPC "convocate-agent-rpc"
#define SUBSYSTEM_ATTACH "convocate-agent-attach"

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

/* What is read after the request (the client may go on writing) is read
 * and dropped, so it never waits in libssh's buffers. */
#define RPC_DISCARD_ROOM 65536

static size_t rpc_room(void *state)
{
    rpc_chan *st = state;
    /* One byte past the limit tells "too long" from "exactly 1 MiB". */
    return st->phase == RPC_READING ? (size_t)RPC_MAX_LINE + 1 - st->used : RPC_DISCARD_ROOM;
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
    /* A ping is answered here, on the connection's thread: handing it to a
     * worker and back costs two thread wake-ups, each of which can wait
     * behind other runnable threads on a busy machine. */
    char *quick = agent_rpc_quick(st->a, st->line ? st->line : "", st->used);
    if (quick != NULL) {
        log_debug("%s: answered on the connection's thread", lchan_name(ch));
        st->phase = RPC_DONE;
        lchan_reply_and_close(ch, quick);
        return;
    }
    st->phase = RPC_WORKING;
    if (lchan_run_job(ch, rpc_work, rpc_done, st) < 0) {
        st->phase = RPC_DONE;
        lchan_reply_and_close(ch,
                              rpc_response_error("agent busy: cannot start a worker, try again"));
    }
}

/* Grows the line buffer: -1 out of memory, -2 over the connection's
 * budget of held input (lchan_hold_input). */
static int rpc_reserve(lchan *ch, rpc_chan *st, size_t need)
{
    if (need <= st->cap)
        return 0;
    size_t cap = st->cap ? st->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > (size_t)RPC_MAX_LINE + 1)
        cap = (size_t)RPC_MAX_LINE + 1;
    if (lchan_hold_input(ch, cap) < 0)
        return -2;
    char *grown = realloc(st->line, cap);
    if (grown == NULL)
        return -1;
    st->line = grown;
    st->cap = cap;
    return 0;
}

static void rpc_refuse(lchan *ch, rpc_chan *st, const char *why)
{
    st->phase = RPC_DONE;
    lchan_reply_and_close(ch, rpc_response_error(why));
}

static void rpc_input(lchan *ch, const void *buf, size_t len, void *state)
{
    rpc_chan *st = state;
    if (st->phase != RPC_READING)
        return; /* after the request line: dropped */
    int rc = rpc_reserve(ch, st, st->used + len);
    if (rc == -2) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "request refused: this connection's channels would hold over %d bytes of "
                 "unfinished requests (the limit per connection); finish or close them first",
                 LISTENER_MAX_HELD_INPUT);
        rpc_refuse(ch, st, msg);
        return;
    }
    if (rc < 0) {
        rpc_refuse(ch, st, "agent out of memory");
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
