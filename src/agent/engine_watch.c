/* Engine truth (see engine_watch.h): the watcher thread, its table of what
 * it believes runs, and the marks the agent's own starts and stops leave. */
#include "agent/engine_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/ops.h"
#include "common/array.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "engine/events.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 30000
#define OP_START_MARK_MS 60000 /* a start takes at most its create and ready waits */
#define OP_STOP_SETTLE_MS 2000 /* the engine's die event trails its stop answer */
#define OOM_WINDOW_MS 5000     /* an oom event this close before a die caused it */
/* A kill (docker stop's SIGTERM) this close before a die caused it: the
 * engine's grace is 10 s by default, then SIGKILL. */
#define KILL_WINDOW_MS ((STOP_GRACE_S + 5) * 1000)

typedef struct {
    char uuid[UUID_STR_LEN];
    bool running;
    bool op_stop;         /* the agent's own kill/delete is stopping it */
    bool op_stop_done;    /* ...and the watcher published that stop */
    int64_t op_start_end; /* until then, a start event is the agent's own */
    bool start_seen;      /* the engine's start event came during the op */
    int64_t last_kill_ms, last_oom_ms;
} tracked;

struct engine_watch {
    agent *a;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* settles, and the backoff sleep's wake-up */
    atomic_bool stop;
    bool connected; /* the stream is up now */
    tracked *t;
    size_t n, cap;
};

/* ---- the table (mu held) ---- */

static tracked *find(engine_watch *w, const char *uuid)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].uuid, uuid) == 0)
            return &w->t[i];
    return NULL;
}

static tracked *find_or_add(engine_watch *w, const char *uuid)
{
    tracked *t = find(w, uuid);
    if (t != NULL)
        return t;
    if (grow_array(&w->t, &w->cap, w->n + 1, sizeof *w->t, 16) < 0) {
        log_error("engine watch: out of memory tracking %s", uuid);
        return NULL;
    }
    t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    memcpy(t->uuid, uuid, UUID_STR_LEN);
    return t;
}

/* An entry neither running nor marked by an op in flight tells nothing that
 * the engine's next event or list would not. Such entries are dropped, so
 * the table holds what runs and what an op is busy with: before, every
 * session ever stopped or deleted stayed in it for the agent's life (a
 * delete added one), growing memory and every lookup's scan. */
static bool idle_entry(const tracked *t)
{
    return !t->running && !t->op_stop && t->op_start_end == 0;
}

/* Compacts the table; pointers into it are stale afterwards. */
static void drop_idle(engine_watch *w)
{
    size_t kept = 0;
    for (size_t i = 0; i < w->n; i++)
        if (!idle_entry(&w->t[i]))
            w->t[kept++] = w->t[i];
    w->n = kept;
}

/* ---- publishing ---- */

static void publish_started(engine_watch *w, const char *uuid)
{
    store_entry e;
    char err[256];
    if (store_get(w->a->store, uuid, &e, err, sizeof err) < 0) {
        log_info("engine watch: %s started outside the agent but is no session here: %s", uuid,
                 err);
        return;
    }
    log_info("engine watch: %s started outside the agent", uuid);
    emitter_publish(w->a->events, "container.started", uuid, session_object(w->a, &e, true, false));
    store_entry_clear(&e);
}

static void publish_stopped(engine_watch *w, const char *uuid, int exit_code, bool oom,
                            const char *by)
{
    json_t *code = exit_code >= 0 ? json_integer(exit_code) : json_null();
    log_info("engine watch: %s stopped (exit %d, oom %s, by %s)", uuid, exit_code,
             oom ? "yes" : "no", by);
    emitter_publish(w->a->events, "container.stopped", uuid,
                    json_pack("{s:o, s:b, s:s}", "exit_code", code, "oom", oom, "by", by));
}

/* ---- events ---- */

static void on_start(engine_watch *w, tracked *t, int64_t now)
{
    if (t->running)
        return; /* replayed, or already known from a list */
    t->running = true;
    t->last_kill_ms = t->last_oom_ms = 0;
    t->start_seen = true;
    if (now < t->op_start_end)
        t->op_start_end = 0; /* the op publishes its own start */
    else
        publish_started(w, t->uuid);
}

static void on_die(engine_watch *w, tracked *t, int exit_code, int64_t now)
{
    if (!t->running)
        return; /* replayed, or its stop already published */
    t->running = false;
    bool oom = t->last_oom_ms != 0 && now - t->last_oom_ms <= OOM_WINDOW_MS;
    bool killed = t->last_kill_ms != 0 && now - t->last_kill_ms <= KILL_WINDOW_MS;
    const char *by = t->op_stop ? "operator" : (oom || killed) ? "engine" : "session";
    publish_stopped(w, t->uuid, exit_code, oom, by);
    if (t->op_stop) {
        t->op_stop_done = true;
        pthread_cond_broadcast(&w->cond);
    }
}

static void on_event(const docker_event *ev, void *ctx)
{
    engine_watch *w = ctx;
    int64_t now = monotonic_ms();
    pthread_mutex_lock(&w->mu);
    /* Only a start makes a container worth tracking; any other event of
     * one the table does not hold changes nothing (it does not run). */
    tracked *t = ev->action == DOCKER_EV_START ? find_or_add(w, ev->uuid) : find(w, ev->uuid);
    if (t != NULL) {
        if (ev->action == DOCKER_EV_START)
            on_start(w, t, now);
        else if (ev->action == DOCKER_EV_DIE)
            on_die(w, t, ev->exit_code, now);
        else if (ev->action == DOCKER_EV_OOM)
            t->last_oom_ms = now;
        else if (ev->action == DOCKER_EV_KILL)
            t->last_kill_ms = now;
    }
    drop_idle(w);
    pthread_mutex_unlock(&w->mu);
}

static void on_up(void *ctx)
{
    engine_watch *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->connected = true;
    pthread_mutex_unlock(&w->mu);
}

/* ---- reconciling with a list ---- */

static bool listed_running(const docker_session_info *list, size_t n, const char *uuid)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].running && strcmp(list[i].uuid, uuid) == 0)
            return true;
    return false;
}

/* Applies a fresh list. quiet: the first one, at agent start, only learns
 * what runs (SPEC 6.4 adopts it); later ones publish what changed while
 * the stream was down. Exit codes are lost then: null. */
static void reconcile(engine_watch *w, const docker_session_info *list, size_t n, bool quiet)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n; i++) {
        tracked *t = &w->t[i];
        if (!t->running || listed_running(list, n, t->uuid))
            continue;
        t->running = false;
        if (!quiet)
            publish_stopped(w, t->uuid, -1, false, t->op_stop ? "operator" : "engine");
        if (t->op_stop) {
            t->op_stop_done = true;
            pthread_cond_broadcast(&w->cond);
        }
    }
    int64_t now = monotonic_ms();
    for (size_t i = 0; i < n; i++) {
        tracked *t = list[i].running ? find_or_add(w, list[i].uuid) : NULL;
        if (t == NULL || t->running)
            continue;
        t->running = true;
        if (!quiet && now >= t->op_start_end)
            publish_started(w, t->uuid);
    }
    drop_idle(w);
    pthread_mutex_unlock(&w->mu);
}

/* ---- the thread ---- */

/* Sleeps ms unless told to stop; true when it should go on. */
static bool pause_ms(engine_watch *w, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->stop) && pthread_cond_timedwait(&w->cond, &w->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&w->mu);
    return !atomic_load(&w->stop);
}

/* Lists the containers and reconciles; false when the engine cannot say. */
static bool relist(engine_watch *w, bool quiet)
{
    docker_session_info *list;
    size_t n;
    char err[256];
    if (docker_list_sessions(w->a->docker, w->a->agent_id, &list, &n, err, sizeof err) < 0) {
        log_warn("engine watch: %s", err);
        return false;
    }
    reconcile(w, list, n, quiet);
    free(list);
    return true;
}

static void *watch_main(void *arg)
{
    engine_watch *w = arg;
    int backoff = BACKOFF_FIRST_MS;
    bool first = true;
    while (!atomic_load(&w->stop)) {
        /* Listed first, then the stream from a second before: what happens
         * in between is replayed by the engine, and the table drops repeats. */
        double since = (double)time(NULL) - 1;
        if (relist(w, first)) {
            char err[256];
            if (!first)
                log_info("engine watch: following the engine's events again");
            first = false;
            int64_t began = monotonic_ms();
            if (docker_follow_events(w->a->docker, w->a->agent_id, since, on_up, on_event, w,
                                     &w->stop, err, sizeof err) == 0)
                break;
            pthread_mutex_lock(&w->mu);
            w->connected = false;
            pthread_mutex_unlock(&w->mu);
            if (monotonic_ms() - began > BACKOFF_MAX_MS)
                backoff = BACKOFF_FIRST_MS; /* it had been up a while: a fresh outage */
            log_warn("engine watch: %s; reconnecting in %d s", err, backoff / 1000);
        }
        if (!pause_ms(w, backoff))
            break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

engine_watch *engine_watch_start(agent *a)
{
    engine_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        log_error("engine watch: out of memory; running without engine events");
        return NULL;
    }
    w->a = a;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    if (rc != 0) {
        log_error("engine watch: cannot start its thread: %s; running without engine events",
                  strerror(rc));
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void engine_watch_stop(engine_watch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stop, true);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w->t);
    free(w);
}

int engine_watch_running_count(engine_watch *w)
{
    if (w == NULL)
        return -1;
    int n = 0;
    pthread_mutex_lock(&w->mu);
    /* Only a followed stream keeps the table true: while it is down, what
     * the table says may be stale by any amount. */
    if (w->connected)
        for (size_t i = 0; i < w->n; i++)
            n += w->t[i].running;
    else
        n = -1;
    pthread_mutex_unlock(&w->mu);
    return n;
}

size_t engine_watch_table_size(engine_watch *w)
{
    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->mu);
    size_t n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

int engine_watch_running_sessions(engine_watch *w, docker_session_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (w == NULL)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&w->mu);
    if (w->connected) {
        *out = calloc(w->n ? w->n : 1, sizeof **out);
        rc = *out ? 0 : -1;
        for (size_t i = 0; *out && i < w->n; i++)
            if (w->t[i].running) {
                memcpy((*out)[*n].uuid, w->t[i].uuid, UUID_STR_LEN);
                (*out)[(*n)++].running = true;
            }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- the agent's own starts and stops ---- */

void engine_watch_op_start_begin(engine_watch *w, const char *uuid)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    tracked *t = find_or_add(w, uuid);
    if (t != NULL) {
        t->op_start_end = monotonic_ms() + OP_START_MARK_MS;
        t->start_seen = false;
    }
    pthread_mutex_unlock(&w->mu);
}

void engine_watch_op_start_end(engine_watch *w, const char *uuid, bool ok)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    tracked *t = find(w, uuid);
    /* Its start event is still on the way: it will find it running. Once
     * the event came, the table already holds the truth (a container that
     * died right after its start stays stopped here). */
    if (t != NULL && ok && !t->running && !t->start_seen) {
        t->running = true;
        t->last_kill_ms = t->last_oom_ms = 0;
    }
    if (t != NULL)
        t->op_start_end = 0;
    drop_idle(w);
    pthread_mutex_unlock(&w->mu);
}

void engine_watch_op_stop_begin(engine_watch *w, const char *uuid)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    tracked *t = find_or_add(w, uuid);
    if (t != NULL) {
        t->op_stop = true;
        t->op_stop_done = false;
    }
    pthread_mutex_unlock(&w->mu);
}

static void settle_deadline(struct timespec *until)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_nsec += (long)(OP_STOP_SETTLE_MS % 1000) * 1000000L;
    until->tv_sec += OP_STOP_SETTLE_MS / 1000 + until->tv_nsec / 1000000000L;
    until->tv_nsec %= 1000000000L;
}

bool engine_watch_op_stop_end(engine_watch *w, const char *uuid, bool stopped)
{
    if (w == NULL)
        return false;
    if (!stopped) {
        pthread_mutex_lock(&w->mu);
        tracked *t = find(w, uuid);
        if (t != NULL)
            t->op_stop = t->op_stop_done = false;
        drop_idle(w);
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    struct timespec until;
    settle_deadline(&until);
    pthread_mutex_lock(&w->mu);
    tracked *t = find(w, uuid);
    /* The die event trails the engine's answer by milliseconds; waiting for
     * it keeps this stop's event before whatever the op publishes next. */
    while (t != NULL && t->running && !t->op_stop_done && w->connected) {
        int rc = pthread_cond_timedwait(&w->cond, &w->mu, &until);
        t = find(w, uuid); /* entries move while we wait: the table grows and compacts */
        if (rc == ETIMEDOUT)
            break;
    }
    bool published = false;
    if (t != NULL && t->op_stop_done) {
        published = true;
    } else if (t != NULL && t->running) {
        t->running = false; /* the stream is down or late: publish it here, once */
        publish_stopped(w, uuid, -1, false, "operator");
        published = true;
    }
    if (t != NULL)
        t->op_stop = t->op_stop_done = false;
    drop_idle(w);
    pthread_mutex_unlock(&w->mu);
    return published;
}
