/* The sampling thread behind capacity_measure() (capacity.h). Admission used
 * to sleep 200 ms between two /proc/stat reads inside the RPC, and every
 * ping after a quiet second paid that sleep. Now one thread takes those two
 * reads every second and readers copy the latest sample under a mutex that
 * is never held across a sleep or a read. */
#include "agent/capacity.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"

/* A window shorter than this says little about the CPU (jiffies are 10 ms):
 * the thread skips a sample that would follow an inline one this closely. */
#define MIN_WINDOW_MS (CPU_SAMPLE_GAP_MS / 2)
/* How late the first sample may be before a reader samples inline. */
#define FIRST_SAMPLE_SLACK_MS 300

/* Stores a reading taken at now_ms, its CPU share against the previous
 * counters; lock held. Wakes readers waiting for the first sample. */
static void store_reading(capacity_meter *m, const host_reading *r, int64_t now_ms)
{
    capacity_snapshot_of(&m->prev_cpu, r, &m->last);
    m->prev_cpu = r->cpu;
    m->prev_ms = m->last_ms = now_ms;
    m->valid = true;
    pthread_cond_broadcast(&m->wake);
}

/* Waits until deadline_ms or a stop; lock held. True when stopping. */
static bool wait_until(capacity_meter *m, int64_t deadline_ms)
{
    struct timespec ts;
    for (;;) {
        int64_t left = deadline_ms - monotonic_ms();
        if (m->stop || left <= 0)
            return m->stop;
        monotonic_deadline(&ts, left);
        pthread_cond_timedwait(&m->wake, &m->mu, &ts);
    }
}

/* The start of a window: the CPU counters alone. Lock held on entry and
 * exit; /proc is read without it, so readers never wait on a read. */
static void read_window_start(capacity_meter *m)
{
    cpu_sample cpu;
    char err[256];
    pthread_mutex_unlock(&m->mu);
    int rc = capacity_read_cpu(&cpu, err, sizeof err);
    int64_t now = monotonic_ms();
    pthread_mutex_lock(&m->mu);
    if (rc == 0) {
        m->prev_cpu = cpu;
        m->prev_ms = now;
    }
}

/* The end of a window: counters and memory, stored as the sample. Lock
 * held on entry and exit. */
static void read_window_end(capacity_meter *m, bool *warned)
{
    host_reading r;
    char err[256];
    pthread_mutex_unlock(&m->mu);
    int rc = capacity_read_host(&r, err, sizeof err);
    int64_t now = monotonic_ms();
    pthread_mutex_lock(&m->mu);
    if (rc < 0 && !*warned)
        log_warn("%s (admission samples inline until it reads again)", err);
    *warned = rc < 0;
    if (rc == 0 && now - m->prev_ms >= MIN_WINDOW_MS)
        store_reading(m, &r, now);
}

/* The periodic hook, run without the lock: readers never wait on it. */
static void run_tick(capacity_meter *m)
{
    void (*fn)(void *) = m->tick;
    void *ctx = m->tick_ctx;
    if (fn == NULL)
        return;
    pthread_mutex_unlock(&m->mu);
    fn(ctx);
    pthread_mutex_lock(&m->mu);
}

static void *sampler_main(void *arg)
{
    capacity_meter *m = arg;
    bool warned = false;
    pthread_mutex_lock(&m->mu);
    /* The first window starts with the counters init read. */
    int64_t end = m->started_ms + CPU_SAMPLE_GAP_MS;
    while (!wait_until(m, end)) {
        read_window_end(m, &warned);
        run_tick(m);
        end = m->prev_ms + CAPACITY_SAMPLE_MS;
        if (wait_until(m, end - CPU_SAMPLE_GAP_MS))
            break;
        read_window_start(m);
        end = m->prev_ms + CPU_SAMPLE_GAP_MS;
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void start_sampler(capacity_meter *m)
{
    /* Signals belong to the main thread (serve's SIGTERM handling). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&m->thread, NULL, sampler_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        log_error("capacity: cannot start the sampling thread (%s); admission samples inline",
                  strerror(rc));
    m->thread_running = rc == 0;
}

void capacity_meter_init(capacity_meter *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    if (monotonic_cond_init(&m->wake) < 0)
        pthread_cond_init(&m->wake, NULL); /* a clock step may then stretch one wait */
    char err[256];
    /* The first window's start: its CPU share is measured from here. */
    if (capacity_read_cpu(&m->prev_cpu, err, sizeof err) < 0)
        log_warn("%s", err);
    m->prev_ms = m->started_ms = monotonic_ms();
    start_sampler(m);
}

void capacity_meter_on_tick(capacity_meter *m, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&m->mu);
    m->tick = fn;
    m->tick_ctx = ctx;
    pthread_mutex_unlock(&m->mu);
}

void capacity_meter_destroy(capacity_meter *m)
{
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->mu);
    if (m->thread_running)
        pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->mu);
}

/* The thread is late, starved or gone: read now, against the last counters
 * read, which are most likely CPU_SAMPLE_GAP_MS old or more (the thread's
 * window start, or the last sample). Lock held. */
static int sample_inline(capacity_meter *m, char *err, size_t errlen)
{
    host_reading r;
    if (capacity_read_host(&r, err, errlen) < 0)
        return -1;
    store_reading(m, &r, monotonic_ms());
    m->sampled_inline++;
    return 0;
}

/* In the first CPU_SAMPLE_GAP_MS of the meter's life there is no sample
 * yet, and a share of the few jiffies since start would be noise (a busy
 * 10 ms reads as 100%): wait for the thread's first sample, once per agent,
 * at most until it is due plus a little. Lock held; returns ms waited. */
static int64_t await_first_sample(capacity_meter *m)
{
    int64_t start = monotonic_ms();
    int64_t due = m->started_ms + CPU_SAMPLE_GAP_MS + FIRST_SAMPLE_SLACK_MS;
    struct timespec ts;
    while (!m->valid && m->thread_running && !m->stop && monotonic_ms() < due) {
        monotonic_deadline(&ts, due - monotonic_ms());
        pthread_cond_timedwait(&m->wake, &m->mu, &ts);
    }
    return monotonic_ms() - start;
}

bool capacity_meter_has_sample(capacity_meter *m)
{
    pthread_mutex_lock(&m->mu);
    bool valid = m->valid;
    pthread_mutex_unlock(&m->mu);
    return valid;
}

int capacity_measure(capacity_meter *m, capacity_snapshot *out, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->mu);
    int64_t waited = m->valid ? 0 : await_first_sample(m);
    int64_t age = monotonic_ms() - m->last_ms;
    bool cached = m->valid && age <= CAPACITY_MAX_AGE_MS;
    int rc = cached ? 0 : sample_inline(m, err, errlen);
    if (rc == 0)
        *out = m->last;
    if (cached)
        m->served_cached++;
    pthread_mutex_unlock(&m->mu);
    if (waited > 0)
        log_debug("capacity: waited %lld ms for the first sample (the agent just started)",
                  (long long)waited);
    if (cached)
        log_debug("capacity: served cached sample age %lld ms", (long long)age);
    else if (rc == 0)
        log_debug("capacity: sampled inline, the last sample was %lld ms old", (long long)age);
    return rc;
}
