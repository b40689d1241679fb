/* The remote runner: every operation is one SSH exec channel running as
 * root on the target (through `sudo -n` unless we log in as root). Command
 * strings are only ever built by shell_quote_argv(); the small sh scripts
 * below are constants and take every path or value as a positional
 * argument ("$1"), so nothing from an operator or a file is parsed as
 * shell syntax. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "provision/runner.h"
#include "provision/shell_quote.h"
#include "ssh/exec.h"
#include "ssh/target.h"

#define MSG_MAX 8192 /* stderr kept for error messages */
#define STAT_OUT_MAX 256

/* sshd gives a non-login command a short PATH without the sbin
 * directories, and sudo's secure_path varies; one fixed PATH makes
 * "groupadd" or "ufw" resolve the same for root and for sudo. */
#define TARGET_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct {
    runner base; /* first: runner * and remote_runner * are the same pointer */
    dial_target target;
    ssh_session session;
    bool sudo;
    int op_timeout, run_timeout;
    bool verbose;
} remote_runner;

static remote_runner *as_remote(runner *r)
{
    return (remote_runner *)r;
}

/* ---- one command ------------------------------------------------------- */

/* argv as root on the target: [sudo -n --] env PATH=... argv... */
static char *root_command(remote_runner *rr, char *const argv[])
{
    size_t n = 0;
    while (argv[n] != NULL)
        n++;
    char **full = calloc(n + 6, sizeof *full);
    if (full == NULL)
        return NULL;
    size_t i = 0;
    if (rr->sudo) {
        full[i++] = "sudo";
        full[i++] = "-n";
        full[i++] = "--";
    }
    full[i++] = "env";
    full[i++] = TARGET_PATH;
    memcpy(full + i, argv, (n + 1) * sizeof *full);
    char *cmd = shell_quote_argv(full);
    free(full);
    return cmd;
}

/* Runs argv as root; returns the exit status or -1 with err. */
static int root_exec(remote_runner *rr, char *const argv[], exec_request *rq, char *err,
                     size_t errlen)
{
    if (rr->session == NULL) {
        snprintf(err, errlen, "%s: not connected (a redial failed)", rr->base.where);
        return -1;
    }
    char *cmd = root_command(rr, argv);
    if (cmd == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    log_debug("%s: %s", rr->base.where, cmd);
    char why[512];
    int status = remote_exec(rr->session, cmd, rq, why, sizeof why);
    if (status < 0)
        snprintf(err, errlen, "%s on %s: %s", argv[0], rr->base.where, why);
    free(cmd);
    return status;
}

/* A constant sh script with its arguments: sh -c SCRIPT sh ARG... */
static int run_script(remote_runner *rr, const char *script, char *const args[], exec_request *rq,
                      char *err, size_t errlen)
{
    char *argv[12] = {"sh", "-c", (char *)script, "sh"};
    size_t i = 4;
    for (size_t j = 0; args[j] != NULL; j++) {
        if (i + 1 >= sizeof argv / sizeof argv[0]) {
            snprintf(err, errlen, "internal error: too many script arguments");
            return -1;
        }
        argv[i++] = args[j];
    }
    argv[i] = NULL;
    return root_exec(rr, argv, rq, err, errlen);
}

/* "<what> on host H failed (exit N): <last stderr line>" */
static void failed(remote_runner *rr, const char *what, const char *path, int status,
                   const exec_buf *msg, char *err, size_t errlen)
{
    char line[512];
    exec_buf_last_line(msg, line, sizeof line);
    snprintf(err, errlen, "%s %s on %s failed (exit %d)%s%s", what, path, rr->base.where, status,
             line[0] ? ": " : "", line);
}

/* ---- the operations ---------------------------------------------------- */

static const char stat_script[] = "if [ -L \"$1\" ] || [ -e \"$1\" ]; then\n"
                                  "  exec stat -c '%f %u %g' -- \"$1\"\n"
                                  "fi\n"
                                  "echo missing\n";

static int parse_stat(const char *text, runner_stat *st)
{
    unsigned long raw;
    unsigned long uid, gid;
    char tail;
    if (sscanf(text, "%lx %lu %lu%c", &raw, &uid, &gid, &tail) != 4 || tail != '\n' ||
        uid > 0xfffffffful || gid > 0xfffffffful)
        return -1;
    st->exists = true;
    st->is_dir = S_ISDIR((mode_t)raw);
    st->is_reg = S_ISREG((mode_t)raw);
    st->mode = (mode_t)raw & 07777;
    st->uid = (uid_t)uid;
    st->gid = (gid_t)gid;
    return 0;
}

static int remote_stat(runner *r, const char *path, runner_stat *st, char *err, size_t errlen)
{
    remote_runner *rr = as_remote(r);
    char real[PATH_BUF];
    memset(st, 0, sizeof *st);
    if (runner_real_path(r, path, real, sizeof real) < 0) {
        snprintf(err, errlen, "bad path %s", path);
        return -1;
    }
    exec_buf out, msg;
    exec_buf_init(&out, STAT_OUT_MAX);
    exec_buf_init(&msg, MSG_MAX);
    exec_request rq = {.out = &out, .err_out = &msg, .timeout = rr->op_timeout};
    char *args[] = {real, NULL};
    int status = run_script(rr, stat_script, args, &rq, err, errlen);
    int rc = -1;
    if (status > 0)
        failed(rr, "stat", real, status, &msg, err, errlen);
    else if (status == 0 && out.data != NULL && strcmp(out.data, "missing\n") == 0)
        rc = 0;
    else if (status == 0 && (out.data == NULL || parse_stat(out.data, st) < 0))
        snprintf(err, errlen, "stat %s on %s: unexpected output", real, r->where);
    else if (status == 0)
        rc = 0;
    exec_buf_free(&out);
    exec_buf_free(&msg);
    return rc;
}

/* Exit 3: missing; 4: a symlink (refused, as the local runner does);
 * 5: not a regular file. */
static const char read_script[] = "[ -L \"$1\" ] && exit 4\n"
                                  "[ -e \"$1\" ] || exit 3\n"
                                  "[ -f \"$1\" ] || exit 5\n"
                                  "exec head -c \"$2\" -- \"$1\"\n";

static int remote_read(runner *r, const char *path, size_t max, char **out, size_t *len, char *err,
                       size_t errlen)
{
    remote_runner *rr = as_remote(r);
    char real[PATH_BUF], limit[32];
    if (runner_real_path(r, path, real, sizeof real) < 0) {
        snprintf(err, errlen, "bad path %s", path);
        errno = EINVAL;
        return -1;
    }
    /* One byte more than allowed tells "too big" from "exactly max". */
    snprintf(limit, sizeof limit, "%zu", max + 1);
    exec_buf data, msg;
    exec_buf_init(&data, max + 1);
    exec_buf_init(&msg, MSG_MAX);
    exec_request rq = {.out = &data, .err_out = &msg, .timeout = rr->op_timeout};
    char *args[] = {real, limit, NULL};
    int status = run_script(rr, read_script, args, &rq, err, errlen);
    int saved = EIO;
    if (status == 0 && data.len > max) {
        snprintf(err, errlen, "read %s on %s: larger than %zu bytes", real, r->where, max);
        saved = EFBIG;
    } else if (status == 0) {
        *out = data.data != NULL ? data.data : strdup("");
        if (len != NULL)
            *len = data.len;
        exec_buf_free(&msg);
        return *out != NULL ? 0 : -1;
    } else if (status == 3) {
        snprintf(err, errlen, "read %s on %s: No such file or directory", real, r->where);
        saved = ENOENT;
    } else if (status == 4 || status == 5) {
        snprintf(err, errlen, "read %s on %s: not a regular file", real, r->where);
        saved = status == 4 ? ELOOP : EISDIR;
    } else if (status > 0) {
        failed(rr, "read", real, status, &msg, err, errlen);
    }
    if (data.data != NULL)
        explicit_bzero(data.data, data.len);
    exec_buf_free(&data);
    exec_buf_free(&msg);
    errno = saved;
    return -1;
}

/* Atomic replace on the target: a 0600 temporary file in the same
 * directory receives the bytes, its size is checked (a broken upload must
 * never be installed), owner and mode are set, it is synced and renamed
 * over the old file, and the directory is synced. -T keeps mv from moving
 * into a directory that sits at the path. */
static const char write_script[] = "set -e\n"
                                   "dir=$(dirname -- \"$1\")\n"
                                   "(umask 022; mkdir -p -- \"$dir\")\n"
                                   "tmp=$(umask 077; mktemp -- \"$1.tmp.XXXXXX\")\n"
                                   "trap 'rm -f -- \"$tmp\"' EXIT\n"
                                   "cat > \"$tmp\"\n"
                                   "size=$(wc -c < \"$tmp\")\n"
                                   "if [ \"$size\" -ne \"$4\" ]; then\n"
                                   "  echo \"upload cut short: $size of $4 bytes\" >&2; exit 1\n"
                                   "fi\n"
                                   "[ -z \"$3\" ] || chown -- \"$3\" \"$tmp\"\n"
                                   "chmod -- \"$2\" \"$tmp\"\n"
                                   "sync -- \"$tmp\" 2>/dev/null || true\n"
                                   "mv -f -T -- \"$tmp\" \"$1\"\n"
                                   "trap - EXIT\n"
                                   "sync -- \"$dir\" 2>/dev/null || true\n";

static void owner_arg(uid_t uid, gid_t gid, char out[32])
{
    if (uid == KEEP_OWNER)
        out[0] = '\0';
    else
        snprintf(out, 32, "%u:%u", (unsigned)uid, (unsigned)gid);
}

static int remote_write(runner *r, const char *path, const void *data, size_t len, mode_t mode,
                        uid_t uid, gid_t gid, char *err, size_t errlen)
{
    remote_runner *rr = as_remote(r);
    char real[PATH_BUF], mode_s[16], owner[32], size_s[32];
    if (runner_real_path(r, path, real, sizeof real) < 0) {
        snprintf(err, errlen, "bad path %s", path);
        return -1;
    }
    snprintf(mode_s, sizeof mode_s, "%04o", (unsigned)(mode & 07777));
    owner_arg(uid, gid, owner);
    snprintf(size_s, sizeof size_s, "%zu", len);
    exec_buf msg;
    exec_buf_init(&msg, MSG_MAX);
    exec_request rq = {.input = data, .input_len = len, .err_out = &msg, .timeout = rr->op_timeout};
    char *args[] = {real, mode_s, owner, size_s, NULL};
    int status = run_script(rr, write_script, args, &rq, err, errlen);
    if (status > 0)
        failed(rr, "write", real, status, &msg, err, errlen);
    exec_buf_free(&msg);
    return status == 0 ? 0 : -1;
}

typedef struct {
    upload_source src;
    const char *name;
} remote_feed;

static ssize_t feed_chunk(void *ctx, char *buf, size_t cap, char *err, size_t errlen)
{
    remote_feed *f = ctx;
    ssize_t n = upload_source_fill(&f->src, buf, cap);
    if (n < 0)
        snprintf(err, errlen, "read %s: %s", f->name, strerror(errno));
    return n;
}

/* The same script as write_file, fed from a local file chunk by chunk. */
static int remote_upload(runner *r, const char *src, const char *path, mode_t mode, uid_t uid,
                         gid_t gid, const upload_watch *w, char *err, size_t errlen)
{
    remote_runner *rr = as_remote(r);
    char real[PATH_BUF], mode_s[16], owner[32], size_s[32];
    if (runner_real_path(r, path, real, sizeof real) < 0) {
        snprintf(err, errlen, "bad path %s", path);
        return -1;
    }
    remote_feed f = {.name = src};
    if (upload_source_open(&f.src, src, w, err, errlen) < 0)
        return -1;
    snprintf(mode_s, sizeof mode_s, "%04o", (unsigned)(mode & 07777));
    owner_arg(uid, gid, owner);
    snprintf(size_s, sizeof size_s, "%lld", (long long)f.src.size);
    exec_buf msg;
    exec_buf_init(&msg, MSG_MAX);
    /* The deadline covers the whole transfer: a large image on a slow
     * link gets the long run() timeout, not a file operation's. */
    exec_request rq = {
        .feed = feed_chunk, .feed_ctx = &f, .err_out = &msg, .timeout = rr->run_timeout};
    char *args[] = {real, mode_s, owner, size_s, NULL};
    int status = run_script(rr, write_script, args, &rq, err, errlen);
    if (status > 0)
        failed(rr, "upload", real, status, &msg, err, errlen);
    exec_buf_free(&msg);
    upload_source_close(&f.src);
    return status == 0 ? 0 : -1;
}

static const char mkdir_script[] = "set -e\n"
                                   "(umask 022; mkdir -p -- \"$1\")\n"
                                   "[ -z \"$3\" ] || chown -- \"$3\" \"$1\"\n"
                                   "chmod -- \"$2\" \"$1\"\n";

static int remote_mkdir(runner *r, const char *path, mode_t mode, uid_t uid, gid_t gid, char *err,
                        size_t errlen)
{
    remote_runner *rr = as_remote(r);
    char real[PATH_BUF], mode_s[16], owner[32];
    if (runner_real_path(r, path, real, sizeof real) < 0) {
        snprintf(err, errlen, "bad path %s", path);
        return -1;
    }
    snprintf(mode_s, sizeof mode_s, "%04o", (unsigned)(mode & 07777));
    owner_arg(uid, gid, owner);
    exec_buf msg;
    exec_buf_init(&msg, MSG_MAX);
    exec_request rq = {.err_out = &msg, .timeout = rr->op_timeout};
    char *args[] = {real, mode_s, owner, NULL};
    int status = run_script(rr, mkdir_script, args, &rq, err, errlen);
    if (status > 0)
        failed(rr, "mkdir", real, status, &msg, err, errlen);
    exec_buf_free(&msg);
    return status == 0 ? 0 : -1;
}

static int remote_run(runner *r, char *const argv[], char **out, size_t out_max, char *err,
                      size_t errlen)
{
    remote_runner *rr = as_remote(r);
    exec_buf buf, errbuf;
    exec_buf_init(&buf, out_max);
    exec_buf_init(&errbuf, out_max);
    /* stdout, then stderr: both, as the local runner collects them, but
     * not interleaved, so the program's own first line stays first even
     * when sudo warns (say, "unable to resolve host") on stderr, and an
     * error's last line is still the last thing said. */
    exec_request rq = {
        .out = &buf, .err_out = &errbuf, .stream = rr->verbose, .timeout = rr->run_timeout};
    int status = root_exec(rr, argv, &rq, err, errlen);
    if (exec_buf_append(&buf, &errbuf) < 0 && status >= 0) {
        snprintf(err, errlen, "out of memory");
        status = -1;
    }
    exec_buf_free(&errbuf);
    if (out != NULL)
        *out = buf.data;
    else
        exec_buf_free(&buf);
    return status;
}

/* Names we look up are program or group names, never options or paths. */
static bool simple_name(const char *s)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-";
    size_t n = strlen(s);
    return n > 0 && n < 64 && s[0] != '-' && strspn(s, ok) == n;
}

static bool remote_has_program(runner *r, const char *name)
{
    remote_runner *rr = as_remote(r);
    if (!simple_name(name))
        return false;
    char err[512];
    exec_request rq = {.timeout = rr->op_timeout};
    char *args[] = {(char *)name, NULL};
    return run_script(rr, "command -v \"$1\" >/dev/null", args, &rq, err, sizeof err) == 0;
}

static int remote_lookup_group(runner *r, const char *name, gid_t *gid)
{
    remote_runner *rr = as_remote(r);
    if (!simple_name(name))
        return -1;
    char err[512];
    exec_buf out;
    exec_buf_init(&out, 4096);
    exec_request rq = {.out = &out, .timeout = rr->op_timeout};
    char *argv[] = {"getent", "group", (char *)name, NULL};
    int rc = -1;
    /* "name:x:gid:members" */
    if (root_exec(rr, argv, &rq, err, sizeof err) == 0 && out.data != NULL) {
        size_t n = strlen(name);
        const char *p = out.data;
        if (strncmp(p, name, n) == 0 && p[n] == ':' && (p = strchr(p + n + 1, ':')) != NULL) {
            char *end;
            unsigned long v = strtoul(p + 1, &end, 10);
            if (end != p + 1 && *end == ':' && v < 0xfffffffful) {
                *gid = (gid_t)v;
                rc = 0;
            }
        }
    }
    exec_buf_free(&out);
    return rc;
}

/* ---- connecting -------------------------------------------------------- */

/* Once, at connect: every later operation relies on sudo -n. */
static int check_sudo(remote_runner *rr, char *err, size_t errlen)
{
    exec_buf msg;
    exec_buf_init(&msg, MSG_MAX);
    exec_request rq = {.out = &msg, .err_out = &msg, .timeout = rr->op_timeout};
    char why[512];
    int status = remote_exec(rr->session, "sudo -n true", &rq, why, sizeof why);
    if (status != 0) {
        char line[300];
        exec_buf_last_line(&msg, line, sizeof line);
        snprintf(err, errlen,
                 "%s on %s cannot run sudo without a password ('sudo -n true': %s); give %s "
                 "passwordless sudo (NOPASSWD in /etc/sudoers.d) or use --user root",
                 rr->target.user, rr->target.host, status < 0 ? why : (line[0] ? line : "failed"),
                 rr->target.user);
    }
    exec_buf_free(&msg);
    return status == 0 ? 0 : -1;
}

static int remote_dial(remote_runner *rr, char *err, size_t errlen)
{
    rr->session = dial_target_connect(&rr->target, err, errlen);
    if (rr->session == NULL)
        return -1;
    if (rr->sudo && check_sudo(rr, err, errlen) < 0) {
        ssh_disconnect(rr->session);
        ssh_free(rr->session);
        rr->session = NULL;
        return -1;
    }
    return 0;
}

static void hang_up(remote_runner *rr)
{
    if (rr->session != NULL) {
        ssh_disconnect(rr->session);
        ssh_free(rr->session);
        rr->session = NULL;
    }
}

static void remote_destroy(runner *r)
{
    hang_up(as_remote(r));
    free(r);
}

static const runner_ops remote_ops = {
    .stat_path = remote_stat,
    .read_file = remote_read,
    .write_file = remote_write,
    .upload = remote_upload,
    .make_dir = remote_mkdir,
    .run = remote_run,
    .has_program = remote_has_program,
    .lookup_group = remote_lookup_group,
    .destroy = remote_destroy,
};

runner *runner_remote_new(const remote_options *o, char *err, size_t errlen)
{
    remote_runner *rr = calloc(1, sizeof *rr);
    if (rr == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (dial_target_init(&rr->target, o->host, o->port, o->user, o->known_hosts, o->identity,
                         o->accept_new_host_key, o->connect_timeout, err, errlen) < 0) {
        free(rr);
        return NULL;
    }
    rr->base.ops = &remote_ops;
    rr->base.can_chown = true; /* we are root there */
    rr->base.remote = true;
    snprintf(rr->base.where, sizeof rr->base.where, "host %s", rr->target.host);
    rr->sudo = strcmp(rr->target.user, "root") != 0;
    rr->op_timeout = o->op_timeout > 0 ? o->op_timeout : 120;
    rr->run_timeout = o->run_timeout > 0 ? o->run_timeout : 3600;
    rr->verbose = o->verbose;
    if (remote_dial(rr, err, errlen) < 0) {
        free(rr);
        return NULL;
    }
    return &rr->base;
}

int runner_remote_redial(runner *r, char *err, size_t errlen)
{
    if (!r->remote) {
        snprintf(err, errlen, "not a remote runner");
        return -1;
    }
    remote_runner *rr = as_remote(r);
    hang_up(rr);
    return remote_dial(rr, err, errlen);
}
