/* Slow work for a channel: run on a detached worker thread, then handed
 * back through the connection's wake pipe so that its done callback runs
 * on the connection thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "ssh/listener_internal.h"

static void *job_thread(void *arg)
{
    job *j = arg;
    j->work(j->arg);
    /* Hand the job back; a pointer is far below PIPE_BUF, so it is atomic. */
    ssize_t n;
    do
        n = write(j->conn->wake[1], &j, sizeof j);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof j)
        log_error("job completion lost: %s", strerror(errno));
    return NULL;
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
    int rc = start_detached_thread(job_thread, j);
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
