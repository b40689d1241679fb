#include "common/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/paths.h"
#include "common/ids.h"

int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fsync_dir(const char *path)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

static int fsync_parent(const char *path)
{
    char copy[PATH_BUF];
    if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return fsync_dir(dirname(copy));
}

/* The bytes of a plain buffer, handed out once. */
typedef struct {
    const char *data;
    size_t len;
} buffer_source;

static ssize_t buffer_fill(void *ctx, char *buf, size_t cap)
{
    buffer_source *b = ctx;
    size_t n = b->len < cap ? b->len : cap;
    memcpy(buf, b->data, n);
    b->data += n;
    b->len -= n;
    return (ssize_t)n;
}

int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode, uid_t uid,
                      gid_t gid)
{
    buffer_source b = {.data = data, .len = len};
    return atomic_write_stream(path, mode, uid, gid, buffer_fill, &b);
}

static int copy_stream(int fd, atomic_fill_fn fill, void *ctx)
{
    char buf[65536];
    for (;;) {
        ssize_t n = fill(ctx, buf, sizeof buf);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (write_all(fd, buf, (size_t)n) < 0)
            return -1;
    }
}

int atomic_write_stream(const char *path, mode_t mode, uid_t uid, gid_t gid, atomic_fill_fn fill,
                        void *ctx)
{
    char tmp[PATH_BUF];
    char suffix[9];
    if (random_alnum(suffix, 8) < 0)
        return -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, suffix) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int saved;
    if (copy_stream(fd, fill, ctx) < 0 || fchmod(fd, mode) < 0)
        goto fail;
    if (uid != KEEP_OWNER && fchown(fd, uid, gid) < 0)
        goto fail;
    if (fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    return fsync_parent(path);
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

/* The name of a temporary that atomic_write_stream made for base. */
static bool is_atomic_temp_of(const char *name, const char *base)
{
    size_t n = strlen(base);
    return strncmp(name, base, n) == 0 && strncmp(name + n, ".tmp-", 5) == 0 &&
           strlen(name + n + 5) == 8;
}

int atomic_write_leftovers_remove(const char *path)
{
    char dir_buf[PATH_BUF], base_buf[PATH_BUF];
    if (snprintf(dir_buf, sizeof dir_buf, "%s", path) >= (int)sizeof dir_buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(base_buf, dir_buf, sizeof base_buf);
    const char *base = basename(base_buf);
    DIR *dir = opendir(dirname(dir_buf));
    if (dir == NULL)
        return -1;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        /* unlinkat without AT_REMOVEDIR: a symlink goes, never its target,
         * and a directory of that name is left alone. */
        if (is_atomic_temp_of(de->d_name, base) && unlinkat(dirfd(dir), de->d_name, 0) == 0)
            removed++;
    closedir(dir);
    return removed;
}

/* The first buffer: what fstat says the file holds, plus the byte that shows
 * the end was reached. Sized by the file, not by max: authorized_keys (max
 * 1 MiB) is read afresh on every connection, and a 1 MiB buffer for a file
 * of a few hundred bytes costs page faults each time. */
#define READ_FIRST_MIN 256

static size_t first_capacity(off_t size_hint, size_t max)
{
    size_t want = size_hint > READ_FIRST_MIN ? (size_t)size_hint : READ_FIRST_MIN;
    return want >= max ? max + 1 : want + 1;
}

/* Reads what fd holds up to max bytes (one byte past max is asked for, so
 * an oversized file is detected, not cut); closes fd. A file longer than
 * size_hint (still being written, or a /proc file that says 0) grows the
 * buffer, doubling, up to max + 1 bytes. */
static int read_fd_bounded(int fd, size_t max, off_t size_hint, char **out, size_t *len)
{
    size_t cap = first_capacity(size_hint, max), got = 0;
    char *buf = malloc(cap);
    int saved = ENOMEM;
    if (buf == NULL)
        goto fail;
    for (;;) {
        if (got == cap) {
            saved = EFBIG;
            if (cap > max)
                goto fail;
            size_t next = cap > max / 2 ? max + 1 : cap * 2;
            char *grown = realloc(buf, next);
            saved = ENOMEM;
            if (grown == NULL)
                goto fail;
            buf = grown;
            cap = next;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        saved = errno;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0'; /* got < cap: the loop grows or fails on a full buffer */
    *out = buf;
    if (len)
        *len = got;
    return 0;
fail:
    free(buf);
    close(fd);
    errno = saved;
    return -1;
}

int read_file_bounded(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int why = fstat(fd, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : 0;
    if (why != 0) {
        close(fd);
        errno = why;
        return -1;
    }
    return read_fd_bounded(fd, max, st.st_size, out, len);
}

int read_untrusted_at(int dirfd, const char *name, size_t max, char **out, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat st;
    int why = 0;
    if (fstat(fd, &st) < 0)
        why = errno;
    else if (!S_ISREG(st.st_mode))
        why = EINVAL;
    else if (st.st_nlink != 1)
        why = EMLINK; /* a hard link to a file elsewhere, perhaps the host's */
    else if ((unsigned long long)st.st_size > max)
        why = EFBIG;
    if (why != 0) {
        close(fd);
        errno = why;
        return -1;
    }
    return read_fd_bounded(fd, max, st.st_size, out, len);
}

const char *untrusted_read_error(int err)
{
    switch (err) {
    case ELOOP:
        return "is a symlink (not followed)";
    case EINVAL:
        return "is not a regular file";
    case EMLINK:
        return "has more than one link";
    case EFBIG:
        return "is too large";
    default:
        return strerror(err);
    }
}

char *text_first_line(char *text)
{
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = '\0';
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\r' || text[len - 1] == '\t'))
        text[--len] = '\0';
    return text;
}

int read_line_file(const char *path, char *out, size_t size)
{
    char *buf;
    size_t len;
    if (read_file_bounded(path, 4096, &buf, &len) < 0)
        return -1;
    len = strlen(text_first_line(buf));
    if (len >= size) {
        free(buf);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out, buf, len + 1);
    free(buf);
    return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_BUF];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -1;
        *p = saved;
        if (saved == '\0')
            break;
    }
    return 0;
}

ssize_t read_full(int fd, void *buf, size_t cap, bool stop_at_newline)
{
    char *p = buf;
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, p + got, stop_at_newline ? 1 : cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
        if (stop_at_newline && p[got - 1] == '\n')
            break;
    }
    return (ssize_t)got;
}
