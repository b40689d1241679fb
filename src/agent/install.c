/* `convocate-agent install` (SPEC 11): lays down the agent host's files,
 * as provisioning plan steps (provision/plan.h) on a local runner under
 * --root: every step compares what is on disk with what it would write and
 * says "created", "updated" or "unchanged", so a second run is provably a
 * no-op. Identity material (agent-id, host key, authorized_keys) is only
 * ever created, never rewritten: changing it would cut the agent off its
 * shell. */
#include "agent/install.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/home_mount.h"
#include "common/fileio.h"
#include "common/ids.h"
#include "common/layout.h"
#include "engine/docker.h"
#include "provision/conf_dir.h"
#include "provision/logrotate.h"
#include "provision/packaging.h"
#include "provision/plan.h"
#include "provision/runner.h"
#include "ssh/keygen.h"

#define PROGRAM "convocate-agent install"
#define CONF_DIR AGENT_CONF_DIR
#define AGENT_ID_FILE CONF_DIR "/agent-id"
#define HOST_KEY CONF_DIR "/ssh_host_ed25519_key"
#define HOST_KEY_PUB HOST_KEY ".pub"
#define KEY_COMMENT "convocate-agent"
#define SESSION_HOMES "/home/claude"
#define ERR_LEN 512

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

/* What a message shows for a host path: where it really is, --root and all. */
static const char *real_path(runner *r, const char *path, char out[PATH_BUF])
{
    if (runner_real_path(r, path, out, PATH_BUF) < 0)
        snprintf(out, PATH_BUF, "%s", path);
    return out;
}

/* ---- docker and the claude user ----------------------------------------- */

static int check_docker(plan *p, const install_options *opt)
{
    char err[ERR_LEN];
    docker_client *d = docker_new(opt->docker_host, err, sizeof err);
    int rc = d ? docker_ping(d, err, sizeof err) : -1;
    docker_free(d);
    if (rc < 0)
        return plan_fail(p, "docker", "%s", err);
    printf("  docker: reachable at %s\n", opt->docker_host);
    return 0;
}

static int add_claude_user(plan *p, runner *r, const char *step)
{
    char uid[16], gid[16];
    snprintf(uid, sizeof uid, "%u", CLAUDE_UID_DEFAULT);
    snprintf(gid, sizeof gid, "%u", CLAUDE_GID_DEFAULT);
    char *groupadd[] = {"groupadd", "--gid", gid, "claude", NULL};
    char *useradd[] = {"useradd", "--uid",      uid,           "--gid",
                       "claude",  "--home-dir", SESSION_HOMES, "--no-create-home",
                       "--shell", "/bin/bash",  "claude",      NULL};
    bool have_group = getgrnam("claude") != NULL;
    if (!have_group && plan_run(p, r, step, groupadd, NULL) < 0)
        return -1;
    return plan_run(p, r, step, useradd, NULL);
}

/* Only on the real root: a test or packaging root must not add host users.
 * Session homes then belong to claude's ids as this host has them. */
static int claude_user_step(plan *p, runner *r, uid_t *uid, gid_t *gid)
{
    const char *step = "user claude";
    struct passwd *pw = getpwnam("claude");
    step_outcome outcome = pw != NULL ? STEP_UNCHANGED : STEP_CREATED;
    if (pw == NULL && !p->dry_run) {
        if (add_claude_user(p, r, step) < 0)
            return -1;
        pw = getpwnam("claude");
        if (pw == NULL)
            return plan_fail(p, step, "useradd succeeded but user claude is not visible");
    }
    if (pw != NULL) {
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    }
    plan_report(p, step, outcome);
    return 0;
}

/* ---- identity: agent-id, host key, authorized_keys ----------------------- */

static bool holds_agent_id(char *text)
{
    return agent_id_is_valid(text_first_line(text));
}

static int agent_id_step(plan *p, runner *r)
{
    const char *step = "agent-id";
    char *text = NULL, err[ERR_LEN], shown[PATH_BUF];
    size_t len;
    int have = plan_read(p, r, step, AGENT_ID_FILE, &text, &len);
    if (have < 0)
        return -1;
    if (have) {
        bool valid = holds_agent_id(text);
        free(text);
        if (!valid)
            return plan_fail(p, step,
                             "%s exists but does not hold an 8-character [a-z0-9] id; "
                             "fix or remove it by hand (it names this agent to the shell)",
                             real_path(r, AGENT_ID_FILE, shown));
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    if (!p->dry_run) {
        char id[AGENT_ID_LEN + 1];
        if (random_alnum(id, AGENT_ID_LEN) < 0)
            return plan_fail(p, step, "no randomness: %s", strerror(errno));
        id[AGENT_ID_LEN] = '\n';
        if (r->ops->write_file(r, AGENT_ID_FILE, id, sizeof id, 0644, 0, 0, err, sizeof err) < 0)
            return plan_fail(p, step, "%s", err);
    }
    plan_report(p, step, STEP_CREATED);
    return 0;
}

static int write_public_key(plan *p, runner *r, const char *step, ssh_key key)
{
    char err[ERR_LEN];
    char *line = keygen_public_line(key, KEY_COMMENT);
    if (line == NULL)
        return plan_fail(p, step, "cannot export the public key");
    int rc = r->ops->write_file(r, HOST_KEY_PUB, line, strlen(line), 0644, 0, 0, err, sizeof err);
    free(line);
    return rc < 0 ? plan_fail(p, step, "%s", err) : 0;
}

static int mint_host_key(plan *p, runner *r, const char *step)
{
    char err[ERR_LEN];
    ssh_key key = keygen_ed25519();
    char *text = key != NULL ? keygen_private_text(key) : NULL;
    int rc = -1;
    if (text == NULL)
        plan_fail(p, step, "ed25519 key generation failed");
    else if (r->ops->write_file(r, HOST_KEY, text, strlen(text), 0600, 0, 0, err, sizeof err) < 0)
        plan_fail(p, step, "%s", err);
    else
        rc = write_public_key(p, r, step, key);
    keygen_free_secret(text);
    ssh_key_free(key);
    return rc;
}

/* A lost .pub is rebuilt from the private key; the key itself is never
 * replaced, since the shell has it pinned. */
static int rebuild_public_key(plan *p, runner *r, const char *step)
{
    char *text = NULL, err[ERR_LEN], shown[PATH_BUF];
    size_t len;
    ssh_key key = NULL;
    int have = plan_read(p, r, step, HOST_KEY, &text, &len);
    if (have <= 0)
        return have < 0 ? -1 : plan_fail(p, step, "%s vanished", real_path(r, HOST_KEY, shown));
    int rc;
    if (strlen(text) != len || keygen_parse_private(text, &key, err, sizeof err) < 0)
        rc = plan_fail(p, step, "%s exists but cannot be read as a private key",
                       real_path(r, HOST_KEY, shown));
    else
        rc = write_public_key(p, r, step, key);
    keygen_free_secret(text);
    ssh_key_free(key);
    return rc;
}

static int host_key_step(plan *p, runner *r)
{
    const char *step = "host key";
    char err[ERR_LEN];
    runner_stat key, pub;
    if (r->ops->stat_path(r, HOST_KEY, &key, err, sizeof err) < 0 ||
        r->ops->stat_path(r, HOST_KEY_PUB, &pub, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    if (key.exists && pub.exists) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    if (!p->dry_run) {
        int rc = key.exists ? rebuild_public_key(p, r, step) : mint_host_key(p, r, step);
        if (rc < 0)
            return -1;
    }
    plan_report(p, step, key.exists ? STEP_UPDATED : STEP_CREATED);
    return 0;
}

static int identity_steps(plan *p, runner *r)
{
    if (agent_id_step(p, r) < 0 || host_key_step(p, r) < 0)
        return -1;
    return plan_file_once(p, r, "authorized_keys", CONF_DIR "/authorized_keys", "", 0, 0600, 0, 0);
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

static int sessions_slice_step(plan *p, runner *r)
{
    const char *step = "convocate-sessions.slice";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned long long mem;
    if (ncpu < 1)
        return plan_fail(p, step, "cannot count this host's CPUs: %s", strerror(errno));
    if (host_mem_total_bytes(&mem) < 0)
        return plan_fail(p, step, "cannot read MemTotal from /proc/meminfo");
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
        return plan_fail(p, step, "out of memory");
    int rc = plan_file(p, r, step, "/etc/systemd/system/convocate-sessions.slice", unit,
                       (size_t)len, 0644, 0, 0);
    free(unit);
    return rc;
}

/* The convocate-agent package ships its own unit (provision/packaging.h);
 * then no copy goes to /etc/systemd/system, where it would shadow it. */
static int agent_unit_step(plan *p, runner *r)
{
    const char *step = "convocate-agent.service";
    int packaged = packaging_unit_step(p, r, step, AGENT_UNIT_HEADER);
    if (packaged != 0)
        return packaged < 0 ? -1 : 0;
    return plan_file(p, r, step, "/etc/systemd/system/convocate-agent.service", agent_unit,
                     sizeof agent_unit - 1, 0644, 0, 0);
}

static int service_steps(plan *p, runner *r)
{
    if (agent_unit_step(p, r) < 0 || sessions_slice_step(p, r) < 0)
        return -1;
    if (plan_file(p, r, "image prune cron", "/etc/cron.daily/convocate-image-prune", prune_script,
                  sizeof prune_script - 1, 0755, 0, 0) < 0)
        return -1;
    return plan_file(p, r, "logrotate", LOGROTATE_AGENT_LOGS, logrotate_agent_logs_conf(),
                     strlen(logrotate_agent_logs_conf()), 0644, 0, 0);
}

/* ---- session homes ------------------------------------------------------ */

static int session_home_steps(plan *p, runner *r, uid_t uid, gid_t gid)
{
    if (plan_dir(p, r, SESSION_HOMES "/", SESSION_HOMES, 0755, uid, gid) < 0 ||
        plan_dir(p, r, "skel", SESSION_HOMES "/.skel", 0755, uid, gid) < 0)
        return -1;
    return plan_file(p, r, "skel CLAUDE.md", SESSION_HOMES "/.skel/CLAUDE.md", skel_claude_md,
                     sizeof skel_claude_md - 1, 0644, uid, gid);
}

/* Session dirs already here (a reinstall, or a migrated host) are kept as
 * they are; the count tells the operator they were found. */
static int count_session_dirs(plan *p, runner *r, int *count)
{
    const char *step = "sessions";
    char home[PATH_BUF];
    *count = 0;
    if (runner_real_path(r, SESSION_HOMES, home, sizeof home) < 0)
        return plan_fail(p, step, "path %s under --root is too long", SESSION_HOMES);
    DIR *dir = opendir(home);
    if (dir == NULL)
        return errno == ENOENT ? 0 : plan_fail(p, step, "open %s: %s", home, strerror(errno));
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        if (e->d_type == DT_DIR && uuid_v4_is_valid(e->d_name))
            (*count)++;
    closedir(dir);
    return 0;
}

static int install_steps(plan *p, runner *r, const install_options *opt)
{
    uid_t uid = CLAUDE_UID_DEFAULT;
    gid_t gid = CLAUDE_GID_DEFAULT;
    if (opt->skip_docker_check)
        printf("  docker: not checked (--no-docker-check)\n");
    else if (check_docker(p, opt) < 0)
        return -1;
    if (runner_is_real_root(r) && claude_user_step(p, r, &uid, &gid) < 0)
        return -1;
    if (plan_dir(p, r, CONF_DIR "/", CONF_DIR, conf_dir_mode(r), 0, 0) < 0 ||
        identity_steps(p, r) < 0 || service_steps(p, r) < 0 ||
        session_home_steps(p, r, uid, gid) < 0 || home_mount_steps(p, r, SESSION_HOMES) < 0)
        return -1;
    int sessions = 0;
    if (count_session_dirs(p, r, &sessions) < 0)
        return -1;
    printf("  sessions: %d existing session dir%s adopted\n", sessions, sessions == 1 ? "" : "s");
    return 0;
}

int agent_install(const install_options *opt)
{
    plan p = {.program = PROGRAM, .dry_run = opt->dry_run};
    char err[ERR_LEN];
    runner *r = runner_local_under(paths_root(), err, sizeof err);
    if (r == NULL) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        return 1;
    }
    printf(PROGRAM "%s (root %s)\n", opt->dry_run ? " --dry-run" : "",
           runner_is_real_root(r) ? "/" : r->root);
    int rc = install_steps(&p, r, opt);
    if (rc == 0)
        plan_finish(&p);
    runner_free(r);
    return rc == 0 ? 0 : 1;
}
