#include "agent/lock_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"

#define NS_PER_MS 1000000LL
#define OPEN_TRIES 4

/* What identifies the directory's state: any entry made, removed or
 * renamed moves its change time; a new directory has a new inode. */
typedef struct {
    dev_t dev;
    ino_t ino;
    struct timespec ctime;
} dir_state;

struct lock_watch {
    pthread_mutex_t mu; /* list calls come from several connection threads */
    char dir[PATH_BUF];
    bool trusted; /* names and seen hold a settled read */
    dir_state seen;
    lock_names names;
};

static long long ns_of(struct timespec t)
{
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int stat_dir(const char *dir, dir_state *out)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return -1;
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->ctime = st.st_ctim;
    return 0;
}

static bool same_state(const dir_state *a, const dir_state *b)
{
    return a->dev == b->dev && a->ino == b->ino && ns_of(a->ctime) == ns_of(b->ctime);
}

/* Reads the names again. The clock is read before the directory's state:
 * a change after the read carries a change time of at least "now" minus
 * one tick, so once "now" is LOCK_WATCH_SETTLE_MS past the state's time,
 * any later change shows as a different time. A read made sooner is used
 * for this call only. */
static int reread(lock_watch *w)
{
    struct timespec now;
    dir_state before;
    lock_names fresh;
    w->trusted = false;
    if (clock_gettime(CLOCK_REALTIME, &now) < 0 || stat_dir(w->dir, &before) < 0 ||
        lock_names_scan(w->dir, &fresh) < 0)
        return -1;
    lock_names_free(&w->names);
    w->names = fresh;
    w->seen = before;
    w->trusted = ns_of(now) - ns_of(before.ctime) >= LOCK_WATCH_SETTLE_MS * NS_PER_MS;
    return 0;
}

/* 1 when the names must be read again, 0 when they stand, -1 on error. */
static int changed(lock_watch *w)
{
    dir_state now;
    if (stat_dir(w->dir, &now) < 0)
        return -1;
    return !w->trusted || !same_state(&now, &w->seen);
}

lock_watch *lock_watch_open(const char *dir)
{
    lock_watch *w = calloc(1, sizeof *w);
    if (w == NULL || snprintf(w->dir, sizeof w->dir, "%s", dir) >= (int)sizeof w->dir) {
        free(w);
        log_warn("lock files in %s: out of memory or path too long", dir);
        return NULL;
    }
    /* A home root that just changed (a create, a test planting sessions)
     * is read again after it settles, so that lists start from memory. */
    int rc = reread(w);
    for (int i = 1; rc == 0 && !w->trusted && i < OPEN_TRIES; i++) {
        struct timespec pause = {0, LOCK_WATCH_SETTLE_MS * NS_PER_MS};
        nanosleep(&pause, NULL);
        rc = reread(w);
    }
    if (rc < 0) {
        log_warn("cannot read %s for lock files (%s): list reads it per call", dir,
                 strerror(errno));
        lock_names_free(&w->names);
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

void lock_watch_close(lock_watch *w)
{
    if (w == NULL)
        return;
    lock_names_free(&w->names);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int lock_watch_names(lock_watch *w, lock_names *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&w->mu);
    int rc = changed(w);
    if (rc == 1)
        rc = reread(w);
    if (rc == 0)
        rc = lock_names_copy(out, &w->names);
    pthread_mutex_unlock(&w->mu);
    return rc;
}
