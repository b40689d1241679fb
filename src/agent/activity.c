/* The activity watcher's thread and table (see activity.h). One inotify
 * descriptor watches every session's spool directory; an eventfd wakes the
 * thread to stop. The table and every session's state are under one mutex,
 * held only for bounded, non-blocking work. */
#include "agent/activity_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/tree.h"

#define WATCH_MASK                                                                                 \
    (IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW)

/* ---- the table (w->mu held) ---- */

static spool_session *find_session(activity_watcher *w, const char *uuid)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->items[i].uuid, uuid) == 0)
            return &w->items[i];
    return NULL;
}

static spool_session *find_by_wd(activity_watcher *w, int wd)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->items[i].wd == wd)
            return &w->items[i];
    return NULL;
}

static void drop_session(activity_watcher *w, const char *uuid)
{
    spool_session *s = find_session(w, uuid);
    if (s == NULL)
        return;
    if (s->wd >= 0)
        inotify_rm_watch(w->inotify_fd, s->wd);
    *s = w->items[--w->n];
}

static int session_dir(activity_watcher *w, const char *uuid, char *out, size_t size)
{
    if (!uuid_v4_is_valid(uuid) || snprintf(out, size, "%s/%s", w->spool_root, uuid) >= (int)size)
        return -1;
    return 0;
}

/* Starts watching uuid's directory and reads what it holds already. */
static void watch_session(activity_watcher *w, const char *uuid, bool publish)
{
    char dir[PATH_BUF];
    if (session_dir(w, uuid, dir, sizeof dir) < 0 || find_session(w, uuid) != NULL)
        return;
    int wd = inotify_add_watch(w->inotify_fd, dir, WATCH_MASK);
    if (wd < 0) {
        if (errno != ENOENT)
            log_warn("activity of session %s: cannot watch %s: %s", uuid, dir, strerror(errno));
        return;
    }
    if (grow_array(&w->items, &w->cap, w->n + 1, sizeof *w->items, 16) < 0) {
        inotify_rm_watch(w->inotify_fd, wd);
        log_error("activity of session %s: out of memory", uuid);
        return;
    }
    spool_session *s = &w->items[w->n++];
    memset(s, 0, sizeof *s);
    memcpy(s->uuid, uuid, UUID_STR_LEN);
    s->wd = wd;
    spool_drain(w, s, false);
    if (publish && s->known)
        emitter_publish(w->events, "session.activity", s->uuid, spool_session_json(s));
}

/* ---- the thread ---- */

static void handle_inotify(activity_watcher *w, const char *buf, ssize_t len)
{
    for (const char *p = buf; p < buf + len;) {
        const struct inotify_event *ev = (const struct inotify_event *)p;
        p += sizeof *ev + ev->len;
        if (ev->mask & IN_Q_OVERFLOW) {
            /* Events were lost: read every session. */
            for (size_t i = 0; i < w->n; i++)
                spool_drain(w, &w->items[i], true);
            continue;
        }
        spool_session *s = find_by_wd(w, ev->wd);
        if (s == NULL)
            continue;
        if (ev->mask & IN_IGNORED) {
            s->wd = -1; /* the directory is gone */
            continue;
        }
        if (ev->len > 0 && strcmp(ev->name, "events") == 0)
            spool_drain(w, s, true);
    }
}

/* Sessions whose last pass stopped early get another; true when any is
 * still behind (the thread then polls again at once). */
static bool drain_pending(activity_watcher *w)
{
    bool behind = false;
    for (size_t i = 0; i < w->n; i++)
        if (w->items[i].pending) {
            spool_drain(w, &w->items[i], true);
            behind |= w->items[i].pending;
        }
    return behind;
}

static void *watch_thread(void *arg)
{
    activity_watcher *w = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool behind = false;
    for (;;) {
        struct pollfd fds[2] = {{.fd = w->inotify_fd, .events = POLLIN},
                                {.fd = w->wake_fd, .events = POLLIN}};
        int n = poll(fds, 2, behind ? 0 : -1);
        if (n < 0 && errno != EINTR) {
            log_error("activity watcher: poll: %s; activity no longer updates", strerror(errno));
            return NULL;
        }
        pthread_mutex_lock(&w->mu);
        bool stop = w->stopping;
        if (!stop && n > 0 && (fds[0].revents & POLLIN)) {
            ssize_t len = read(w->inotify_fd, buf, sizeof buf);
            if (len > 0)
                handle_inotify(w, buf, len);
        }
        behind = !stop && drain_pending(w);
        pthread_mutex_unlock(&w->mu);
        if (stop)
            return NULL;
    }
}

/* ---- life cycle ---- */

activity_watcher *activity_new(const char *spool_root, emitter *events, uid_t uid, gid_t gid,
                               char *err, size_t errlen)
{
    activity_watcher *w = calloc(1, sizeof *w);
    if (w == NULL || snprintf(w->spool_root, sizeof w->spool_root, "%s", spool_root) >=
                         (int)sizeof w->spool_root) {
        snprintf(err, errlen, "activity spool: out of memory or path too long");
        free(w);
        return NULL;
    }
    w->events = events;
    w->uid = uid;
    w->gid = gid;
    pthread_mutex_init(&w->mu, NULL);
    w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->inotify_fd < 0 || w->wake_fd < 0 || mkdir_p(spool_root, 0755) < 0) {
        snprintf(err, errlen, "activity spool %s: %s", spool_root, strerror(errno));
        activity_free(w);
        return NULL;
    }
    if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
        snprintf(err, errlen, "activity watcher: cannot start its thread");
        activity_free(w);
        return NULL;
    }
    w->thread_started = true;
    return w;
}

void activity_free(activity_watcher *w)
{
    if (w == NULL)
        return;
    if (w->thread_started) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_mutex_unlock(&w->mu);
        uint64_t one = 1;
        if (write(w->wake_fd, &one, sizeof one) < 0)
            log_warn("activity watcher: cannot wake its thread: %s", strerror(errno));
        pthread_join(w->thread, NULL);
    }
    if (w->inotify_fd >= 0)
        close(w->inotify_fd);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    pthread_mutex_destroy(&w->mu);
    free(w->items);
    free(w);
}

/* ---- the agent's calls ---- */

/* The spool directory as it must be: a real directory (not a link), owned
 * by claude, 0700, and without a previous run's events. */
static int make_session_dir(activity_watcher *w, const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        goto fail;
    if (lstat(dir, &st) < 0)
        goto fail;
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "activity spool %s is not a directory: remove it", dir);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        goto fail;
    /* unlinkat never follows: a link or FIFO left there goes too. */
    if (unlinkat(dfd, "events", 0) < 0 && errno != ENOENT)
        log_warn("activity spool %s: cannot remove the old events: %s", dir, strerror(errno));
    int rc = fchmod(dfd, 0700);
    if (rc == 0 && geteuid() == 0)
        rc = fchown(dfd, w->uid, w->gid);
    close(dfd);
    if (rc == 0)
        return 0;
fail:
    snprintf(err, errlen, "activity spool %s: %s", dir, strerror(errno));
    return -1;
}

int activity_prepare(activity_watcher *w, const char *uuid, char *dir, size_t size, char *err,
                     size_t errlen)
{
    if (session_dir(w, uuid, dir, size) < 0) {
        snprintf(err, errlen, "activity spool: invalid id or path too long");
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    drop_session(w, uuid);
    int rc = make_session_dir(w, dir, err, errlen);
    if (rc == 0)
        watch_session(w, uuid, false);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void activity_adopt(activity_watcher *w, const char *uuid)
{
    pthread_mutex_lock(&w->mu);
    watch_session(w, uuid, true);
    pthread_mutex_unlock(&w->mu);
}

void activity_adopt_running(activity_watcher *w, docker_client *d, const char *agent_id)
{
    docker_session_info *info = NULL;
    size_t n = 0;
    char err[256];
    if (docker_list_sessions(d, agent_id, &info, &n, err, sizeof err) < 0) {
        log_warn("activity: cannot list running sessions: %s", err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (info[i].running)
            activity_adopt(w, info[i].uuid);
    free(info);
}

void activity_forget(activity_watcher *w, const char *uuid)
{
    pthread_mutex_lock(&w->mu);
    drop_session(w, uuid);
    pthread_mutex_unlock(&w->mu);
}

void activity_remove(activity_watcher *w, const char *uuid)
{
    char dir[PATH_BUF];
    activity_forget(w, uuid);
    if (session_dir(w, uuid, dir, sizeof dir) == 0 && tree_remove(dir) < 0 && errno != ENOENT)
        log_warn("activity spool %s: cannot remove: %s", dir, strerror(errno));
}

json_t *activity_json(activity_watcher *w, const char *uuid)
{
    pthread_mutex_lock(&w->mu);
    spool_session *s = find_session(w, uuid);
    json_t *obj = s ? spool_session_json(s) : json_null();
    pthread_mutex_unlock(&w->mu);
    return obj;
}

unsigned long activity_dropped(activity_watcher *w)
{
    pthread_mutex_lock(&w->mu);
    unsigned long n = w->dropped;
    pthread_mutex_unlock(&w->mu);
    return n;
}
