/* Where provisioning steps act: a runner performs file and process
 * operations on one target host. Paths are host paths as SPEC 4 names them
 * ("/etc/convocate/domain"); the runner decides where they really are. The
 * local runner maps them under a root directory of this machine (--root,
 * --agent-root); a remote runner over SSH is a later addition with the same
 * operations, so every step is written once. */
#ifndef CONVOCATE_HOST_RUNNER_H
#define CONVOCATE_HOST_RUNNER_H

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
    char where[64];      /* for messages: "local" or "host H" */
};

/* A runner for this machine with every path under root (NULL, "" or "/":
 * the real root). NULL when root is not an existing directory. */
runner *runner_local_new(const char *root, char *err, size_t errlen);
void runner_free(runner *r);

/* The path as the target itself sees it (local: root + path): what goes
 * into configuration files that name other files, and into messages. */
int runner_real_path(runner *r, const char *path, char *out, size_t size);
/* True when the runner works on the real root of its host. */
bool runner_is_real_root(const runner *r);

#endif
