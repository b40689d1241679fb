/* The local runner: host paths mapped under a root directory. */
#include "provision/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/spawn.h"

/* Host paths are absolute and never climb out of the root. */
static bool host_path_ok(const char *path)
{
    if (path[0] != '/')
        return false;
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2) {
        bool starts = p[-1] == '/';
        bool ends = p[2] == '/' || p[2] == '\0';
        if (starts && ends)
            return false;
    }
    return true;
}

int runner_real_path(runner *r, const char *path, char *out, size_t size)
{
    if (!host_path_ok(path)) {
        errno = EINVAL;
        return -1;
    }
    if (snprintf(out, size, "%s%s", r->root, path) >= (int)size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

bool runner_is_real_root(const runner *r)
{
    return r->root[0] == '\0';
}

static int map_path(runner *r, const char *path, char out[PATH_BUF], char *err, size_t errlen)
{
    if (runner_real_path(r, path, out, PATH_BUF) < 0) {
        snprintf(err, errlen, "bad path %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int local_stat(runner *r, const char *path, runner_stat *st, char *err, size_t errlen)
{
    char real[PATH_BUF];
    struct stat sb;
    memset(st, 0, sizeof *st);
    if (map_path(r, path, real, err, errlen) < 0)
        return -1;
    if (lstat(real, &sb) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "stat %s: %s", real, strerror(errno));
        return -1;
    }
    st->exists = true;
    st->is_dir = S_ISDIR(sb.st_mode);
    st->is_reg = S_ISREG(sb.st_mode);
    st->mode = sb.st_mode & 07777;
    st->uid = sb.st_uid;
    st->gid = sb.st_gid;
    return 0;
}

static int local_read(runner *r, const char *path, size_t max, char **out, size_t *len, char *err,
                      size_t errlen)
{
    char real[PATH_BUF];
    if (map_path(r, path, real, err, errlen) < 0)
        return -1;
    if (read_file_bounded(real, max, out, len) < 0) {
        int saved = errno;
        snprintf(err, errlen, "read %s: %s", real, strerror(errno));
        errno = saved;
        return -1;
    }
    return 0;
}

static int make_parent(const char *real, char *err, size_t errlen)
{
    char parent[PATH_BUF];
    snprintf(parent, sizeof parent, "%s", real);
    char *slash = strrchr(parent, '/');
    if (slash == NULL || slash == parent)
        return 0;
    *slash = '\0';
    if (mkdir_p(parent, 0755) < 0) {
        snprintf(err, errlen, "mkdir %s: %s", parent, strerror(errno));
        return -1;
    }
    return 0;
}

static int local_write(runner *r, const char *path, const void *data, size_t len, mode_t mode,
                       uid_t uid, gid_t gid, char *err, size_t errlen)
{
    char real[PATH_BUF];
    if (map_path(r, path, real, err, errlen) < 0 || make_parent(real, err, errlen) < 0)
        return -1;
    if (!r->can_chown)
        uid = KEEP_OWNER;
    if (atomic_write_file(real, data, len, mode, uid, gid) < 0) {
        snprintf(err, errlen, "write %s: %s", real, strerror(errno));
        return -1;
    }
    return 0;
}

int upload_source_open(upload_source *s, const char *src, const upload_watch *w, char *err,
                       size_t errlen)
{
    struct stat st;
    s->watch = w;
    s->fd = open(src, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0 || fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s", src, s->fd < 0 ? strerror(errno) : "not a regular file");
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1;
        return -1;
    }
    s->size = st.st_size;
    return 0;
}

ssize_t upload_source_fill(upload_source *s, char *buf, size_t cap)
{
    ssize_t n;
    do
        n = read(s->fd, buf, cap);
    while (n < 0 && errno == EINTR);
    if (n > 0 && s->watch != NULL && s->watch->chunk != NULL)
        s->watch->chunk(s->watch->ctx, buf, (size_t)n);
    return n;
}

void upload_source_close(upload_source *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static ssize_t source_fill(void *ctx, char *buf, size_t cap)
{
    return upload_source_fill(ctx, buf, cap);
}

static int local_upload(runner *r, const char *src, const char *path, mode_t mode, uid_t uid,
                        gid_t gid, const upload_watch *w, char *err, size_t errlen)
{
    char real[PATH_BUF];
    upload_source s;
    if (map_path(r, path, real, err, errlen) < 0 || make_parent(real, err, errlen) < 0 ||
        upload_source_open(&s, src, w, err, errlen) < 0)
        return -1;
    if (!r->can_chown)
        uid = KEEP_OWNER;
    int rc = atomic_write_stream(real, mode, uid, gid, source_fill, &s);
    if (rc < 0)
        snprintf(err, errlen, "copy %s to %s: %s", src, real, strerror(errno));
    upload_source_close(&s);
    return rc;
}

static int local_mkdir(runner *r, const char *path, mode_t mode, uid_t uid, gid_t gid, char *err,
                       size_t errlen)
{
    char real[PATH_BUF];
    if (map_path(r, path, real, err, errlen) < 0 || make_parent(real, err, errlen) < 0)
        return -1;
    if (mkdir(real, mode) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", real, strerror(errno));
        return -1;
    }
    /* chmod after mkdir: the umask must neither weaken nor widen the mode. */
    if (chmod(real, mode) < 0) {
        snprintf(err, errlen, "chmod %s: %s", real, strerror(errno));
        return -1;
    }
    if (r->can_chown && uid != KEEP_OWNER && chown(real, uid, gid) < 0) {
        snprintf(err, errlen, "chown %s: %s", real, strerror(errno));
        return -1;
    }
    return 0;
}

static int local_run(runner *r, char *const argv[], char **out, size_t out_max, char *err,
                     size_t errlen)
{
    int status = spawn_capture(argv, out, out_max);
    if (status < 0)
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(errno));
    return status;
}

static bool local_has_program(runner *r, const char *name)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/bin",        "/sbin",
                                       "/bin",      "/usr/local/sbin", "/usr/local/bin"};
    char path[PATH_BUF];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

static int local_lookup_group(runner *r, const char *name, gid_t *gid)
{
    struct group *g = getgrnam(name);
    if (g == NULL)
        return -1;
    *gid = g->gr_gid;
    return 0;
}

static void local_destroy(runner *r)
{
    free(r);
}

static const runner_ops local_ops = {
    .stat_path = local_stat,
    .read_file = local_read,
    .write_file = local_write,
    .upload = local_upload,
    .make_dir = local_mkdir,
    .run = local_run,
    .has_program = local_has_program,
    .lookup_group = local_lookup_group,
    .destroy = local_destroy,
};

static runner *local_runner_alloc(char *err, size_t errlen)
{
    runner *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->ops = &local_ops;
    r->can_chown = geteuid() == 0;
    snprintf(r->where, sizeof r->where, "local");
    return r;
}

runner *runner_local_under(const char *root, char *err, size_t errlen)
{
    runner *r = local_runner_alloc(err, errlen);
    if (r == NULL || root == NULL || strcmp(root, "/") == 0)
        return r;
    if (snprintf(r->root, sizeof r->root, "%s", root) >= (int)sizeof r->root) {
        snprintf(err, errlen, "root %s is too long", root);
        free(r);
        return NULL;
    }
    return r;
}

runner *runner_local_new(const char *root, char *err, size_t errlen)
{
    runner *r = local_runner_alloc(err, errlen);
    if (r == NULL)
        return NULL;
    if (root != NULL && root[0] != '\0') {
        /* realpath: a relative --root works, and the prefix is canonical. */
        char real[PATH_MAX];
        struct stat st;
        if (realpath(root, real) == NULL || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "root %s is not a directory", root);
            free(r);
            return NULL;
        }
        if (strcmp(real, "/") != 0 &&
            snprintf(r->root, sizeof r->root, "%s", real) >= (int)sizeof r->root) {
            snprintf(err, errlen, "root %s is too long", root);
            free(r);
            return NULL;
        }
    }
    return r;
}

void runner_free(runner *r)
{
    if (r != NULL)
        r->ops->destroy(r);
}

void runner_output_last_line(const char *out, char *line, size_t size)
{
    size_t end = out != NULL ? strlen(out) : 0;
    while (end > 0 && (out[end - 1] == '\n' || out[end - 1] == '\r'))
        end--;
    size_t start = end;
    while (start > 0 && out[start - 1] != '\n')
        start--;
    if (end > start)
        snprintf(line, size, "%.*s", (int)(end - start), out + start);
    else
        snprintf(line, size, "no output");
}

int remote_option_apply(int c, const char *arg, remote_options *o, char *err, size_t errlen)
{
    switch (c) {
    case REMOTE_OPT_PORT: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*arg == '\0' || *end != '\0' || v < 1 || v > 65535) {
            snprintf(err, errlen, "--port needs a number from 1 to 65535");
            return -1;
        }
        o->port = (int)v;
        return 1;
    }
    case REMOTE_OPT_USER:
        o->user = arg;
        return 1;
    case REMOTE_OPT_IDENTITY:
        o->identity = arg;
        return 1;
    case REMOTE_OPT_KNOWN_HOSTS:
        o->known_hosts = arg;
        return 1;
    case REMOTE_OPT_ACCEPT_NEW:
        o->accept_new_host_key = true;
        return 1;
    default:
        return 0;
    }
}

bool remote_options_given(const remote_options *o)
{
    return o->user != NULL || o->port != 0 || o->identity != NULL || o->known_hosts != NULL ||
           o->accept_new_host_key;
}
