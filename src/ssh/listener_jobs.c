/* Slow work for a channel: run on a worker thread, then handed back
 * through the connection's wake pipe so that its done callback runs on the
 * connection thread.
 *
 * Workers are kept parked between jobs rather than made per job. A fresh
 * thread costs its creation, and on a busy machine the scheduler starts it
 * behind every runnable thread, which showed as a few milliseconds' tail on
 * the fastest calls (ping); a parked worker wakes as a sleeper and runs at
 * once. Reusing workers also keeps malloc on the same few arenas. Nothing is
 * ever queued behind a busy worker: when none is idle, a new one is made, so
 * a slow job (an engine call that takes seconds) never delays another. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "ssh/listener_internal.h"

/* Parked workers kept for the next jobs; a worker that finishes when this
 * many already wait exits. A handful covers the bursts of one operator's
 * TUI and fan-out; more would only hold stacks. */
#define POOL_IDLE_MAX 4

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work;
    job *head, *tail; /* handed over, not yet taken by a worker */
    int queued;       /* jobs in that list */
    int idle;         /* workers waiting on `work` */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0};

static void job_finish(job *j)
{
    j->work(j->arg);
    /* Hand the job back; a pointer is far below PIPE_BUF, so it is atomic. */
    ssize_t n;
    do
        n = write(j->conn->wake[1], &j, sizeof j);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof j)
        log_error("job completion lost: %s", strerror(errno));
}

/* The next handed-over job, parking until one comes; NULL when this worker
 * should exit because enough others are parked. Called with pool.mu held. */
static job *pool_take(void)
{
    while (pool.head == NULL) {
        if (pool.idle >= POOL_IDLE_MAX)
            return NULL;
        pool.idle++;
        pthread_cond_wait(&pool.work, &pool.mu);
        pool.idle--;
    }
    job *j = pool.head;
    pool.head = j->next;
    if (pool.head == NULL)
        pool.tail = NULL;
    pool.queued--;
    j->next = NULL;
    return j;
}

static void *worker_main(void *arg)
{
    job *j = arg;
    for (;;) {
        job_finish(j);
        pthread_mutex_lock(&pool.mu);
        j = pool_take();
        pthread_mutex_unlock(&pool.mu);
        if (j == NULL)
            return NULL;
    }
}

/* Gives j to a parked worker, or to a new one when none is parked. */
static int pool_submit(job *j)
{
    pthread_mutex_lock(&pool.mu);
    /* Only jobs that a parked worker will take are queued: each queued job
     * is matched by one idle worker, so none waits behind a busy one. */
    if (pool.idle > pool.queued) {
        if (pool.tail != NULL)
            pool.tail->next = j;
        else
            pool.head = j;
        pool.tail = j;
        pool.queued++;
        pthread_cond_signal(&pool.work);
        pthread_mutex_unlock(&pool.mu);
        return 0;
    }
    pthread_mutex_unlock(&pool.mu);
    return start_detached_thread(worker_main, j);
}

int start_detached_thread(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    int rc = pthread_attr_init(&attr);
    if (rc != 0)
        return rc;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&tid, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc;
}

int lchan_run_job(lchan *ch, void (*work)(void *arg),
                  void (*done)(lchan *ch, void *arg, void *state), void *arg)
{
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return -1;
    *j = (job){.conn = ch->conn, .ch = ch, .work = work, .done = done, .arg = arg};
    int rc = pool_submit(j);
    if (rc != 0) {
        log_error("%s: cannot start a worker thread: %s", ch->name, strerror(rc));
        free(j);
        return -1;
    }
    ch->jobs++;
    ch->conn->jobs++;
    return 0;
}

int on_wake(socket_t fd, int revents, void *userdata)
{
    lconn *c = userdata;
    job *j;
    (void)revents;
    for (;;) {
        ssize_t n = read(fd, &j, sizeof j);
        if (n != (ssize_t)sizeof j)
            break;
        if (j == NULL) {
            atomic_store(&c->stop, true);
            continue;
        }
        j->next = c->completed;
        c->completed = j;
    }
    return 0;
}

/* Runs the done callbacks of finished jobs, oldest first. */
void run_completed_jobs(lconn *c)
{
    job *list = NULL;
    while (c->completed != NULL) { /* reverse into completion order */
        job *j = c->completed;
        c->completed = j->next;
        j->next = list;
        list = j;
    }
    while (list != NULL) {
        job *j = list;
        list = j->next;
        lchan *ch = j->ch;
        if (j->done)
            j->done(ch, j->arg, ch->state);
        ch->jobs--;
        c->jobs--;
        free(j);
    }
}
