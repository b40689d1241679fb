#include "common/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"

/* A growable list of relative paths ("" is the tree's top). */
struct path_list {
    char **items;
    size_t len, cap;
};

static int list_push(struct path_list *l, const char *parent, const char *name)
{
    if (grow_array(&l->items, &l->cap, l->len + 1, sizeof *l->items, 64) < 0)
        return -1;
    size_t plen = strlen(parent), nlen = strlen(name);
    char *s = malloc(plen + nlen + 2);
    if (s == NULL)
        return -1;
    if (plen) {
        memcpy(s, parent, plen);
        s[plen] = '/';
        memcpy(s + plen + 1, name, nlen + 1);
    } else {
        memcpy(s, name, nlen + 1);
    }
    l->items[l->len++] = s;
    return 0;
}

static void list_free(struct path_list *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
}

/* Opens directory rel beneath topfd one component at a time, refusing any
 * symlink on the way, so a tree changed under us cannot lead us outside it. */
static int open_dir_beneath(int topfd, const char *rel)
{
    int fd = dup(topfd);
    if (fd < 0 || rel[0] == '\0')
        return fd;
    char *copy = strdup(rel);
    if (copy == NULL) {
        close(fd);
        return -1;
    }
    char *save = NULL;
    for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(fd);
        if (next < 0) {
            free(copy);
            errno = saved;
            return -1;
        }
        fd = next;
    }
    free(copy);
    return fd;
}

/* Splits rel into its parent directory fd (beneath topfd) and last name. */
static int open_parent_beneath(int topfd, const char *rel, const char **name)
{
    const char *slash = strrchr(rel, '/');
    if (slash == NULL) {
        *name = rel;
        return dup(topfd);
    }
    char *parent = strndup(rel, (size_t)(slash - rel));
    if (parent == NULL)
        return -1;
    int fd = open_dir_beneath(topfd, parent);
    free(parent);
    *name = slash + 1;
    return fd;
}

/* Modes a copy keeps: permissions and the sticky bit. setuid and setgid are
 * dropped: a session must not plant a set-id file in another home (nosuid
 * mounts are the other half of that, SPEC 14). */
static mode_t copied_mode(mode_t mode)
{
    return mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID);
}

static int copy_bytes(int in, int out)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return (int)n;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -1;
            off += w;
        }
    }
}

/* Opens name for reading if it is a regular file now. The type seen while
 * listing the directory proves nothing (the session can swap the entry
 * between that and the open), so it is checked on the descriptor; O_NONBLOCK
 * keeps a FIFO swapped in from blocking the open. Returns the fd, -1 with
 * errno, or -2 when the entry is no longer a regular file. */
static int open_regular_at(int dirfd, const char *name, struct stat *st)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int saved = errno;
        if (saved == ELOOP || saved == ENXIO) /* a symlink or a socket now */
            return -2;
        /* A device on a nodev mount refuses the open itself. */
        if ((saved == EACCES || saved == EPERM) &&
            fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st->st_mode))
            return -2;
        errno = saved;
        return -1;
    }
    if (fstat(fd, st) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return -2;
    }
    /* Blocking reads from here on: a regular file never blocks for long. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int tree_copy_file_at(int sfd, int dfd, const char *name, uid_t uid, gid_t gid)
{
    struct stat st;
    int in = open_regular_at(sfd, name, &st);
    if (in == -2)
        return 1;
    if (in < 0)
        return -1;
    int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int saved = errno;
        close(in);
        errno = saved;
        return -1;
    }
    int rc = copy_bytes(in, out);
    if (rc == 0 && uid != (uid_t)-1 && fchown(out, uid, gid) < 0)
        rc = -1;
    /* After the chown: chown clears set-id bits, and so must we, always. */
    if (rc == 0 && fchmod(out, copied_mode(st.st_mode)) < 0)
        rc = -1;
    int saved = errno;
    close(in);
    if (close(out) < 0 && rc == 0)
        rc = -1;
    else
        errno = saved;
    return rc;
}

static int copy_symlink_at(int sfd, int dfd, const char *name, uid_t uid, gid_t gid)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(sfd, name, target, sizeof target - 1);
    if (n < 0)
        return -1;
    target[n] = '\0';
    if (symlinkat(target, dfd, name) < 0)
        return -1;
    if (uid != (uid_t)-1 && fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        return -1;
    return 0;
}

/* Copies the entries of one directory; subdirectories are created here and
 * queued on dirs so the caller visits them later. */
static int copy_dir_entries(int stop, int dtop, const char *rel, struct path_list *dirs, uid_t uid,
                            gid_t gid)
{
    int rc = -1;
    int sfd = open_dir_beneath(stop, rel);
    int dfd = sfd < 0 ? -1 : open_dir_beneath(dtop, rel);
    int iterfd = dfd < 0 ? -1 : dup(sfd);
    DIR *dir = iterfd < 0 ? NULL : fdopendir(iterfd);
    if (dir == NULL) {
        if (iterfd >= 0)
            close(iterfd);
        goto out;
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            goto out;
        if (S_ISDIR(st.st_mode)) {
            /* 0700 while we fill it; the real mode is applied afterwards so a
             * read-only source directory can still be copied. */
            if (mkdirat(dfd, de->d_name, 0700) < 0)
                goto out;
            if (list_push(dirs, rel, de->d_name) < 0)
                goto out;
        } else if (S_ISREG(st.st_mode)) {
            if (tree_copy_file_at(sfd, dfd, de->d_name, uid, gid) < 0)
                goto out;
        } else if (S_ISLNK(st.st_mode)) {
            if (copy_symlink_at(sfd, dfd, de->d_name, uid, gid) < 0)
                goto out;
        }
        /* sockets, FIFOs and devices are skipped on purpose */
        errno = 0;
    }
    rc = errno ? -1 : 0;
out:;
    int saved = errno;
    if (dir)
        closedir(dir);
    if (sfd >= 0)
        close(sfd);
    if (dfd >= 0)
        close(dfd);
    errno = saved;
    return rc;
}

/* Gives each copied directory its source's mode and the requested owner. */
static int finish_dir(int stop, int dtop, const char *rel, uid_t uid, gid_t gid)
{
    int sfd = open_dir_beneath(stop, rel);
    if (sfd < 0)
        return -1;
    struct stat st;
    int rc = fstat(sfd, &st);
    close(sfd);
    if (rc < 0)
        return -1;
    int dfd = open_dir_beneath(dtop, rel);
    if (dfd < 0)
        return -1;
    rc = 0;
    if (uid != (uid_t)-1 && fchown(dfd, uid, gid) < 0)
        rc = -1;
    if (rc == 0 && fchmod(dfd, copied_mode(st.st_mode)) < 0)
        rc = -1;
    int saved = errno;
    close(dfd);
    errno = saved;
    return rc;
}

int tree_copy(const char *src, const char *dst, uid_t uid, gid_t gid)
{
    struct path_list dirs = {0};
    int rc = -1, saved;
    int stop = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int dtop = -1;
    if (stop < 0)
        return -1;
    if (mkdir(dst, 0700) < 0) {
        saved = errno;
        close(stop);
        errno = saved;
        return -1;
    }
    dtop = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dtop < 0 || list_push(&dirs, "", "") < 0)
        goto out;
    /* Breadth-first: the list grows while we walk it. */
    for (size_t i = 0; i < dirs.len; i++)
        if (copy_dir_entries(stop, dtop, dirs.items[i], &dirs, uid, gid) < 0)
            goto out;
    for (size_t i = dirs.len; i-- > 0;)
        if (finish_dir(stop, dtop, dirs.items[i], uid, gid) < 0)
            goto out;
    rc = 0;
out:
    saved = errno;
    list_free(&dirs);
    close(stop);
    if (dtop >= 0)
        close(dtop);
    if (rc < 0)
        tree_remove(dst);
    errno = saved;
    return rc;
}

/* Unlinks the non-directories of one directory and queues its subdirectories. */
static int remove_dir_entries(int top, const char *rel, struct path_list *dirs)
{
    int fd = open_dir_beneath(top, rel);
    if (fd < 0)
        return -1;
    /* Make sure we may delete inside it even if the session made it 0500. */
    fchmod(fd, 0700);
    int iterfd = dup(fd);
    DIR *dir = iterfd < 0 ? NULL : fdopendir(iterfd);
    if (dir == NULL) {
        int saved = errno;
        if (iterfd >= 0)
            close(iterfd);
        close(fd);
        errno = saved;
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = -1;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (list_push(dirs, rel, de->d_name) < 0) {
                rc = -1;
                break;
            }
        } else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT) {
            rc = -1;
            break;
        }
    }
    int saved = errno;
    closedir(dir);
    close(fd);
    errno = saved;
    return rc;
}

int tree_remove(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    int top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (top < 0)
        return -1;
    struct path_list dirs = {0};
    int rc = -1, saved;
    if (list_push(&dirs, "", "") < 0)
        goto out;
    for (size_t i = 0; i < dirs.len; i++)
        if (remove_dir_entries(top, dirs.items[i], &dirs) < 0)
            goto out;
    /* Children were queued after their parents: remove in reverse order. */
    for (size_t i = dirs.len; i-- > 1;) {
        const char *name;
        int pfd = open_parent_beneath(top, dirs.items[i], &name);
        if (pfd < 0)
            goto out;
        int r = unlinkat(pfd, name, AT_REMOVEDIR);
        saved = errno;
        close(pfd);
        errno = saved;
        if (r < 0 && errno != ENOENT)
            goto out;
    }
    rc = rmdir(path);
out:
    saved = errno;
    list_free(&dirs);
    close(top);
    errno = saved;
    return rc;
}
