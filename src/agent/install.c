/* `convocate-agent install` (SPEC 11): lays down the agent host's files.
 *
 * Every step compares what is on disk with what it would write and says
 * "created", "updated" or "unchanged", so a second run is provably a no-op.
 * Identity material (agent-id, host key, authorized_keys) is only ever
 * created, never rewritten: changing it would cut the agent off its shell. */
#include "agent/install.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <libssh/libssh.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "engine/docker.h"
#include "common/fileio.h"
#include "common/paths.h"
#include "common/spawn.h"
#include "common/ids.h"
#include "provision/logrotate.h"
#include "provision/packaging.h"
#define CONF_DIR "/etc/convocate-agent"
#define SMALL_FILE_MAX (1024 * 1024)

/* Starter CLAUDE.md for every new session home. Kept byte-identical to
 * data/skel/CLAUDE.md (a test compares them); embedded so that the binary
 * alone is enough to install an agent. */
static const char skel_claude_md[] =
    "# Welcome to your convocate session\n"
    "\n"
    "This directory is the home of one convocate session. It lives on the agent\n"
    "host at `/home/claude/<session-uuid>/` and is mounted here as `/home/claude`.\n"
    "Everything you keep here survives a container restart; everything outside it\n"
    "is reset when the session's container is recreated.\n"
    "\n"
    "## What is where\n"
    "\n"
    "- `/home/claude` - this session's own files (read-write).\n"
    "- `/home/claude/.claude-shared` - the agent's shared Claude account (read-only).\n"
    "- `/home/claude/.ssh`, `/home/claude/.gitconfig` - the agent's SSH and git\n"
    "  identity, when the operator has set them up (read-only).\n"
    "\n"
    "## Working here\n"
    "\n"
    "- You are the `claude` user, with passwordless `sudo` inside this container.\n"
    "  Packages installed with `sudo apt-get install` last until the container is\n"
    "  recreated; note them below so they can be reinstalled.\n"
    "- The session runs inside tmux: `Ctrl-b d` detaches and leaves it running.\n"
    "- If the session has a port, it is published on the agent host under the same\n"
    "  number and protocol.\n"
    "\n"
    "## Notes for this session\n"
    "\n"
    "Describe the task, the repository and any conventions Claude should follow.\n";

/* The first line names who wrote the file (packaging_unit_step reads it). */
#define AGENT_UNIT_HEADER "# Installed by convocate-agent install"
static const char agent_unit[] =
    "# Installed by convocate-agent install; rewritten on each install.\n"
    "[Unit]\n"
    "Description=convocate agent (session containers and the tcp/222 listener)\n"
    "Documentation=man:convocate-agent(8)\n"
    "After=network-online.target docker.service\n"
    "Wants=network-online.target docker.service\n"
    "\n"
    "[Service]\n"
    "Type=simple\n"
    "ExecStart=/usr/local/bin/convocate-agent serve\n"
    "Restart=on-failure\n"
    "RestartSec=2s\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

static const char prune_script[] =
    "#!/bin/sh\n"
    "# Installed by convocate-agent install. Removes every convocate:* image tag\n"
    "# that no container uses, keeping the tag named in current-image.\n"
    "set -u\n"
    "current=$(head -n 1 /etc/convocate-agent/current-image 2>/dev/null || true)\n"
    "in_use=$(docker ps --all --format '{{.Image}}') || exit 1\n"
    "docker image ls --format '{{.Repository}}:{{.Tag}}' convocate |\n"
    "while read -r tag; do\n"
    "    [ \"$tag\" = \"$current\" ] && continue\n"
    "    printf '%s\\n' \"$in_use\" | grep -qxF -e \"$tag\" && continue\n"
    "    docker image rm \"$tag\" >/dev/null ||\n"
    "        echo \"convocate-image-prune: could not remove $tag\" >&2\n"
    "done\n"
    "exit 0\n";

typedef struct {
    bool dry_run;
    int changes;
    uid_t claude_uid;
    gid_t claude_gid;
} install_ctx;

static void report(install_ctx *ctx, const char *step, step_outcome outcome)
{
    static const char *const done[] = {"unchanged", "created", "updated"};
    static const char *const planned[] = {"unchanged", "would create", "would update"};
    if (outcome != STEP_UNCHANGED)
        ctx->changes++;
    printf("  %s: %s\n", step, (ctx->dry_run ? planned : done)[outcome]);
    fflush(stdout);
}

static int fail(const char *step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const char *step, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "convocate-agent install: %s: ", step);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static int host_path(char *out, const char *step, const char *rel)
{
    if (root_path(out, PATH_BUF, "%s", rel) < 0)
        return fail(step, "path %s under --root is too long", rel);
    return 0;
}

/* ---- generic steps ------------------------------------------------------ */

static bool owner_differs(const struct stat *st, uid_t uid, gid_t gid)
{
    return uid != KEEP_OWNER && (st->st_uid != uid || st->st_gid != gid);
}

/* The parent directory is made on demand (e.g. /etc/cron.daily under a test
 * root); the directories of SPEC 4 with their own modes are steps of their own. */
static int ensure_parent(const char *path, const char *step)
{
    char parent[PATH_BUF];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash == NULL || slash == parent)
        return 0;
    *slash = '\0';
    if (mkdir_p(parent, 0755) < 0)
        return fail(step, "mkdir %s: %s", parent, strerror(errno));
    return 0;
}

static int ensure_dir(install_ctx *ctx, const char *step, const char *rel, mode_t mode, uid_t uid,
                      gid_t gid)
{
    char path[PATH_BUF];
    if (host_path(path, step, rel) < 0)
        return -1;
    struct stat st;
    step_outcome outcome = STEP_UNCHANGED;
    if (lstat(path, &st) < 0) {
        if (errno != ENOENT)
            return fail(step, "%s: %s", path, strerror(errno));
        outcome = STEP_CREATED;
    } else if (!S_ISDIR(st.st_mode)) {
        return fail(step, "%s exists and is not a directory", path);
    } else if ((st.st_mode & 07777) != mode || owner_differs(&st, uid, gid)) {
        outcome = STEP_UPDATED;
    }
    if (outcome != STEP_UNCHANGED && !ctx->dry_run) {
        if (outcome == STEP_CREATED && (ensure_parent(path, step) < 0 || mkdir(path, mode) < 0))
            return fail(step, "mkdir %s: %s", path, strerror(errno));
        /* chmod after mkdir: the umask must not weaken or widen the mode. */
        if (chmod(path, mode) < 0)
            return fail(step, "chmod %s: %s", path, strerror(errno));
        if (uid != KEEP_OWNER && chown(path, uid, gid) < 0)
            return fail(step, "chown %s: %s", path, strerror(errno));
    }
    report(ctx, step, outcome);
    return 0;
}

/* What a file on disk is compared with: content, mode and owner. */
static step_outcome compare_file(const char *path, const char *data, size_t len, mode_t mode,
                                 uid_t uid, gid_t gid)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return STEP_CREATED;
    if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != mode || owner_differs(&st, uid, gid))
        return STEP_UPDATED;
    char *old = NULL;
    size_t old_len = 0;
    if (read_file_bounded(path, SMALL_FILE_MAX, &old, &old_len) < 0)
        return STEP_UPDATED;
    bool same = old_len == len && memcmp(old, data, len) == 0;
    free(old);
    return same ? STEP_UNCHANGED : STEP_UPDATED;
}

static int ensure_file(install_ctx *ctx, const char *step, const char *rel, const char *data,
                       size_t len, mode_t mode, uid_t uid, gid_t gid)
{
    char path[PATH_BUF];
    if (host_path(path, step, rel) < 0)
        return -1;
    step_outcome outcome = compare_file(path, data, len, mode, uid, gid);
    if (outcome != STEP_UNCHANGED && !ctx->dry_run) {
        if (ensure_parent(path, step) < 0)
            return -1;
        if (atomic_write_file(path, data, len, mode, uid, gid) < 0)
            return fail(step, "write %s: %s", path, strerror(errno));
    }
    report(ctx, step, outcome);
    return 0;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- docker and the claude user ----------------------------------------- */

static int check_docker(const install_options *opt)
{
    char err[512];
    docker_client *d = docker_new(opt->docker_host, err, sizeof err);
    int rc = d ? docker_ping(d, err, sizeof err) : -1;
    docker_free(d);
    if (rc < 0)
        return fail("docker", "%s", err);
    printf("  docker: reachable at %s\n", opt->docker_host);
    return 0;
}

static int run_tool(const char *step, char *const argv[])
{
    char *out = NULL;
    int status = spawn_capture(argv, &out, 4096);
    if (status != 0) {
        size_t n = out ? strcspn(out, "\n") : 0;
        fail(step, "%s failed (exit %d)%s%.*s", argv[0], status, n ? ": " : "", (int)n,
             out ? out : "");
    }
    free(out);
    return status == 0 ? 0 : -1;
}

/* Only on the real root: a test or packaging root must not add host users. */
static int ensure_claude_user(install_ctx *ctx)
{
    const char *step = "user claude";
    char uid[16], gid[16];
    snprintf(uid, sizeof uid, "%u", CLAUDE_UID_DEFAULT);
    snprintf(gid, sizeof gid, "%u", CLAUDE_GID_DEFAULT);
    bool have_group = getgrnam("claude") != NULL;
    struct passwd *pw = getpwnam("claude");
    if (pw != NULL) {
        ctx->claude_uid = pw->pw_uid;
        ctx->claude_gid = pw->pw_gid;
        report(ctx, step, STEP_UNCHANGED);
        return 0;
    }
    if (!ctx->dry_run) {
        char *groupadd[] = {"groupadd", "--gid", gid, "claude", NULL};
        char *useradd[] = {"useradd",
                           "--uid",
                           uid,
                           "--gid",
                           "claude",
                           "--home-dir",
                           "/home/claude",
                           "--no-create-home",
                           "--shell",
                           "/bin/bash",
                           "claude",
                           NULL};
        if ((!have_group && run_tool(step, groupadd) < 0) || run_tool(step, useradd) < 0)
            return -1;
        pw = getpwnam("claude");
        if (pw == NULL)
            return fail(step, "useradd succeeded but user claude is not visible");
        ctx->claude_uid = pw->pw_uid;
        ctx->claude_gid = pw->pw_gid;
    }
    report(ctx, step, STEP_CREATED);
    return 0;
}

/* ---- identity: agent-id, host key, authorized_keys ----------------------- */

static int ensure_agent_id(install_ctx *ctx)
{
    const char *step = "agent-id";
    char path[PATH_BUF], id[AGENT_ID_LEN + 2];
    if (host_path(path, step, CONF_DIR "/agent-id") < 0)
        return -1;
    if (file_exists(path)) {
        if (read_line_file(path, id, sizeof id) < 0 || !agent_id_is_valid(id))
            return fail(step,
                        "%s exists but does not hold an 8-character [a-z0-9] id; "
                        "fix or remove it by hand (it names this agent to the shell)",
                        path);
        report(ctx, step, STEP_UNCHANGED);
        return 0;
    }
    if (!ctx->dry_run) {
        if (random_alnum(id, AGENT_ID_LEN) < 0)
            return fail(step, "no randomness: %s", strerror(errno));
        id[AGENT_ID_LEN] = '\n';
        if (atomic_write_file(path, id, AGENT_ID_LEN + 1, 0644, 0, 0) < 0)
            return fail(step, "write %s: %s", path, strerror(errno));
    }
    report(ctx, step, STEP_CREATED);
    return 0;
}

/* "ssh-ed25519 AAAA... convocate-agent\n" for the public half of key. */
static char *openssh_public_line(ssh_key key)
{
    char *b64 = NULL, *line = NULL;
    if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
        return NULL;
    if (asprintf(&line, "%s %s convocate-agent\n", ssh_key_type_to_char(ssh_key_type(key)), b64) <
        0)
        line = NULL;
    ssh_string_free_char(b64);
    return line;
}

static int write_public_key(const char *step, ssh_key key, const char *pub_path)
{
    char *pub = openssh_public_line(key);
    if (pub == NULL)
        return fail(step, "cannot export the public key");
    int rc = atomic_write_file(pub_path, pub, strlen(pub), 0644, 0, 0);
    free(pub);
    if (rc < 0)
        return fail(step, "write %s: %s", pub_path, strerror(errno));
    return 0;
}

static int generate_host_key(const char *step, const char *key_path, const char *pub_path)
{
    ssh_key key = NULL;
    char *priv = NULL;
    int rc = -1;
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
        fail(step, "ed25519 key generation failed");
        goto out;
    }
    if (ssh_pki_export_privkey_base64(key, NULL, NULL, NULL, &priv) != SSH_OK) {
        fail(step, "cannot export the private key");
        goto out;
    }
    if (atomic_write_file(key_path, priv, strlen(priv), 0600, 0, 0) < 0) {
        fail(step, "write %s: %s", key_path, strerror(errno));
        goto out;
    }
    rc = write_public_key(step, key, pub_path);
out:
    if (priv != NULL) {
        explicit_bzero(priv, strlen(priv));
        ssh_string_free_char(priv);
    }
    ssh_key_free(key);
    return rc;
}

/* A lost .pub is rebuilt from the private key; the key itself is never
 * replaced, since the shell has it pinned. */
static int rebuild_public_key(const char *step, const char *key_path, const char *pub_path)
{
    ssh_key key = NULL;
    if (ssh_pki_import_privkey_file(key_path, NULL, NULL, NULL, &key) != SSH_OK)
        return fail(step, "%s exists but cannot be read as a private key", key_path);
    int rc = ssh_key_type(key) == SSH_KEYTYPE_ED25519
                 ? write_public_key(step, key, pub_path)
                 : fail(step, "%s is not an ed25519 key", key_path);
    ssh_key_free(key);
    return rc;
}

static int ensure_host_key(install_ctx *ctx)
{
    const char *step = "host key";
    char key_path[PATH_BUF], pub_path[PATH_BUF];
    if (host_path(key_path, step, CONF_DIR "/ssh_host_ed25519_key") < 0 ||
        host_path(pub_path, step, CONF_DIR "/ssh_host_ed25519_key.pub") < 0)
        return -1;
    bool have_key = file_exists(key_path), have_pub = file_exists(pub_path);
    if (have_key && have_pub) {
        report(ctx, step, STEP_UNCHANGED);
        return 0;
    }
    if (!ctx->dry_run) {
        int rc = have_key ? rebuild_public_key(step, key_path, pub_path)
                          : generate_host_key(step, key_path, pub_path);
        if (rc < 0)
            return -1;
    }
    report(ctx, step, have_key ? STEP_UPDATED : STEP_CREATED);
    return 0;
}

static int ensure_authorized_keys(install_ctx *ctx)
{
    const char *step = "authorized_keys";
    char path[PATH_BUF];
    if (host_path(path, step, CONF_DIR "/authorized_keys") < 0)
        return -1;
    if (file_exists(path)) {
        report(ctx, step, STEP_UNCHANGED);
        return 0;
    }
    if (!ctx->dry_run && atomic_write_file(path, "", 0, 0600, 0, 0) < 0)
        return fail(step, "write %s: %s", path, strerror(errno));
    report(ctx, step, STEP_CREATED);
    return 0;
}

/* ---- systemd units ------------------------------------------------------ */

static int host_mem_total_bytes(unsigned long long *out)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (f == NULL)
        return -1;
    char line[256];
    int rc = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long kib;
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
            *out = kib * 1024ULL;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int ensure_sessions_slice(install_ctx *ctx)
{
    const char *step = "convocate-sessions.slice";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned long long mem;
    if (ncpu < 1)
        return fail(step, "cannot count this host's CPUs: %s", strerror(errno));
    if (host_mem_total_bytes(&mem) < 0)
        return fail(step, "cannot read MemTotal from /proc/meminfo");
    char *unit = NULL;
    int len = asprintf(&unit,
                       "# Installed by convocate-agent install, sized from this host\n"
                       "# (%ld CPUs, %llu bytes of memory): every session container's\n"
                       "# cgroup parent, capped at 90%% of the host (SPEC 10, layer 2).\n"
                       "[Unit]\n"
                       "Description=convocate session containers\n"
                       "Before=slices.target\n"
                       "\n"
                       "[Slice]\n"
                       "CPUAccounting=yes\n"
                       "MemoryAccounting=yes\n"
                       "CPUQuota=%ld%%\n"
                       "MemoryMax=%llu\n",
                       ncpu, mem, ncpu * 90, mem * 9 / 10);
    if (len < 0)
        return fail(step, "out of memory");
    int rc = ensure_file(ctx, step, "/etc/systemd/system/convocate-sessions.slice", unit,
                         (size_t)len, 0644, 0, 0);
    free(unit);
    return rc;
}

/* The convocate-agent package ships its own unit (provision/packaging.h);
 * then no copy goes to /etc/systemd/system, where it would shadow it. */
static int ensure_agent_unit(install_ctx *ctx)
{
    const char *step = "convocate-agent.service";
    char err[512];
    runner *r = runner_local_new(paths_root(), err, sizeof err);
    if (r == NULL)
        return fail(step, "%s", err);
    plan p = {.program = "convocate-agent install", .dry_run = ctx->dry_run};
    int packaged = packaging_unit_step(&p, r, step, AGENT_UNIT_HEADER);
    runner_free(r);
    ctx->changes += p.changes;
    if (packaged != 0)
        return packaged < 0 ? -1 : 0;
    return ensure_file(ctx, step, "/etc/systemd/system/convocate-agent.service", agent_unit,
                       sizeof agent_unit - 1, 0644, 0, 0);
}

/* ---- session homes ------------------------------------------------------ */

/* Session dirs already here (a reinstall, or a migrated host) are kept as
 * they are; the count tells the operator they were found. */
static int count_session_dirs(const char *step, int *count)
{
    char home[PATH_BUF];
    if (host_path(home, step, "/home/claude") < 0)
        return -1;
    *count = 0;
    DIR *dir = opendir(home);
    if (dir == NULL)
        return errno == ENOENT ? 0 : fail(step, "open %s: %s", home, strerror(errno));
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_type == DT_DIR && uuid_v4_is_valid(e->d_name))
            (*count)++;
    }
    closedir(dir);
    return 0;
}

/* rsyslog-tls/ lives in the configuration directory: where rsyslogd drops
 * privileges to the syslog group (Ubuntu), others may search it (not list
 * it) so that the daemon reaches its files (rsyslog_conf.h). */
static mode_t conf_dir_mode(void)
{
    return getgrnam(RSYSLOG_READER_GROUP) != NULL ? RSYSLOG_SHARED_PARENT_MODE : 0750;
}

static int install_steps(install_ctx *ctx)
{
    uid_t uid = ctx->claude_uid;
    gid_t gid = ctx->claude_gid;
    if (ensure_dir(ctx, CONF_DIR "/", CONF_DIR, conf_dir_mode(), 0, 0) < 0 ||
        ensure_agent_id(ctx) < 0 || ensure_host_key(ctx) < 0 || ensure_authorized_keys(ctx) < 0)
        return -1;
    if (ensure_agent_unit(ctx) < 0 || ensure_sessions_slice(ctx) < 0)
        return -1;
    if (ensure_file(ctx, "image prune cron", "/etc/cron.daily/convocate-image-prune", prune_script,
                    sizeof prune_script - 1, 0755, 0, 0) < 0 ||
        ensure_file(ctx, "logrotate", LOGROTATE_AGENT_LOGS, logrotate_agent_logs_conf(),
                    strlen(logrotate_agent_logs_conf()), 0644, 0, 0) < 0)
        return -1;
    if (ensure_dir(ctx, "/home/claude/", "/home/claude", 0755, uid, gid) < 0 ||
        ensure_dir(ctx, "skel", "/home/claude/.skel", 0755, uid, gid) < 0 ||
        ensure_file(ctx, "skel CLAUDE.md", "/home/claude/.skel/CLAUDE.md", skel_claude_md,
                    sizeof skel_claude_md - 1, 0644, uid, gid) < 0)
        return -1;
    return 0;
}

int agent_install(const install_options *opt)
{
    install_ctx ctx = {.dry_run = opt->dry_run,
                       .claude_uid = CLAUDE_UID_DEFAULT,
                       .claude_gid = CLAUDE_GID_DEFAULT};
    bool real_root = strcmp(paths_root(), "") == 0 || strcmp(paths_root(), "/") == 0;
    printf("convocate-agent install%s (root %s)\n", opt->dry_run ? " --dry-run" : "",
           real_root ? "/" : paths_root());
    if (opt->skip_docker_check)
        printf("  docker: not checked (--no-docker-check)\n");
    else if (check_docker(opt) < 0)
        return 1;
    if (real_root && ensure_claude_user(&ctx) < 0)
        return 1;
    int sessions = 0;
    if (install_steps(&ctx) < 0 || count_session_dirs("sessions", &sessions) < 0)
        return 1;
    printf("  sessions: %d existing session dir%s adopted\n", sessions, sessions == 1 ? "" : "s");
    if (ctx.changes == 0)
        printf("nothing changed\n");
    else
        printf("%d step%s %s\n", ctx.changes, ctx.changes == 1 ? "" : "s",
               opt->dry_run ? "would change (dry run: nothing was touched)" : "changed");
    return 0;
}
