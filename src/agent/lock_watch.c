#include "agent/lock_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/log.h"

/* Names coming and going; the directory itself going away or moving. */
#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |         \
     IN_ONLYDIR)
#define EVENT_BUF 4096

struct lock_watch {
    pthread_mutex_t mu; /* list calls come from several connection threads */
    char dir[PATH_BUF];
    int fd;
    int wd;     /* -1: not watching (the directory went away) */
    bool stale; /* events were lost: names must be read again */
    lock_names names;
};

/* Watch first, read second: a lock made in between shows in both, and
 * an event about a name already known changes nothing. */
static int rescan(lock_watch *w)
{
    if (w->wd < 0 && (w->wd = inotify_add_watch(w->fd, w->dir, WATCH_MASK)) < 0)
        return -1;
    lock_names fresh;
    if (lock_names_scan(w->dir, &fresh) < 0)
        return -1;
    lock_names_free(&w->names);
    w->names = fresh;
    w->stale = false;
    return 0;
}

static void apply_event(lock_watch *w, const struct inotify_event *ev)
{
    char uuid[UUID_STR_LEN];
    if (ev->mask & IN_Q_OVERFLOW) {
        w->stale = true;
        return;
    }
    if (ev->wd != w->wd)
        return; /* a watch dropped earlier */
    if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
        inotify_rm_watch(w->fd, w->wd); /* fails once the kernel dropped it: fine */
        w->wd = -1;
        w->stale = true;
        return;
    }
    /* ev->name is NUL-padded within ev->len bytes (inotify(7)). */
    if (ev->len == 0 || strnlen(ev->name, ev->len) == ev->len || !lock_file_uuid(ev->name, uuid))
        return;
    int rc = ev->mask & (IN_CREATE | IN_MOVED_TO) ? lock_names_add(&w->names, uuid) : 0;
    if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
        lock_names_remove(&w->names, uuid);
    if (rc < 0)
        w->stale = true; /* out of memory: know it from the directory next time */
}

/* Everything the kernel queued so far. */
static void drain(lock_watch *w)
{
    char buf[EVENT_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || errno != EAGAIN)
                w->stale = true;
            return;
        }
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            off += (ssize_t)(sizeof *ev + ev->len);
            if (off > n) {
                w->stale = true; /* cannot happen: the kernel gives whole events */
                break;
            }
            apply_event(w, ev);
        }
    }
}

lock_watch *lock_watch_open(const char *dir)
{
    lock_watch *w = calloc(1, sizeof *w);
    if (w == NULL || snprintf(w->dir, sizeof w->dir, "%s", dir) >= (int)sizeof w->dir) {
        free(w);
        log_warn("lock watch of %s: out of memory or path too long", dir);
        return NULL;
    }
    w->wd = -1;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0 || rescan(w) < 0) {
        log_warn("cannot watch %s for lock files (%s): list reads it per call", dir,
                 strerror(errno));
        if (w->fd >= 0)
            close(w->fd);
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
    close(w->fd);
    lock_names_free(&w->names);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int lock_watch_names(lock_watch *w, lock_names *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&w->mu);
    drain(w);
    int rc = w->stale ? rescan(w) : 0;
    if (rc == 0)
        rc = lock_names_copy(out, &w->names);
    pthread_mutex_unlock(&w->mu);
    return rc;
}
