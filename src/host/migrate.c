/* migrate-session (SPEC 6.5). The order of the steps is the safety
 * argument: every check runs before anything is written; the copy is built
 * on the agent under a staging name the agent's store sweeps after a crash
 * (.new-, see store.c), published with one rename, and confirmed through the
 * agent's own RPC before the source is removed, last. A failure at any step
 * before that removal leaves the source exactly as it was. */
#include "host/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/layout.h"
#include "engine/docker.h"
#include "common/fileio.h"
#include "common/hostport.h"
#include "common/paths.h"
#include "common/spawn.h"
#include "common/tree.h"
#include "common/ids.h"
#include "provision/digest.h"
#include "provision/progress.h"
#include "ssh/registry.h"

#define ERR_LEN 1024
#define TOOL_OUTPUT_MAX (64 * 1024)

typedef struct {
    plan *p;
    const migrate_options *o;
    runner *fs;
    agent_registry reg;
    agent_entry *agent;
    char source[PATH_BUF];     /* this machine's real path of the orphan */
    char source_dir[PATH_BUF]; /* its parent */
    char local_list[PATH_BUF]; /* "" until made */
    char local_tar[PATH_BUF];  /* "" until made */
    char remote_tar[PATH_BUF]; /* host paths on the agent */
    char staging[PATH_BUF];
    char home[PATH_BUF];
    char sha[SHA256_HEX_LEN + 1];
    bool remote_tar_written;
    bool staging_made;
    bool published; /* the agent holds the home */
    int lock_fd;    /* the source directory, flock()ed; -1 when not open */
} move;

static void say(const char *step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const char *step, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %s: ", step);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    fflush(stdout);
}

/* The agent's side in messages. */
static const char *where(const move *m)
{
    return m->fs->remote ? m->fs->where : "this machine";
}

/* Where a host path of the agent really is, for messages and tool argv. */
static char *agent_real(move *m, const char *path, char out[PATH_BUF])
{
    if (runner_real_path(m->fs, path, out, PATH_BUF) < 0)
        snprintf(out, PATH_BUF, "%s", path);
    return out;
}

int migrate_check_ids(plan *p, const migrate_options *o)
{
    if (o->uuid == NULL || !uuid_v4_is_valid(o->uuid))
        return plan_fail(p, "--session", "\"%.64s\" is not a canonical lowercase UUIDv4",
                         o->uuid ? o->uuid : "");
    if (o->agent_id == NULL || !agent_id_is_valid(o->agent_id))
        return plan_fail(p, "--agent", "\"%.64s\" is not an agent id (8 characters [a-z0-9])",
                         o->agent_id ? o->agent_id : "");
    return 0;
}

int migrate_default_host(plan *p, const char *agent_id, char *host, size_t size)
{
    char path[PATH_BUF], line[300], name[256];
    int port;
    if (root_path(path, sizeof path, "/etc/convocate/agent-keys/%s/agent-host", agent_id) < 0)
        return plan_fail(p, "agent", "--root is too long");
    if (read_line_file(path, line, sizeof line) < 0)
        return plan_fail(p, "agent", "agent %s is not registered: %s: %s", agent_id, path,
                         strerror(errno));
    if (parse_host_port(line, 222, name, sizeof name, &port) < 0)
        return plan_fail(p, "agent", "%s holds \"%.100s\", not host[:port]", path, line);
    int n = snprintf(host, size, strchr(name, ':') ? "[%s]" : "%s", name);
    if (n < 0 || (size_t)n >= size)
        return plan_fail(p, "agent", "%s: host name too long", path);
    return 0;
}

static int set_paths(move *m)
{
    const char *u = m->o->uuid;
    if (root_path(m->source_dir, sizeof m->source_dir, "/home/claude") < 0 ||
        root_path(m->source, sizeof m->source, "/home/claude/%s", u) < 0)
        return plan_fail(m->p, "source", "--root is too long");
    snprintf(m->remote_tar, sizeof m->remote_tar, "/home/claude/%s%s.tar", AGENT_STAGING_PREFIX, u);
    snprintf(m->staging, sizeof m->staging, "/home/claude/%s%s", AGENT_STAGING_PREFIX, u);
    snprintf(m->home, sizeof m->home, "/home/claude/%s", u);
    return 0;
}

/* ---- checks: nothing is written until all of them pass ---- */

static int check_source(move *m)
{
    struct stat st;
    if (lstat(m->source_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return plan_fail(m->p, "source", "%s is missing or not a real directory", m->source_dir);
    if (lstat(m->source, &st) < 0)
        return plan_fail(m->p, "source", "%s: %s", m->source, strerror(errno));
    if (S_ISLNK(st.st_mode))
        return plan_fail(m->p, "source", "%s is a symlink; refusing to follow it", m->source);
    if (!S_ISDIR(st.st_mode))
        return plan_fail(m->p, "source", "%s is not a directory", m->source);
    /* One move of a home at a time: a second run would sweep the first
     * one's staging on the agent. The lock goes with the process. */
    m->lock_fd = open(m->source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (m->lock_fd < 0)
        return plan_fail(m->p, "source", "%s: %s", m->source, strerror(errno));
    if (flock(m->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return plan_fail(m->p, "source", "%s: %s", m->source,
                         errno == EWOULDBLOCK ? "another migrate-session is moving it"
                                              : strerror(errno));
    say("source", "%s", m->source);
    return 0;
}

/* An orphan whose container still runs here is in use: moving it would cut
 * the files from under a live session. An engine that cannot be asked is a
 * refusal too, since "not running" would then be a guess. */
static int check_local_container(move *m)
{
    char err[ERR_LEN];
    char name[ENGINE_CONTAINER_NAME_LEN];
    engine_container_name(m->o->uuid, name);
    docker_client *d = docker_new(m->o->docker_host, err, sizeof err);
    bool running = false;
    int rc = d ? docker_session_running(d, m->o->uuid, &running, err, sizeof err) : -1;
    docker_free(d);
    if (rc < 0)
        return plan_fail(m->p, "local container", "cannot ask the engine at %s whether %s runs: %s",
                         m->o->docker_host, name, err);
    if (running)
        return plan_fail(m->p, "local container", "%s is running on this host; stop it first",
                         name);
    say("local container", "%s is not running", name);
    return 0;
}

static bool is_not_found(const char *error, const char *uuid)
{
    char expect[UUID_STR_LEN + 32];
    snprintf(expect, sizeof expect, "session \"%s\" not found", uuid);
    return strcmp(error, expect) == 0;
}

/* The target's answer decides; another agent that lists the uuid means the
 * directory is no orphan. Another agent that does not answer is only a
 * warning: it cannot hold this directory, which lives on the shell host. */
static int judge_replies(move *m, const agent_reply *replies)
{
    const char *u = m->o->uuid;
    char real[PATH_BUF];
    for (size_t i = 0; i < m->reg.n; i++) {
        const agent_entry *a = &m->reg.items[i];
        bool target = a == m->agent;
        if (replies[i].result != NULL && target)
            return plan_fail(m->p, "agent sessions",
                             "agent %s already lists session %s (its copy: %s on %s) and the "
                             "source %s still exists, perhaps from an interrupted migrate; "
                             "compare the two copies and remove one by hand",
                             a->id, u, agent_real(m, m->home, real), where(m), m->source);
        if (replies[i].result != NULL)
            return plan_fail(m->p, "agent sessions",
                             "agent %s already lists session %s, so %s is not an orphan", a->id, u,
                             m->source);
        if (is_not_found(replies[i].error, u))
            continue;
        if (target)
            return plan_fail(m->p, "agent sessions", "cannot ask agent %s: %s", a->id,
                             replies[i].error);
        fprintf(stderr, "convocate-host migrate-session: warning: agent %s did not answer: %s\n",
                a->id, replies[i].error);
    }
    return 0;
}

static int check_agents(move *m)
{
    char err[ERR_LEN];
    if (registry_load(&m->reg, err, sizeof err) < 0)
        return plan_fail(m->p, "agent", "%s", err);
    m->agent = registry_find(&m->reg, m->o->agent_id);
    if (m->agent == NULL)
        return plan_fail(m->p, "agent",
                         "agent %s is not registered (no usable /etc/convocate/agent-keys/%s/)",
                         m->o->agent_id, m->o->agent_id);
    agent_reply *replies = calloc(m->reg.n, sizeof *replies);
    json_t *params = json_pack("{s:s}", "id", m->o->uuid);
    int rc = -1;
    if (replies == NULL || params == NULL || agent_call_all(&m->reg, "get", params, replies) < 0)
        plan_fail(m->p, "agent sessions", "out of memory");
    else
        rc = judge_replies(m, replies);
    if (replies != NULL)
        agent_replies_clear(replies, m->reg.n);
    free(replies);
    json_decref(params);
    if (rc == 0)
        say("agent sessions", "agent %s (%s:%d) does not list %s", m->agent->id, m->agent->host,
            m->agent->port, m->o->uuid);
    return rc;
}

/* What an interrupted run left in the staging names is ours (the agent
 * stages only uuids it mints) and partial; the source it came from is still
 * here, so it is swept, and said so. */
static int sweep_leftover(move *m, const char *path)
{
    char real[PATH_BUF];
    if (m->p->dry_run) {
        say("agent files", "would remove %s, left by an interrupted run",
            agent_real(m, path, real));
        return 0;
    }
    char *argv[] = {"rm", "-rf", "--one-file-system", "--", agent_real(m, path, real), NULL};
    if (plan_run(m->p, m->fs, "agent files", argv, NULL) < 0)
        return -1;
    say("agent files", "removed %s, left by an interrupted run", real);
    return 0;
}

/* A home already where the copy goes, that the agent did not list (say a
 * file, or a directory of another owner), is for the operator to look at. */
static int check_agent_files(move *m)
{
    char err[ERR_LEN], real[PATH_BUF];
    runner_stat st;
    if (m->fs->ops->stat_path(m->fs, m->home, &st, err, sizeof err) < 0)
        return plan_fail(m->p, "agent files", "%s", err);
    if (st.exists)
        return plan_fail(m->p, "agent files",
                         "%s already exists on the agent (%s); move it away first",
                         agent_real(m, m->home, real), where(m));
    const char *const leftovers[] = {m->staging, m->remote_tar};
    for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
        if (m->fs->ops->stat_path(m->fs, leftovers[i], &st, err, sizeof err) < 0)
            return plan_fail(m->p, "agent files", "%s", err);
        if (st.exists && sweep_leftover(m, leftovers[i]) < 0)
            return -1;
    }
    return 0;
}

/* ---- the move ---- */

/* A fresh private file in TMPDIR (or /tmp); path[0] stays "" on failure. */
static int temp_file(move *m, const char *kind, char path[PATH_BUF])
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] != '/')
        tmp = "/tmp";
    if (snprintf(path, PATH_BUF, "%s/convocate-migrate-%s-XXXXXX", tmp, kind) >= PATH_BUF) {
        path[0] = '\0';
        return plan_fail(m->p, "archive", "TMPDIR is too long");
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        int saved = errno;
        path[0] = '\0';
        return plan_fail(m->p, "archive", "temporary file in %s: %s", tmp, strerror(saved));
    }
    close(fd);
    return 0;
}

/* Runs a tool here; 0 on exit status 0, else -1 reported under step. */
static int local_run(move *m, const char *step, char *const argv[])
{
    char *out = NULL;
    int status = spawn_capture(argv, &out, TOOL_OUTPUT_MAX);
    if (status != 0)
        plan_fail(m->p, step, "%s exited with %d: %.400s", argv[0], status,
                  out ? out : strerror(errno));
    free(out);
    return status == 0 ? 0 : -1;
}

/* What goes into the archive, chosen by find rather than tar's own walk:
 * only directories, regular files and symlinks, as the agent's clone keeps
 * (SPEC 6.4), so no device node or FIFO of a session's making is ever
 * created on the agent by a root untar. -P: no symlink is followed; find
 * walks without recursion limits; NUL-separated, relative to the home. */
static int list_members(move *m)
{
    char *argv[] = {"find", "-P",       m->source,     "-mindepth", "1",  "(",     "-type",
                    "f",    "-o",       "-type",       "d",         "-o", "-type", "l",
                    ")",    "-fprintf", m->local_list, "%P\\0",     NULL};
    return local_run(m, "archive", argv);
}

static int make_archive(move *m)
{
    if (temp_file(m, "list", m->local_list) < 0 || temp_file(m, "tar", m->local_tar) < 0 ||
        list_members(m) < 0)
        return -1;
    /* Members are relative to the home, named only by the list (verbatim,
     * never read as options). The owner is stamped claude here so a root
     * untar on the agent lands as claude; set-id bits are dropped so nothing
     * in the home becomes a set-uid claude program there. */
    char owner[32], group[32];
    snprintf(owner, sizeof owner, "--owner=:%u", (unsigned)CLAUDE_UID_DEFAULT);
    snprintf(group, sizeof group, "--group=:%u", (unsigned)CLAUDE_GID_DEFAULT);
    char *argv[] = {"tar",
                    "--create",
                    "--file",
                    m->local_tar,
                    "--numeric-owner",
                    owner,
                    group,
                    "--mode=ug-s",
                    "--directory",
                    m->source,
                    "--null",
                    "--verbatim-files-from",
                    "--no-recursion",
                    "--files-from",
                    m->local_list,
                    NULL};
    if (local_run(m, "archive", argv) < 0)
        return -1;
    struct stat st;
    if (stat(m->local_tar, &st) < 0)
        return plan_fail(m->p, "archive", "%s: %s", m->local_tar, strerror(errno));
    say("archive", "%s (%lld bytes)", m->local_tar, (long long)st.st_size);
    return 0;
}

static int hash_archive(move *m)
{
    char err[ERR_LEN];
    if (digest_local_file(m->local_tar, m->sha, err, sizeof err) < 0)
        return plan_fail(m->p, "sha256", "%s", err);
    say("sha256", "%s", m->sha);
    return 0;
}

/* Streamed through the runner's upload, never held in memory, so a home
 * of any size moves; 0600 and the owner the upload gives it (root), as
 * the archive is only read by the untar. */
static int copy_archive(move *m)
{
    char err[ERR_LEN], real[PATH_BUF];
    say("copy", "to %s on %s", agent_real(m, m->remote_tar, real), where(m));
    m->remote_tar_written = true; /* a failed upload may leave a temporary */
    if (progress_upload(m->fs, "copy", m->local_tar, m->remote_tar, 0600, KEEP_OWNER, KEEP_OWNER,
                        err, sizeof err) < 0)
        return plan_fail(m->p, "copy", "%s", err);
    return 0;
}

static int verify_copy(move *m)
{
    char have[SHA256_HEX_LEN + 1], err[ERR_LEN];
    if (digest_target_file(m->fs, m->remote_tar, have, err, sizeof err) < 0)
        return plan_fail(m->p, "verify", "%s", err);
    if (strcmp(have, m->sha) != 0)
        return plan_fail(m->p, "verify", "the copy on the agent has another SHA-256");
    say("verify", "SHA-256 matches on the agent");
    return 0;
}

/* Untars into the staging directory, which becomes the home (members are
 * relative to it), then renames it into place:
 * the agent's list never sees half a session. */
static int untar(move *m)
{
    char err[ERR_LEN], tar_real[PATH_BUF], stage_real[PATH_BUF], home_real[PATH_BUF];
    uid_t uid = CLAUDE_UID_DEFAULT;
    gid_t gid = CLAUDE_GID_DEFAULT;
    m->staging_made = true;
    if (m->fs->ops->make_dir(m->fs, m->staging, 0700, uid, gid, err, sizeof err) < 0)
        return plan_fail(m->p, "untar", "%s", err);
    /* Owners come from the archive (claude) only where we may chown. */
    char *extract[] = {"tar",
                       "--extract",
                       "--file",
                       agent_real(m, m->remote_tar, tar_real),
                       "--directory",
                       agent_real(m, m->staging, stage_real),
                       "--numeric-owner",
                       m->fs->can_chown ? "--same-owner" : "--no-same-owner",
                       "--same-permissions",
                       NULL};
    if (plan_run(m->p, m->fs, "untar", extract, NULL) < 0)
        return -1;
    if (m->fs->ops->make_dir(m->fs, m->staging, 0700, uid, gid, err, sizeof err) < 0)
        return plan_fail(m->p, "untar", "%s", err);
    char *publish[] = {"mv", "--no-clobber", "--no-target-directory",
                       "--", stage_real,     agent_real(m, m->home, home_real),
                       NULL};
    if (plan_run(m->p, m->fs, "untar", publish, NULL) < 0)
        return -1;
    runner_stat st;
    if (m->fs->ops->stat_path(m->fs, m->staging, &st, err, sizeof err) < 0 || st.exists)
        return plan_fail(m->p, "untar", "%s could not be renamed to %s", stage_real, home_real);
    m->staging_made = false;
    m->published = true;
    say("untar", "%s on %s (%u:%u, 0700)", home_real, where(m), (unsigned)uid, (unsigned)gid);
    return 0;
}

/* The agent holds its sessions in memory and keeps their metadata out of
 * the homes (SPEC 6.1): the home just published carries the orphan's
 * session.json, which the agent now reads (as untrusted input), validates,
 * checks against its other sessions' ports and DNS names, and moves into
 * its metadata directory. It refuses any uuid that already has metadata,
 * so no session can have its own home's session.json adopted. */
static int adopt(move *m)
{
    char err[ERR_LEN], real[PATH_BUF];
    json_t *params = json_pack("{s:s}", "id", m->o->uuid);
    json_t *got = params ? agent_call(m->agent, "adopt", params, err, sizeof err) : NULL;
    json_decref(params);
    if (got == NULL)
        return plan_fail(m->p, "adopt",
                         "agent %s did not take in session %s: %s; both copies are kept: %s "
                         "here and %s on %s",
                         m->agent->id, m->o->uuid, err, m->source, agent_real(m, m->home, real),
                         where(m));
    json_decref(got);
    say("adopt", "agent %s moved the session's metadata out of its home", m->agent->id);
    return 0;
}

/* The agent's word is the proof: get answers from what the agent holds. */
static int confirm_listed(move *m)
{
    char err[ERR_LEN], real[PATH_BUF];
    json_t *params = json_pack("{s:s}", "id", m->o->uuid);
    json_t *got = params ? agent_call(m->agent, "get", params, err, sizeof err) : NULL;
    json_decref(params);
    const char *uuid = json_string_value(json_object_get(got, "uuid"));
    bool ok = uuid != NULL && strcmp(uuid, m->o->uuid) == 0;
    json_decref(got);
    if (!ok)
        return plan_fail(m->p, "listed",
                         "agent %s does not list session %s after the move (%s); both copies "
                         "are kept: %s here and %s on %s",
                         m->agent->id, m->o->uuid, got ? "unexpected answer" : err, m->source,
                         agent_real(m, m->home, real), where(m));
    say("listed", "agent %s lists session %s", m->agent->id, m->o->uuid);
    return 0;
}

static int remove_source(move *m)
{
    if (tree_remove(m->source) < 0)
        return plan_fail(m->p, "remove source",
                         "%s: %s; agent %s holds the session now, remove the source by hand",
                         m->source, strerror(errno), m->agent->id);
    say("remove source", "%s", m->source);
    return 0;
}

/* Temporaries and, when the move did not get as far as the rename, the
 * staging directory; never the published home, never the source. */
static void clean_up(move *m)
{
    char real[PATH_BUF];
    bool any = m->local_list[0] != '\0' || m->remote_tar_written || m->staging_made;
    int failed = 0;
    if (m->local_list[0] != '\0' && unlink(m->local_list) < 0 && errno != ENOENT)
        failed =
            plan_fail(m->p, "temp files", "cannot remove %s: %s", m->local_list, strerror(errno));
    if (m->local_tar[0] != '\0' && unlink(m->local_tar) < 0 && errno != ENOENT)
        failed =
            plan_fail(m->p, "temp files", "cannot remove %s: %s", m->local_tar, strerror(errno));
    if (m->remote_tar_written) {
        char *argv[] = {"rm", "-f", "--", agent_real(m, m->remote_tar, real), NULL};
        failed |= plan_run(m->p, m->fs, "temp files", argv, NULL);
    }
    if (m->staging_made) {
        char *argv[] = {"rm", "-rf", "--one-file-system", "--", agent_real(m, m->staging, real),
                        NULL};
        failed |= plan_run(m->p, m->fs, "temp files", argv, NULL);
    }
    if (any && failed == 0)
        say("temp files", "removed");
}

static void print_dry_run(move *m)
{
    char real[PATH_BUF];
    printf("  would archive %s (tar, owner %u:%u) and hash it (SHA-256)\n", m->source,
           (unsigned)CLAUDE_UID_DEFAULT, (unsigned)CLAUDE_GID_DEFAULT);
    printf("  would copy it to %s on %s and verify its SHA-256 there\n",
           agent_real(m, m->remote_tar, real), where(m));
    printf("  would untar it into %s (0700), have agent %s adopt it (its session.json "
           "becomes the agent's metadata) and check that it lists it\n",
           agent_real(m, m->home, real), m->agent->id);
    printf("  would then remove %s\n", m->source);
    printf("dry run: nothing was touched\n");
}

static int checks(move *m)
{
    if (migrate_check_ids(m->p, m->o) < 0 || set_paths(m) < 0 || check_source(m) < 0 ||
        check_local_container(m) < 0 || check_agents(m) < 0 || check_agent_files(m) < 0)
        return -1;
    return 0;
}

int migrate_session(plan *p, const migrate_options *o, runner *agent_fs)
{
    move m = {.p = p, .o = o, .fs = agent_fs, .lock_fd = -1};
    int rc = checks(&m);
    if (rc == 0 && p->dry_run) {
        print_dry_run(&m);
    } else if (rc == 0) {
        rc = make_archive(&m) < 0 || hash_archive(&m) < 0 || copy_archive(&m) < 0 ||
                     verify_copy(&m) < 0 || untar(&m) < 0 || adopt(&m) < 0 ||
                     confirm_listed(&m) < 0 || remove_source(&m) < 0
                 ? -1
                 : 0;
        clean_up(&m);
        if (rc == 0)
            printf("session %s moved to agent %s\n", o->uuid, o->agent_id);
        else
            printf("session %s: %s\n", o->uuid,
                   m.published ? "the agent holds a copy, see above"
                               : "not moved, the source is intact");
    }
    registry_free(&m.reg);
    if (m.lock_fd >= 0)
        close(m.lock_fd);
    fflush(stdout);
    return rc;
}
