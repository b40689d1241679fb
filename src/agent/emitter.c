#include "agent/emitter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/status_sender.h"
#include "common/fileio.h"
#include "common/log.h"
#include "proto/rpc.h" /* json_line */

struct emitter {
    char agent_id[16];
    event_queue file_queue;
    int log_fd; /* -1 when there is no events log */
    pthread_t file_thread;
    bool file_thread_running;
    event_queue shell_queue;
    status_sender *sender; /* NULL when no shell is configured */

    pthread_mutex_t hb_mu;
    pthread_cond_t hb_cond; /* on CLOCK_MONOTONIC */
    int hb_interval_s;      /* 0 = not started */
    bool hb_stop;
    pthread_t hb_thread;
    bool hb_thread_running;
};

/* ---- the bounded queue ---- */

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int monotonic_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
                     pthread_cond_init(cond, &attr) == 0
                 ? 0
                 : -1;
    pthread_condattr_destroy(&attr);
    return rc;
}

int event_queue_init(event_queue *q)
{
    memset(q, 0, sizeof *q);
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return -1;
    if (monotonic_cond_init(&q->cond) < 0) {
        pthread_mutex_destroy(&q->mu);
        return -1;
    }
    return 0;
}

void event_queue_destroy(event_queue *q)
{
    for (size_t i = 0; i < q->len; i++)
        free(q->lines[(q->head + i) % EVENT_QUEUE_CAP]);
    q->len = 0;
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
}

bool event_queue_push(event_queue *q, char *line)
{
    pthread_mutex_lock(&q->mu);
    bool queued = !q->closed && q->len < EVENT_QUEUE_CAP;
    if (queued) {
        q->lines[(q->head + q->len) % EVENT_QUEUE_CAP] = line;
        q->len++;
        pthread_cond_signal(&q->cond);
    } else {
        q->dropped++;
    }
    unsigned long dropped = q->dropped;
    pthread_mutex_unlock(&q->mu);
    if (!queued) {
        int shown = (int)strcspn(line, "\n");
        log_warn("event queue full or closed: dropped an event (%lu dropped so far): %.*s", dropped,
                 shown > 200 ? 200 : shown, line);
        free(line);
    }
    return queued;
}

const char *event_queue_peek_wait(event_queue *q, size_t index, int timeout_ms)
{
    struct timespec deadline;
    if (timeout_ms >= 0)
        deadline_in(&deadline, timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (q->len <= index && !q->closed) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&q->cond, &q->mu)
                                : pthread_cond_timedwait(&q->cond, &q->mu, &deadline);
        if (rc == ETIMEDOUT)
            break;
    }
    const char *line = q->len > index ? q->lines[(q->head + index) % EVENT_QUEUE_CAP] : NULL;
    pthread_mutex_unlock(&q->mu);
    return line;
}

const char *event_queue_front_wait(event_queue *q, int timeout_ms)
{
    return event_queue_peek_wait(q, 0, timeout_ms);
}

bool event_queue_is_closed(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    bool closed = q->closed;
    pthread_mutex_unlock(&q->mu);
    return closed;
}

void event_queue_pop(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    if (q->len) {
        free(q->lines[q->head]);
        q->head = (q->head + 1) % EVENT_QUEUE_CAP;
        q->len--;
    }
    pthread_mutex_unlock(&q->mu);
}

void event_queue_close(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

unsigned long event_queue_dropped(event_queue *q)
{
    pthread_mutex_lock(&q->mu);
    unsigned long n = q->dropped;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* ---- encoding ---- */

static void timestamp_now(char out[32])
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    int ms = (int)(now.tv_nsec / 1000000L) % 1000;
    snprintf(out + n, 32 - n, ".%03dZ", ms);
}

char *emitter_encode(const char *agent_id, const char *type, const char *session_id, json_t *data)
{
    char stamp[32];
    timestamp_now(stamp);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:O}", "type", type, "agent_id", agent_id, "timestamp",
                           stamp, "data", data ? data : json_null());
    if (ev == NULL)
        return NULL;
    bool is_container =
        strncmp(type, "container.", 10) == 0 || strcmp(type, "session.activity") == 0;
    if (is_container && session_id &&
        json_object_set_new(ev, "session_id", json_string(session_id)) < 0) {
        json_decref(ev);
        return NULL;
    }
    return json_line(ev);
}

void emitter_publish(emitter *e, const char *type, const char *session_id, json_t *data)
{
    char *line = emitter_encode(e->agent_id, type, session_id, data);
    json_decref(data);
    if (line == NULL) {
        log_error("event %s: out of memory, dropped", type);
        return;
    }
    log_debug("event %.*s", (int)strlen(line) - 1, line);
    if (e->sender != NULL) {
        char *copy = e->log_fd >= 0 ? strdup(line) : NULL;
        event_queue_push(&e->shell_queue, line);
        line = copy;
    }
    if (e->log_fd >= 0 && line != NULL)
        event_queue_push(&e->file_queue, line);
    else
        free(line);
}

/* ---- the events-log sink ---- */

static void *file_sink_main(void *arg)
{
    emitter *e = arg;
    const char *line;
    while ((line = event_queue_front_wait(&e->file_queue, -1)) != NULL) {
        if (write_all(e->log_fd, line, strlen(line)) < 0)
            log_warn("events log: write failed: %s", strerror(errno));
        event_queue_pop(&e->file_queue);
    }
    return NULL;
}

/* ---- heartbeat ---- */

static void *heartbeat_main(void *arg)
{
    emitter *e = arg;
    pthread_mutex_lock(&e->hb_mu);
    while (!e->hb_stop) {
        int interval = e->hb_interval_s;
        struct timespec deadline;
        deadline_in(&deadline, interval * 1000);
        int rc = 0;
        while (!e->hb_stop && e->hb_interval_s == interval && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&e->hb_cond, &e->hb_mu, &deadline);
        if (e->hb_stop || rc != ETIMEDOUT)
            continue; /* stopping, or retimed: start a fresh interval */
        pthread_mutex_unlock(&e->hb_mu);
        emitter_publish(e, "agent.heartbeat", NULL, NULL);
        pthread_mutex_lock(&e->hb_mu);
    }
    pthread_mutex_unlock(&e->hb_mu);
    return NULL;
}

void emitter_set_heartbeat(emitter *e, int interval_s)
{
    if (interval_s <= 0)
        return;
    pthread_mutex_lock(&e->hb_mu);
    e->hb_interval_s = interval_s;
    if (!e->hb_thread_running && !e->hb_stop) {
        if (pthread_create(&e->hb_thread, NULL, heartbeat_main, e) == 0)
            e->hb_thread_running = true;
        else
            log_error("cannot start the heartbeat thread");
    }
    pthread_cond_broadcast(&e->hb_cond);
    pthread_mutex_unlock(&e->hb_mu);
}

/* ---- life cycle ---- */

static int open_events_log(emitter *e, const char *path, char *err, size_t errlen)
{
    e->log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (e->log_fd < 0) {
        snprintf(err, errlen, "events log %s: %s", path, strerror(errno));
        return -1;
    }
    if (pthread_create(&e->file_thread, NULL, file_sink_main, e) != 0) {
        snprintf(err, errlen, "events log: cannot start its writer thread");
        return -1;
    }
    e->file_thread_running = true;
    return 0;
}

emitter *emitter_new(const char *agent_id, const char *events_log, const pinned_peer_config *shell,
                     char *err, size_t errlen)
{
    emitter *e = calloc(1, sizeof *e);
    if (e == NULL) {
        snprintf(err, errlen, "emitter: out of memory");
        return NULL;
    }
    e->log_fd = -1;
    snprintf(e->agent_id, sizeof e->agent_id, "%s", agent_id);
    if (event_queue_init(&e->file_queue) < 0 || event_queue_init(&e->shell_queue) < 0 ||
        pthread_mutex_init(&e->hb_mu, NULL) != 0 || monotonic_cond_init(&e->hb_cond) < 0) {
        snprintf(err, errlen, "emitter: cannot initialise its locks");
        free(e); /* init failures of these primitives leave nothing to free */
        return NULL;
    }
    if (events_log && events_log[0] && open_events_log(e, events_log, err, errlen) < 0) {
        emitter_free(e);
        return NULL;
    }
    if (shell != NULL &&
        (e->sender = status_sender_start(&e->shell_queue, shell, err, errlen)) == NULL) {
        emitter_free(e);
        return NULL;
    }
    return e;
}

void emitter_free(emitter *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->hb_mu);
    e->hb_stop = true;
    pthread_cond_broadcast(&e->hb_cond);
    pthread_mutex_unlock(&e->hb_mu);
    if (e->hb_thread_running)
        pthread_join(e->hb_thread, NULL);
    event_queue_close(&e->shell_queue);
    status_sender_stop(e->sender); /* agent.shutdown goes out first, best effort */
    event_queue_close(&e->file_queue);
    if (e->file_thread_running)
        pthread_join(e->file_thread, NULL);
    if (e->log_fd >= 0)
        close(e->log_fd);
    event_queue_destroy(&e->file_queue);
    event_queue_destroy(&e->shell_queue);
    pthread_cond_destroy(&e->hb_cond);
    pthread_mutex_destroy(&e->hb_mu);
    free(e);
}
