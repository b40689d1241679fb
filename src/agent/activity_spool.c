/* Reading one session's activity spool file, which the session writes and
 * may have replaced with anything: a symlink, a FIFO, a device node, a
 * hard link, a file of garbage or of endless lines.
 *
 * The file is first opened as O_PATH without following links and checked
 * (a regular file with one link) before it is opened for reading through
 * /proc/self/fd, so nothing but that checked inode is ever opened: a FIFO
 * or a device is never opened for I/O at all. Reads are non-blocking and
 * bounded per pass. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/activity_internal.h"
#include "common/log.h"
#include "common/timeutil.h"

#define EVENTS_NAME "events"
#define PASS_MAX (256 * 1024) /* bytes read per pass and session */
#define CHUNK 16384
#define TS_SLACK_S (24 * 3600)

void spool_count_drop(activity_watcher *w, const char *uuid, const char *why)
{
    unsigned long held_back;
    w->dropped++;
    if (ratelimit_pass(&w->drop_log, monotonic_ms(), RATELIMIT_DEFAULT_MS, &held_back))
        log_warn("activity of session %s: dropped: %s (%lu dropped since start, %lu not logged)",
                 uuid, why, w->dropped, held_back);
}

json_t *spool_session_json(const spool_session *s)
{
    if (!s->known)
        return json_null();
    char since[RFC3339_LEN];
    rfc3339_format(s->since, since);
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "state", activity_state_name(s->state),
                     "since", since, "detail", s->detail, "cost_usd",
                     s->has_cost ? json_real(s->cost_usd) : json_null(), "context_pct",
                     s->has_context ? json_real(s->context_pct) : json_null(), "model",
                     s->model[0] ? json_string(s->model) : json_null());
}

/* The line's time when it is plausible, else now: a session cannot move
 * "since" into the future or far into the past. */
static time_t line_time(const activity_line *l)
{
    time_t now = time(NULL), t = (time_t)(l->ts_ms / 1000);
    return t > now || t < now - TS_SLACK_S ? now : t;
}

/* Applies one parsed line; true when the activity object changed. */
static bool apply_line(spool_session *s, const activity_line *l)
{
    if (l->kind == ACTIVITY_LINE_STATE) {
        bool same = s->known && s->state == l->state && strcmp(s->detail, l->detail) == 0;
        if (!s->known || s->state != l->state)
            s->since = line_time(l);
        s->known = true;
        s->state = l->state;
        snprintf(s->detail, sizeof s->detail, "%s", l->detail);
        return !same;
    }
    bool changed = false;
    if (l->has_cost && (!s->has_cost || s->cost_usd != l->cost_usd)) {
        s->has_cost = true;
        s->cost_usd = l->cost_usd;
        changed = true;
    }
    if (l->has_context && (!s->has_context || s->context_pct != l->context_pct)) {
        s->has_context = true;
        s->context_pct = l->context_pct;
        changed = true;
    }
    if (l->model[0] && strcmp(s->model, l->model) != 0) {
        snprintf(s->model, sizeof s->model, "%s", l->model);
        changed = true;
    }
    /* A status before any state line: Claude runs, so it is at least idle. */
    if (changed && !s->known) {
        s->known = true;
        s->state = ACTIVITY_IDLE;
        s->since = line_time(l);
    }
    return changed && s->known;
}

static void take_line(activity_watcher *w, spool_session *s, const char *line, size_t len,
                      bool publish)
{
    activity_line l;
    char why[128];
    if (activity_line_parse(line, len, &l, why, sizeof why) < 0) {
        spool_count_drop(w, s->uuid, why);
        return;
    }
    if (apply_line(s, &l) && publish)
        emitter_publish(w->events, "session.activity", s->uuid, spool_session_json(s));
}

/* Splits a chunk into lines, carrying an unfinished one to the next. */
static void take_chunk(activity_watcher *w, spool_session *s, const char *buf, size_t n,
                       bool publish)
{
    while (n > 0) {
        const char *nl = memchr(buf, '\n', n);
        size_t part = nl ? (size_t)(nl - buf) : n;
        if (!s->skipping && s->carry_len + part < ACTIVITY_LINE_MAX) {
            memcpy(s->carry + s->carry_len, buf, part);
            s->carry_len += part;
        } else if (!s->skipping) {
            s->skipping = true;
            spool_count_drop(w, s->uuid, "a line longer than 1 KiB");
        }
        if (nl == NULL)
            return;
        if (!s->skipping)
            take_line(w, s, s->carry, s->carry_len, publish);
        s->carry_len = 0;
        s->skipping = false;
        buf += part + 1;
        n -= part + 1;
    }
}

/* The events file as a checked, readable descriptor; -1 when there is none
 * (ENOENT: nothing written yet) or it was refused (counted). */
static int open_checked(activity_watcher *w, spool_session *s, struct stat *st)
{
    char path[PATH_BUF + 64];
    snprintf(path, sizeof path, "%s/%s", w->spool_root, s->uuid);
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int pfd = openat(dfd, EVENTS_NAME, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (pfd < 0)
        return -1;
    int fd = -1;
    if (fstat(pfd, st) < 0 || !S_ISREG(st->st_mode) || st->st_nlink != 1) {
        spool_count_drop(w, s->uuid,
                         S_ISLNK(st->st_mode) ? "the events file is a symlink (not followed)"
                                              : "the events file is no regular file of one link");
    } else {
        snprintf(path, sizeof path, "/proc/self/fd/%d", pfd);
        /* Read-only: closing a writable descriptor is an IN_CLOSE_WRITE on
         * the watched directory, which made every pass wake the next one
         * (the thread spun at a core's worth of CPU per running session). */
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        struct stat again;
        if (fd >= 0 &&
            (fstat(fd, &again) < 0 || again.st_ino != st->st_ino || again.st_dev != st->st_dev)) {
            close(fd);
            fd = -1;
        }
    }
    close(pfd);
    return fd;
}

/* Past ACTIVITY_FILE_MAX and read to its end: empty the file. The hooks
 * append under an exclusive flock, so holding it (never waiting for it)
 * and finding the size unchanged means no line can be lost. Only here is
 * the file opened for writing (the same inode, through the read fd), so
 * the inotify events this causes wake one more pass, which finds the file
 * empty and writes nothing. */
static void maybe_truncate(spool_session *s, int fd)
{
    struct stat st;
    char path[64];
    if (s->offset < ACTIVITY_FILE_MAX)
        return;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (wfd < 0)
        return;
    if (flock(wfd, LOCK_EX | LOCK_NB) == 0) {
        if (fstat(wfd, &st) == 0 && st.st_size == s->offset && ftruncate(wfd, 0) == 0)
            s->offset = 0;
        flock(wfd, LOCK_UN);
    }
    close(wfd);
}

void spool_drain(activity_watcher *w, spool_session *s, bool publish)
{
    struct stat st;
    int fd = open_checked(w, s, &st);
    s->pending = false;
    if (fd < 0)
        return;
    if (st.st_dev != s->dev || st.st_ino != s->ino || st.st_size < s->offset) {
        /* A new file, or one emptied under us: start over. */
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->offset = 0;
        s->carry_len = 0;
        s->skipping = false;
    }
    char buf[CHUNK];
    size_t total = 0;
    while (total < PASS_MAX) {
        ssize_t n = pread(fd, buf, sizeof buf, s->offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        s->offset += n;
        total += (size_t)n;
        take_chunk(w, s, buf, (size_t)n, publish);
    }
    if (total >= PASS_MAX)
        s->pending = true;
    else
        maybe_truncate(s, fd);
    close(fd);
}
