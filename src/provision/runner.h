/* Where provisioning steps act: a runner performs file and process
 * operations on one target host. Paths are host paths as SPEC 4 names them
 * ("/etc/convocate/domain"); the runner decides where they really are. The
 * local runner maps them under a root directory of this machine (--root,
 * --agent-root); the remote runner (runner_remote.c) performs the same
 * operations over SSH as root on another host, so every step is written once. */
#ifndef CONVOCATE_PROVISION_RUNNER_H
#define CONVOCATE_PROVISION_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/fileio.h"
#include "common/paths.h"

typedef struct {
    bool exists;
    bool is_dir;
    bool is_reg;
    mode_t mode; /* permission bits only */
    uid_t uid;
    gid_t gid;
} runner_stat;

typedef struct runner runner;

/* Sees each chunk of an upload just before it is sent: draws progress, and
 * may change the bytes in flight (a test hook does, to prove that the
 * checksum on the target catches it). */
typedef struct {
    void (*chunk)(void *ctx, char *buf, size_t n);
    void *ctx;
} upload_watch;

typedef struct {
    /* Never follows a final symlink; a missing path is exists = false. */
    int (*stat_path)(runner *r, const char *path, runner_stat *st, char *err, size_t errlen);
    /* At most max bytes; -1 with errno ENOENT when missing. */
    int (*read_file)(runner *r, const char *path, size_t max, char **out, size_t *len, char *err,
                     size_t errlen);
    /* Atomic replace (temporary file, fsync, rename, fsync of the directory);
     * uid KEEP_OWNER leaves ownership alone. Parents are made (0755). */
    int (*write_file)(runner *r, const char *path, const void *data, size_t len, mode_t mode,
                      uid_t uid, gid_t gid, char *err, size_t errlen);
    /* Streams the local file src (a path of this machine, never mapped) to
     * path on the target with write_file's guarantees: atomic replace, and
     * the size checked on the target before the rename, so a cut transfer
     * never installs a short file. w may be NULL. */
    int (*upload)(runner *r, const char *src, const char *path, mode_t mode, uid_t uid, gid_t gid,
                  const upload_watch *w, char *err, size_t errlen);
    /* Makes the directory (and missing parents, 0755) and sets its mode and
     * owner, also when it already existed. */
    int (*make_dir)(runner *r, const char *path, mode_t mode, uid_t uid, gid_t gid, char *err,
                    size_t errlen);
    /* Runs argv on the target (no shell); returns the exit status, or -1
     * when it could not be run. *out gets stdout+stderr (may be NULL). */
    int (*run)(runner *r, char *const argv[], char **out, size_t out_max, char *err, size_t errlen);
    /* True when the program is installed on the target. */
    bool (*has_program)(runner *r, const char *name);
    /* A group's id on the target; -1 when it does not exist. */
    int (*lookup_group)(runner *r, const char *name, gid_t *gid);
    void (*destroy)(runner *r);
} runner_ops;

struct runner {
    const runner_ops *ops;
    char root[PATH_BUF]; /* "" for the real root */
    bool can_chown;      /* false: owners are neither set nor compared */
    char where[300];     /* for messages: "local" or "host H" */
    bool remote;         /* another machine: never reboot "this" host by mistake */
};

/* A runner for this machine with every path under root (NULL, "" or "/":
 * the real root). NULL when root is not an existing directory. */
runner *runner_local_new(const char *root, char *err, size_t errlen);
/* A runner for this machine that maps paths exactly as root_path() does:
 * root as given ("/" or NULL: the real root; a relative one from the
 * working directory), and it need not exist yet, as a packaging root that
 * the first directory made under it makes too. */
runner *runner_local_under(const char *root, char *err, size_t errlen);
void runner_free(runner *r);

/* How to reach and act on a remote target (SPEC 11). */
typedef struct {
    const char *host;        /* "H", "H:PORT" or "[v6]:PORT" */
    int port;                /* 0: the one in host, else 22 */
    const char *user;        /* NULL: $USER, else root */
    const char *known_hosts; /* NULL: ~/.ssh/known_hosts */
    const char *identity;    /* NULL: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa */
    bool accept_new_host_key;
    int connect_timeout; /* seconds; 0: 15 */
    int op_timeout;      /* seconds for a file operation; 0: 120 */
    int run_timeout;     /* seconds for run(); 0: 3600 (a dist-upgrade is slow) */
    bool verbose;        /* stream run() output to stderr */
} remote_options;

/* Connects, verifies the host key against known_hosts, logs in with the
 * operator's keys and checks passwordless sudo (unless the user is root).
 * Every operation then runs as root on the target. NULL with one line in
 * err saying what failed and what to do. */
runner *runner_remote_new(const remote_options *o, char *err, size_t errlen);

/* The options every command that reaches a host over SSH shares. Each
 * command puts REMOTE_LONG_OPTIONS in its getopt_long table and hands what
 * getopt returns to remote_option_apply, so they are spelt and checked in
 * one place. The values stay clear of the commands' own. */
enum {
    REMOTE_OPT_PORT = 0x1000,
    REMOTE_OPT_USER,
    REMOTE_OPT_IDENTITY,
    REMOTE_OPT_KNOWN_HOSTS,
    REMOTE_OPT_ACCEPT_NEW,
};
// clang-format off
#define REMOTE_LONG_OPTIONS                                                \
    {"port", required_argument, NULL, REMOTE_OPT_PORT},                    \
    {"user", required_argument, NULL, REMOTE_OPT_USER},                    \
    {"identity", required_argument, NULL, REMOTE_OPT_IDENTITY},            \
    {"known-hosts", required_argument, NULL, REMOTE_OPT_KNOWN_HOSTS},      \
    {"accept-new-host-key", no_argument, NULL, REMOTE_OPT_ACCEPT_NEW}
// clang-format on
/* 1 when c is one of them (applied to o), 0 when it is not, -1 when its
 * value is bad (err says why, for a usage error). */
int remote_option_apply(int c, const char *arg, remote_options *o, char *err, size_t errlen);
/* Whether any of them was given: they mean nothing without a host. */
bool remote_options_given(const remote_options *o);
/* Drops the connection and dials again with the same options (after a
 * reboot); 0, or -1 with err. */
int runner_remote_redial(runner *r, char *err, size_t errlen);

/* For runner implementations: a local file read chunk by chunk for an
 * upload, each chunk shown to the watch before it leaves. */
typedef struct {
    int fd;
    off_t size;
    const upload_watch *watch;
} upload_source;

int upload_source_open(upload_source *s, const char *src, const upload_watch *w, char *err,
                       size_t errlen);
/* Up to cap bytes; 0 at the end; -1 with errno on a read error. */
ssize_t upload_source_fill(upload_source *s, char *buf, size_t cap);
void upload_source_close(upload_source *s);

/* The path as the target itself sees it (local: root + path): what goes
 * into configuration files that name other files, and into messages. */
int runner_real_path(runner *r, const char *path, char *out, size_t size);
/* True when the runner works on the real root of its host. */
bool runner_is_real_root(const runner *r);
/* The last non-empty line of a program's output (NULL or empty: "no
 * output"), cut to fit: what a one-line error quotes. */
void runner_output_last_line(const char *out, char *line, size_t size);

#endif
