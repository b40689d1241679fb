#include "agent/status_sender.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ssh/channel_io.h"

#define WAIT_SLICE_MS 1000 /* how often an idle stream checks its channel */
#define CONFIRM_MS 1000    /* a written line counts as delivered after this */

struct status_sender {
    event_queue *queue;
    pinned_peer *peer;
    char where[300]; /* "host:port" for messages */
    pthread_t thread;
    atomic_bool stopping;
    int64_t stop_deadline_ms; /* set once stopping */
    bool connected;           /* as last logged, so transitions log once */
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

/* Lines written on the current connection but not yet known to have
 * arrived. The shell never answers, so "arrived" means: the connection was
 * still healthy CONFIRM_MS after the write (time for a reset or FIN from a
 * peer that was already gone to come back). A connection that breaks sends
 * its unconfirmed lines again on the next one: at least once, in order. */
typedef struct {
    size_t sent;                         /* queue[0..sent) written */
    int64_t written_ms[EVENT_QUEUE_CAP]; /* when each was written */
} in_flight;

/* Pops the written lines old enough to count as delivered. */
static void confirm_delivered(status_sender *s, in_flight *f)
{
    int64_t now = monotonic_ms();
    size_t done = 0;
    while (done < f->sent && now - f->written_ms[done] >= CONFIRM_MS)
        done++;
    for (size_t i = 0; i < done; i++)
        event_queue_pop(s->queue);
    memmove(f->written_ms, f->written_ms + done, (f->sent - done) * sizeof f->written_ms[0]);
    f->sent -= done;
}

/* Runs on an open convocate-status channel until the queue is closed and
 * drained (0) or the connection breaks (PINNED_PEER_BROKEN). */
static int stream_events(ssh_session session, ssh_channel ch, void *ctx)
{
    status_sender *s = ctx;
    in_flight f = {.sent = 0};
    if (!s->connected) {
        log_info("status: connected to the shell at %s", s->where);
        s->connected = true;
    }
    for (;;) {
        if (past_drain_deadline(s))
            return 0;
        if (!channel_alive(session, ch))
            return PINNED_PEER_BROKEN; /* unconfirmed lines go again next time */
        confirm_delivered(s, &f);
        int wait = f.sent > 0 ? CONFIRM_MS / 4 : WAIT_SLICE_MS;
        const char *line = event_queue_peek_wait(s->queue, f.sent, wait);
        if (line == NULL) {
            /* Stopping and nothing left to write: the process is about to
             * exit, so what was written is as delivered as it will get. */
            if (atomic_load(&s->stopping) && event_queue_is_closed(s->queue)) {
                while (f.sent > 0) {
                    event_queue_pop(s->queue);
                    f.sent--;
                }
                return 0;
            }
            continue;
        }
        if (channel_write_all(ch, line, strlen(line)) < 0)
            return PINNED_PEER_BROKEN;
        f.written_ms[f.sent++] = monotonic_ms();
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
    pinned_peer_free(s->peer);
    free(s);
}
