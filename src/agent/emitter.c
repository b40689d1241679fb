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
#include "common/timeutil.h"
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

event_kind emitter_kind_of(const char *type)
{
    if (strcmp(type, "session.activity") == 0)
        return EVENT_KIND_ACTIVITY;
    if (strcmp(type, "container.edited") == 0)
        return EVENT_KIND_EDITED;
    return EVENT_KIND_PLAIN;
}

void emitter_publish(emitter *e, const char *type, const char *session_id, json_t *data)
{
    char *line = emitter_encode(e->agent_id, type, session_id, data);
    json_decref(data);
    if (line == NULL) {
        log_error("event %s: out of memory, dropped", type);
        return;
    }
    size_t len = strlen(line);
    log_debug("event %.*s", (int)len - 1, line);
    event_kind kind = emitter_kind_of(type);
    if (e->sender != NULL) {
        char *copy = e->log_fd >= 0 ? strdup(line) : NULL;
        event_queue_push(&e->shell_queue, line, len, session_id, kind);
        line = copy;
    }
    if (e->log_fd >= 0 && line != NULL)
        event_queue_push(&e->file_queue, line, len, session_id, kind);
    else
        free(line);
}

unsigned long emitter_dropped(emitter *e)
{
    return e->sender ? event_queue_dropped(&e->shell_queue) : 0;
}

unsigned long emitter_coalesced(emitter *e)
{
    return e->sender ? event_queue_coalesced(&e->shell_queue) : 0;
}

/* ---- the events-log sink ---- */

#define FILE_BATCH_LINES 1024
#define FILE_BATCH_BYTES (64 * 1024)

/* One write per batch of lines: a burst costs few syscalls. */
static void *file_sink_main(void *arg)
{
    emitter *e = arg;
    event_batch b = {0};
    while (!event_queue_is_closed(&e->file_queue) || event_queue_length(&e->file_queue) > 0) {
        if (event_queue_take(&e->file_queue, &b, FILE_BATCH_LINES, FILE_BATCH_BYTES, 1000) == 0)
            continue;
        if (write_all(e->log_fd, b.buf, b.len) < 0)
            log_warn("events log: write failed: %s", strerror(errno));
        event_batch_clear(&b);
    }
    event_batch_free(&b);
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
        monotonic_deadline(&deadline, (int64_t)interval * 1000);
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
    if (event_queue_init(&e->file_queue, "events log", EVENT_QUEUE_CAP, EVENT_QUEUE_MAX_BYTES,
                         false) < 0 ||
        event_queue_init(&e->shell_queue, "status events", EVENT_QUEUE_CAP, EVENT_QUEUE_MAX_BYTES,
                         true) < 0 ||
        pthread_mutex_init(&e->hb_mu, NULL) != 0 || monotonic_cond_init(&e->hb_cond) < 0) {
        snprintf(err, errlen, "emitter: cannot initialise its queues and locks");
        event_queue_destroy(&e->file_queue); /* safe on a queue that failed to init */
        event_queue_destroy(&e->shell_queue);
        free(e);
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
