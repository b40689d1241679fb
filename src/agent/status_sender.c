#include "agent/status_sender.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libssh/server.h> /* ssh_send_keepalive */

#include "common/log.h"
#include "common/timeutil.h"
#include "ssh/channel_io.h"

#define WAIT_SLICE_MS 1000      /* how often an idle stream checks its channel */
#define CONFIRM_GIVE_UP_MS 8000 /* a batch's round trip slower than this failed */

struct status_sender {
    event_queue *queue;
    pinned_peer *peer;
    char where[300]; /* "host:port" for messages */
    pthread_t thread;
    atomic_bool stopping;
    int64_t stop_deadline_ms; /* set once stopping */
    bool connected;           /* as last logged, so transitions log once */
    event_batch pending;      /* taken from the queue, not yet confirmed */
    unsigned long batches, lines;
};

static bool past_drain_deadline(status_sender *s)
{
    return atomic_load(&s->stopping) && monotonic_ms() >= s->stop_deadline_ms;
}

/* True while the shell's end of the channel is still there. Reading also
 * lets libssh answer the server's keepalives and notice a close. */
static bool channel_alive(ssh_session session, ssh_channel ch)
{
    if (!ssh_channel_is_open(ch) || ssh_channel_is_eof(ch))
        return false;
    int rc = ssh_channel_poll_timeout(ch, 0, 0);
    return rc != SSH_ERROR && rc != SSH_EOF && ssh_is_connected(session);
}

/* The shell never answers on the channel, so a batch counts as delivered
 * once an SSH round trip begun after it has come back: keepalive@openssh.com
 * with want_reply, which libssh's server answers itself, in order, after
 * the channel data before it. libssh hides the answer (ssh_send_keepalive
 * returns SSH_OK either way) but waits for it up to the session's timeout
 * (10 s, ssh/client.c): a wait of CONFIRM_GIVE_UP_MS or more means none came
 * and the connection counts as broken. */
static int confirm_batch(ssh_session session, ssh_channel ch)
{
    int64_t start = monotonic_ms();
    ssh_send_keepalive(session);
    if (monotonic_ms() - start >= CONFIRM_GIVE_UP_MS)
        return -1;
    return channel_alive(session, ch) ? 0 : -1;
}

/* Runs on an open convocate-status channel until the queue is closed and
 * drained (0) or the connection breaks (PINNED_PEER_BROKEN). A batch taken
 * but not confirmed stays in s->pending and goes first next time. */
static int stream_events(ssh_session session, ssh_channel ch, void *ctx)
{
    status_sender *s = ctx;
    if (!s->connected) {
        log_info("status: connected to the shell at %s", s->where);
        s->connected = true;
    }
    for (;;) {
        if (past_drain_deadline(s))
            return 0;
        if (!channel_alive(session, ch))
            return PINNED_PEER_BROKEN;
        if (s->pending.lines == 0 && event_queue_take(s->queue, &s->pending, STATUS_BATCH_LINES,
                                                      STATUS_BATCH_BYTES, WAIT_SLICE_MS) == 0) {
            if (atomic_load(&s->stopping) && event_queue_is_closed(s->queue))
                return 0; /* closed and drained */
            continue;
        }
        if (channel_write_all(ch, s->pending.buf, s->pending.len) < 0 ||
            confirm_batch(session, ch) < 0)
            return PINNED_PEER_BROKEN;
        s->batches++;
        s->lines += s->pending.lines;
        event_batch_clear(&s->pending);
    }
}

/* Sleeps up to ms, waking early when stopping. */
static void pause_ms(status_sender *s, long ms)
{
    while (ms > 0 && !atomic_load(&s->stopping)) {
        long slice = ms > 200 ? 200 : ms;
        sleep_ms(slice);
        ms -= slice;
    }
}

static void *sender_main(void *arg)
{
    status_sender *s = arg;
    char err[512];
    while (!atomic_load(&s->stopping)) {
        long wait = pinned_peer_backoff_ms(s->peer);
        if (wait > 0) {
            pause_ms(s, wait);
            continue;
        }
        int rc = pinned_peer_with_channel(s->peer, "convocate-status", stream_events, s, err,
                                          sizeof err);
        if (rc == 0)
            break; /* stopping, queue drained */
        if (s->connected) {
            log_warn("status: lost the shell at %s; redialling with backoff", s->where);
            s->connected = false;
        } else if (rc == -1) {
            log_warn("status: %s", err);
        }
    }
    return NULL;
}

status_sender *status_sender_start(event_queue *q, const pinned_peer_config *peer, char *err,
                                   size_t errlen)
{
    status_sender *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "status sender: out of memory");
        return NULL;
    }
    s->queue = q;
    snprintf(s->where, sizeof s->where, "%s:%d", peer->host, peer->port);
    atomic_init(&s->stopping, false);
    s->peer = pinned_peer_new(peer);
    /* The thread starts with every signal blocked: a SIGTERM handled on it
     * would interrupt libssh's poll, which takes EINTR for a broken
     * connection, and agent.shutdown would be lost. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = s->peer == NULL ? -1 : pthread_create(&s->thread, NULL, sender_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "status sender: cannot start its thread");
        pinned_peer_free(s->peer);
        free(s);
        return NULL;
    }
    return s;
}

void status_sender_stop(status_sender *s)
{
    if (s == NULL)
        return;
    s->stop_deadline_ms = monotonic_ms() + STATUS_SENDER_DRAIN_MS;
    atomic_store(&s->stopping, true);
    pthread_join(s->thread, NULL);
    if (s->pending.lines > 0)
        log_warn("status: %zu events not delivered at shutdown", s->pending.lines);
    log_debug("status: sent %lu events in %lu batches", s->lines, s->batches);
    event_batch_free(&s->pending);
    pinned_peer_free(s->peer);
    free(s);
}
