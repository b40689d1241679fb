#include "shell/tui/jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shell/sessions.h"

struct tui_jobs {
    int notify_fd;
    pthread_mutex_t lock;
    pthread_cond_t ended;
    unsigned next_id;
    size_t running;
    tui_job *done_head, *done_tail;
};

tui_jobs *jobs_new(int notify_fd)
{
    tui_jobs *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->notify_fd = notify_fd;
    j->next_id = 1;
    if (pthread_mutex_init(&j->lock, NULL) != 0 || pthread_cond_init(&j->ended, NULL) != 0) {
        free(j);
        return NULL;
    }
    return j;
}

tui_job *job_new(job_kind kind, const char *op)
{
    tui_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->kind = kind;
    snprintf(job->op, sizeof job->op, "%s", op);
    return job;
}

void job_free(tui_job *job)
{
    if (job == NULL)
        return;
    json_decref(job->params);
    json_decref(job->result);
    if (job->replies) {
        agent_replies_clear(job->replies, job->n_replies);
        free(job->replies);
    }
    if (job->auth) {
        agent_replies_clear(job->auth, job->n_replies);
        free(job->auth);
    }
    if (job->settings) {
        agent_replies_clear(job->settings, job->n_replies);
        free(job->settings);
    }
    free(job);
}

/* The shell, not the agent, owns cluster-wide DNS uniqueness (SPEC 12). */
static bool dns_name_taken(tui_job *job)
{
    if (job->dns_name[0] == '\0' || job->reg == NULL)
        return false;
    cluster_list l;
    bool taken = false;
    if (cluster_list_load(job->reg, &l) == 0) {
        const char *owner =
            cluster_dns_owner(&l, job->dns_name, job->except_uuid[0] ? job->except_uuid : NULL);
        if (owner) {
            snprintf(job->error, sizeof job->error,
                     "dns name \"%s\" already in use by session \"%s\"", job->dns_name, owner);
            taken = true;
        }
    }
    cluster_list_free(&l);
    return taken;
}

/* Only agents that answered the ping are asked op: a dead agent costs one
 * timeout, not three. */
static int ask_live(tui_job *job, const char *op, agent_reply **out)
{
    size_t n = job->n_replies ? job->n_replies : 1;
    bool *skip = calloc(n, sizeof *skip);
    *out = calloc(n, sizeof **out);
    if (skip == NULL || *out == NULL) {
        free(skip);
        return -1;
    }
    for (size_t i = 0; i < job->n_replies; i++)
        skip[i] = job->replies[i].result == NULL;
    int rc = agent_call_some(job->reg, op, NULL, skip, *out);
    free(skip);
    return rc;
}

static void run_ping_all(tui_job *job)
{
    job->n_replies = job->reg->n;
    job->replies = calloc(job->n_replies ? job->n_replies : 1, sizeof *job->replies);
    if (job->replies == NULL || agent_call_all(job->reg, "ping", NULL, job->replies) < 0 ||
        ask_live(job, "auth-get", &job->auth) < 0 ||
        ask_live(job, "settings-get", &job->settings) < 0) {
        snprintf(job->error, sizeof job->error, "out of memory");
        return;
    }
    job->ok = true;
}

static void run_job(tui_job *job)
{
    if (job->kind == JOB_PING_ALL) {
        run_ping_all(job);
        return;
    }
    if (job->kind == JOB_SESSION && dns_name_taken(job))
        return;
    job->result = agent_call(job->agent, job->op, job->params, job->error, sizeof job->error);
    job->ok = job->result != NULL;
}

struct job_start {
    tui_jobs *jobs;
    tui_job *job;
};

static void *job_thread(void *arg)
{
    struct job_start *start = arg;
    tui_jobs *j = start->jobs;
    tui_job *job = start->job;
    free(start);
    run_job(job);
    pthread_mutex_lock(&j->lock);
    if (j->done_tail)
        j->done_tail->next = job;
    else
        j->done_head = job;
    j->done_tail = job;
    j->running--;
    pthread_cond_broadcast(&j->ended);
    pthread_mutex_unlock(&j->lock);
    if (write(j->notify_fd, "j", 1) < 0) {
        /* a full pipe already holds a wake-up */
    }
    return NULL;
}

unsigned jobs_submit(tui_jobs *j, tui_job *job)
{
    struct job_start *start = malloc(sizeof *start);
    if (start == NULL) {
        job_free(job);
        return 0;
    }
    *start = (struct job_start){j, job};
    pthread_mutex_lock(&j->lock);
    job->id = j->next_id++;
    if (j->next_id == 0)
        j->next_id = 1;
    unsigned id = job->id;
    pthread_t t;
    if (pthread_create(&t, NULL, job_thread, start) != 0) {
        pthread_mutex_unlock(&j->lock);
        free(start);
        job_free(job);
        return 0;
    }
    pthread_detach(t);
    j->running++;
    pthread_mutex_unlock(&j->lock);
    return id;
}

tui_job *jobs_take_done(tui_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    tui_job *job = j->done_head;
    if (job) {
        j->done_head = job->next;
        if (j->done_head == NULL)
            j->done_tail = NULL;
        job->next = NULL;
    }
    pthread_mutex_unlock(&j->lock);
    return job;
}

bool jobs_stop(tui_jobs *j, int wait_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (wait_ms + 999) / 1000; /* whole seconds are precise enough here */
    pthread_mutex_lock(&j->lock);
    while (j->running > 0)
        if (pthread_cond_timedwait(&j->ended, &j->lock, &deadline) == ETIMEDOUT)
            break;
    bool idle = j->running == 0;
    pthread_mutex_unlock(&j->lock);
    if (!idle)
        return false; /* a job still runs: exit() reclaims what it holds */
    tui_job *job;
    while ((job = jobs_take_done(j)) != NULL)
        job_free(job);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->ended);
    free(j);
    return true;
}
