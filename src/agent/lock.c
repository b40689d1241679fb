#include "agent/lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/ids.h"

#define LOCK_FILE_MAX 64

/* Orders this process's check-then-unlink of stale locks against its own
 * acquisitions, so one thread never removes a lock another just took. */
static pthread_mutex_t lock_mu = PTHREAD_MUTEX_INITIALIZER;

bool lock_is_stale(bool pid_known, bool pid_alive, time_t mtime, time_t now)
{
    if (!pid_known || !pid_alive)
        return true;
    return now - mtime > LOCK_MAX_AGE_S;
}

int lock_parse_pid(const char *text, pid_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || v <= 0 || v > 0x3fffffff)
        return -1;
    while (*end == '\n' || *end == '\r' || *end == ' ')
        end++;
    if (*end != '\0')
        return -1;
    *out = (pid_t)v;
    return 0;
}

bool lock_pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

int lock_parse_proc_starttime(const char *stat_text, unsigned long long *ticks)
{
    /* The command name may hold spaces and parentheses: fields are counted
     * from the last ')'. starttime is field 22, the 20th after it. */
    const char *p = strrchr(stat_text, ')');
    if (p == NULL)
        return -1;
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL)
            return -1;
    }
    char *end;
    errno = 0;
    *ticks = strtoull(p + 1, &end, 10);
    return end == p + 1 || errno ? -1 : 0;
}

static int read_boot_time(time_t *out)
{
    char *text;
    if (read_file_bounded("/proc/stat", 1 << 20, &text, NULL) < 0)
        return -1;
    const char *line = strstr(text, "\nbtime ");
    long long btime = line ? strtoll(line + 7, NULL, 10) : 0;
    free(text);
    if (btime <= 0)
        return -1;
    *out = (time_t)btime;
    return 0;
}

/* A live process that started after the lock was written is not its owner:
 * the owner died and its PID was handed out again. */
static bool pid_reused_since(pid_t pid, time_t lock_mtime)
{
    char path[64], *text = NULL;
    unsigned long long ticks;
    time_t boot;
    long hz = sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    bool known = hz > 0 && read_file_bounded(path, 4096, &text, NULL) == 0 &&
                 lock_parse_proc_starttime(text, &ticks) == 0 && read_boot_time(&boot) == 0;
    free(text);
    if (!known)
        return false; /* cannot tell: trust the PID */
    time_t started = boot + (time_t)(ticks / (unsigned long long)hz);
    return started > lock_mtime + LOCK_CLOCK_SLACK_S;
}

/* The PID a lock names: a regular file's text, or a symlink's target (the
 * form create_lock_link takes on a full disk). */
static bool read_lock_pid(const char *path, const struct stat *st, pid_t *pid)
{
    char target[LOCK_FILE_MAX + 1], *text = NULL;
    bool known = false;
    if (S_ISLNK(st->st_mode)) {
        ssize_t n = readlink(path, target, LOCK_FILE_MAX);
        target[n > 0 ? n : 0] = '\0';
        known = n > 0 && lock_parse_pid(target, pid) == 0;
    } else if (S_ISREG(st->st_mode) && read_file_bounded(path, LOCK_FILE_MAX, &text, NULL) == 0) {
        known = lock_parse_pid(text, pid) == 0;
    }
    free(text);
    return known;
}

/* 1 live, 0 absent or stale (and then removed), -1 error. Caller holds lock_mu. */
static int check_existing(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    pid_t pid = 0;
    bool known = read_lock_pid(path, &st, &pid);
    bool alive = known && lock_pid_alive(pid) && !pid_reused_since(pid, st.st_mtime);
    if (!lock_is_stale(known, alive, st.st_mtime, time(NULL)))
        return 1;
    log_info("removing stale lock %s (pid %d%s)", path, (int)pid,
             alive ? ", older than 24 h" : " gone");
    if (unlink(path) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

static void remember_identity(session_lock *lk, const struct stat *st)
{
    lk->dev = st->st_dev;
    lk->ino = st->st_ino;
    lk->ctime = st->st_ctim;
}

/* On a full disk our PID cannot go into a file (its text needs a data
 * block), but a symlink this short lives in its inode: the lock becomes a
 * symlink whose target is the PID. Without it, delete, the op that frees
 * space, would be refused when space is what is missing. symlink() fails
 * when the lock exists, as link() does. */
static int create_lock_link(const char *path, session_lock *lk)
{
    char pid[32];
    struct stat st;
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    if (symlink(pid, path) < 0 || lstat(path, &st) < 0)
        return -1;
    remember_identity(lk, &st);
    return 0;
}

/* Writes our PID to a temporary file and links it into place: link() fails
 * when the lock exists, and a reader never sees a half-written lock. */
static int create_lock_file(const char *path, session_lock *lk)
{
    char tmp[PATH_BUF], suffix[9], text[32];
    if (random_alnum(suffix, 8) < 0 ||
        snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, suffix) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int len = snprintf(text, sizeof text, "%d\n", (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = -1;
    if (write(fd, text, (size_t)len) != len || fchmod(fd, 0644) < 0)
        goto done;
    if (link(tmp, path) < 0)
        goto done;
    /* The identity is taken once the link count is final (it moves ctime). */
    if (unlink(tmp) < 0 || fstat(fd, &st) < 0)
        goto done;
    remember_identity(lk, &st);
    rc = 0;
done:;
    int saved = errno;
    close(fd);
    unlink(tmp);
    errno = saved;
    if (rc < 0 && (saved == ENOSPC || saved == EDQUOT))
        return create_lock_link(path, lk);
    return rc;
}

int lock_acquire(const char *path, session_lock *lk)
{
    memset(lk, 0, sizeof *lk);
    if (snprintf(lk->path, sizeof lk->path, "%s", path) >= (int)sizeof lk->path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    pthread_mutex_lock(&lock_mu);
    int rc = check_existing(path);
    if (rc == 0) {
        rc = create_lock_file(path, lk);
        if (rc < 0 && errno == EEXIST)
            rc = 1; /* another process took it between our check and link */
    }
    pthread_mutex_unlock(&lock_mu);
    lk->held = rc == 0;
    return rc;
}

void lock_release(session_lock *lk)
{
    if (!lk->held)
        return;
    pthread_mutex_lock(&lock_mu);
    struct stat st;
    bool ours = lstat(lk->path, &st) == 0 && st.st_dev == lk->dev && st.st_ino == lk->ino &&
                st.st_ctim.tv_sec == lk->ctime.tv_sec && st.st_ctim.tv_nsec == lk->ctime.tv_nsec;
    if (ours && unlink(lk->path) < 0)
        log_warn("cannot remove lock %s: %s", lk->path, strerror(errno));
    pthread_mutex_unlock(&lock_mu);
    lk->held = false;
}

bool lock_is_held(const char *path)
{
    pthread_mutex_lock(&lock_mu);
    int rc = check_existing(path);
    pthread_mutex_unlock(&lock_mu);
    return rc != 0; /* an unreadable state counts as held: fail closed */
}

int lock_remove(const char *path)
{
    pthread_mutex_lock(&lock_mu);
    int rc = unlink(path) < 0 && errno != ENOENT ? -1 : 0;
    pthread_mutex_unlock(&lock_mu);
    return rc;
}

bool lock_file_uuid(const char *name, char uuid[UUID_STR_LEN])
{
    static const char suffix[] = ".lock";
    size_t n = strlen(name);
    if (n != UUID_STR_LEN - 1 + strlen(suffix) || strcmp(name + UUID_STR_LEN - 1, suffix) != 0)
        return false;
    memcpy(uuid, name, UUID_STR_LEN - 1);
    uuid[UUID_STR_LEN - 1] = '\0';
    return uuid_v4_is_valid(uuid);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

int lock_names_scan(const char *dir, lock_names *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    struct dirent *de;
    char uuid[UUID_STR_LEN];
    int rc = 0;
    /* d_name is what a readdir gives: NUL-terminated, at most NAME_MAX. */
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!lock_file_uuid(de->d_name, uuid))
            continue;
        rc = grow_array(&out->uuids, &out->cap, out->n + 1, sizeof *out->uuids, 16);
        if (rc == 0)
            memcpy(out->uuids[out->n++], uuid, UUID_STR_LEN);
    }
    closedir(d);
    if (rc < 0) {
        lock_names_free(out);
        return -1;
    }
    if (out->n > 1) /* none found leaves uuids NULL, which qsort must not get */
        qsort(out->uuids, out->n, sizeof *out->uuids, compare_names);
    return 0;
}

/* Where uuid is or would go; *found says which. */
static size_t names_index(const lock_names *names, const char *uuid, bool *found)
{
    size_t lo = 0, hi = names->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(names->uuids[mid], uuid);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

bool lock_names_has(const lock_names *names, const char *uuid)
{
    bool found;
    names_index(names, uuid, &found);
    return found;
}

int lock_names_copy(lock_names *dst, const lock_names *src)
{
    memset(dst, 0, sizeof *dst);
    if (src->n == 0)
        return 0;
    dst->uuids = malloc(src->n * sizeof *src->uuids);
    if (dst->uuids == NULL)
        return -1;
    memcpy(dst->uuids, src->uuids, src->n * sizeof *src->uuids);
    dst->n = dst->cap = src->n;
    return 0;
}

void lock_names_free(lock_names *names)
{
    free(names->uuids);
    memset(names, 0, sizeof *names);
}
