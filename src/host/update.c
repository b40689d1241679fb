/* `convocate-host update`. The order matters: the binary first (the
 * install that follows is the new one's), then the install (units), then
 * the image, and current-image only once the image is verified and loaded,
 * so an agent never names a tag its engine lacks. A restart comes last and
 * only when something changed. Running sessions are left alone: each keeps
 * the tag it was started with until it is restarted (SPEC 10). */
#include "host/update.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/digest.h"
#include "host/image_transfer.h"
#include "host/init_agent.h"
#include "host/service.h"
#include "version.h"

#define EXIT_USAGE 2
#define INSTALL_OUTPUT_MAX 65536
#define CURRENT_IMAGE AGENT_CONF_DIR "/current-image"

int update_sibling_agent(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    if (snprintf(out, size, "%s/convocate-agent", exe) >= (int)size)
        return -1;
    return access(out, X_OK) == 0 ? 0 : -1;
}

/* ---- the agent binary ---------------------------------------------------- */

static int binary_outcome(plan *p, runner *r, const char *want, step_outcome *outcome)
{
    char err[1024], have[SHA256_HEX_LEN + 1];
    runner_stat st;
    if (r->ops->stat_path(r, AGENT_BIN_PATH, &st, err, sizeof err) < 0)
        return plan_fail(p, AGENT_BIN_PATH, "%s", err);
    if (!st.exists) {
        *outcome = STEP_CREATED;
        return 0;
    }
    if (!st.is_reg)
        return plan_fail(p, AGENT_BIN_PATH, "exists on %s and is not a regular file; move it away",
                         r->where);
    if (st.mode != 0755 || (r->can_chown && (st.uid != 0 || st.gid != 0))) {
        *outcome = STEP_UPDATED;
        return 0;
    }
    if (digest_target_file(r, AGENT_BIN_PATH, have, err, sizeof err) < 0)
        return plan_fail(p, AGENT_BIN_PATH, "%s", err);
    *outcome = strcmp(have, want) == 0 ? STEP_UNCHANGED : STEP_UPDATED;
    return 0;
}

int update_agent_binary_step(plan *p, runner *r)
{
    char src[PATH_MAX], err[1024], want[SHA256_HEX_LEN + 1], got[SHA256_HEX_LEN + 1];
    if (update_sibling_agent(src, sizeof src) < 0)
        return plan_fail(p, AGENT_BIN_PATH,
                         "convocate-agent is not installed next to this program");
    if (digest_local_file(src, want, err, sizeof err) < 0)
        return plan_fail(p, AGENT_BIN_PATH, "%s", err);
    step_outcome outcome;
    if (binary_outcome(p, r, want, &outcome) < 0)
        return -1;
    if (outcome != STEP_UNCHANGED && !p->dry_run) {
        if (r->ops->upload(r, src, AGENT_BIN_PATH, 0755, 0, 0, NULL, err, sizeof err) < 0)
            return plan_fail(p, AGENT_BIN_PATH, "%s", err);
        /* The size was checked before the rename; the digest proves the
         * bytes, which is what "unchanged" on the next run relies on. */
        if (digest_target_file(r, AGENT_BIN_PATH, got, err, sizeof err) < 0)
            return plan_fail(p, AGENT_BIN_PATH, "%s", err);
        if (strcmp(got, want) != 0)
            return plan_fail(p, AGENT_BIN_PATH, "SHA-256 on %s is %s, expected %s", r->where, got,
                             want);
    }
    plan_report(p, AGENT_BIN_PATH, outcome);
    return 0;
}

/* ---- convocate-agent install on the target ------------------------------ */

/* Its lines, indented under our step; its verdict is its last line. */
static step_outcome echo_install(const char *out)
{
    const char *last = "";
    for (const char *line = out; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        if (n > 0) {
            printf("    %.*s\n", (int)n, line);
            last = line;
        }
        line += n + (line[n] == '\n');
    }
    fflush(stdout);
    return strncmp(last, "nothing changed", 15) == 0 ? STEP_UNCHANGED : STEP_UPDATED;
}

/* Runs the deployed binary's install there; *outcome says whether it
 * changed (or on a dry run would change) anything, units included. */
static int install_step(plan *p, runner *r, step_outcome *outcome)
{
    const char *step = "agent install";
    char bin[PATH_BUF], err[1024];
    runner_stat st;
    *outcome = STEP_UNCHANGED;
    if (runner_real_path(r, AGENT_BIN_PATH, bin, sizeof bin) < 0)
        return plan_fail(p, step, "the root path is too long");
    if (r->ops->stat_path(r, AGENT_BIN_PATH, &st, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    if (p->dry_run && !st.exists) {
        printf("  %s: would run %s install once the binary is there\n", step, bin);
        return 0;
    }
    char *argv[] = {
        bin, "install", "--root", r->root[0] ? r->root : "/", p->dry_run ? "--dry-run" : NULL,
        NULL};
    char *out = NULL;
    int status = r->ops->run(r, argv, &out, INSTALL_OUTPUT_MAX, err, sizeof err);
    if (status != 0) {
        if (out != NULL)
            echo_install(out);
        free(out);
        return plan_fail(p, step, "%s install on %s failed (exit %d)%s%s", bin, r->where, status,
                         status < 0 ? ": " : "", status < 0 ? err : "");
    }
    *outcome = echo_install(out != NULL ? out : "");
    free(out);
    plan_report(p, step, *outcome);
    return 0;
}

/* ---- restart ------------------------------------------------------------ */

/* Only when something changed; without systemd, one line on how to do it. */
static int restart_step(plan *p, runner *r, bool units_changed)
{
    if (p->changes == 0) {
        printf("  convocate-agent: restart not needed\n");
        return 0;
    }
    return service_step(p, r, "convocate-agent", units_changed, true, "convocate-agent serve");
}

/* ---- the command -------------------------------------------------------- */

typedef struct {
    const char *agent_root;
    const char *image;
    bool dry_run;
    remote_options remote;
} update_options;

static int update_steps(plan *p, runner *r, const char *tag)
{
    char stamp[IMAGE_TAG_MAX + 2];
    step_outcome installed;
    int before;
    if (update_agent_binary_step(p, r) < 0 || install_step(p, r, &installed) < 0)
        return -1;
    before = p->changes;
    if (image_transfer_step(p, r, tag) < 0)
        return -1;
    int n = snprintf(stamp, sizeof stamp, "%s\n", tag);
    /* On a dry run whose image would move, the stamp waits for it too. */
    if (p->dry_run && p->changes != before)
        printf("  %s: would be stamped %s after the load\n", CURRENT_IMAGE, tag);
    else if (plan_file(p, r, CURRENT_IMAGE, CURRENT_IMAGE, stamp, (size_t)n, 0644, 0, 0) < 0)
        return -1;
    return restart_step(p, r, installed != STEP_UNCHANGED);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: convocate-host update [--root DIR] (--host H [--user U] | --agent-root "
                 "DIR)\n"
                 "                             [--image TAG] [--dry-run] [-v]\n"
                 "  deploys this build's convocate-agent to /usr/local/bin, re-runs its install,\n"
                 "  transfers the image (default convocate:" CONVOCATE_VERSION
                 "), stamps current-image\n"
                 "  and restarts the agent when systemd runs there. Remote options as for\n"
                 "  init-agent: --port, --identity, --known-hosts, --accept-new-host-key.\n");
}

enum {
    U_ROOT = 256,
    U_AGENT_ROOT,
    U_IMAGE,
    U_DRY_RUN,
    U_HOST,
    U_PORT,
    U_USER,
    U_IDENTITY,
    U_KNOWN_HOSTS,
    U_ACCEPT_NEW
};

static const struct option update_opts[] = {
    {"root", required_argument, NULL, U_ROOT},
    {"agent-root", required_argument, NULL, U_AGENT_ROOT},
    {"image", required_argument, NULL, U_IMAGE},
    {"dry-run", no_argument, NULL, U_DRY_RUN},
    {"host", required_argument, NULL, U_HOST},
    {"port", required_argument, NULL, U_PORT},
    {"user", required_argument, NULL, U_USER},
    {"identity", required_argument, NULL, U_IDENTITY},
    {"known-hosts", required_argument, NULL, U_KNOWN_HOSTS},
    {"accept-new-host-key", no_argument, NULL, U_ACCEPT_NEW},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *text)
{
    fprintf(stderr, "convocate-host update: %s (see 'convocate-host update --help')\n", text);
    return EXIT_USAGE;
}

static int parse_port(const char *s, int *port)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* 0 to go on, 1 for help, -1 after a usage error. */
static int parse(int argc, char **argv, update_options *o)
{
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vh", update_opts, NULL)) != -1) {
        switch (c) {
        case U_ROOT: /* the shell's files: update touches none of them */
        case 'v':    /* read by main */
            break;
        case U_AGENT_ROOT:
            o->agent_root = optarg;
            break;
        case U_IMAGE:
            o->image = optarg;
            break;
        case U_DRY_RUN:
            o->dry_run = true;
            break;
        case U_HOST:
            o->remote.host = optarg;
            break;
        case U_PORT:
            if (parse_port(optarg, &o->remote.port) < 0)
                return usage_error("--port needs a number from 1 to 65535"), -1;
            break;
        case U_USER:
            o->remote.user = optarg;
            break;
        case U_IDENTITY:
            o->remote.identity = optarg;
            break;
        case U_KNOWN_HOSTS:
            o->remote.known_hosts = optarg;
            break;
        case U_ACCEPT_NEW:
            o->remote.accept_new_host_key = true;
            break;
        case 'h':
            return 1;
        default:
            return usage_error("unknown option or missing value"), -1;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument"), -1;
    if ((o->agent_root == NULL) == (o->remote.host == NULL))
        return usage_error("give exactly one of --agent-root DIR and --host H"), -1;
    if (o->remote.host == NULL && (o->remote.user || o->remote.port || o->remote.identity ||
                                   o->remote.known_hosts || o->remote.accept_new_host_key))
        return usage_error("--user, --port, --identity, --known-hosts and "
                           "--accept-new-host-key need --host"),
               -1;
    if (!image_tag_is_valid(o->image))
        return usage_error("--image needs a tag of [A-Za-z0-9._/:@-], at most 255 characters"), -1;
    return 0;
}

int update_main(int argc, char **argv, bool verbose)
{
    update_options o = {.image = "convocate:" CONVOCATE_VERSION, .remote = {.verbose = verbose}};
    int parsed = parse(argc, argv, &o);
    if (parsed != 0) {
        if (parsed > 0)
            usage(stdout);
        return parsed > 0 ? 0 : EXIT_USAGE;
    }
    plan p = {.program = "convocate-host update", .dry_run = o.dry_run};
    char path[PATH_MAX], err[1024];
    /* Both refusals come before any connection or copy. */
    if (update_sibling_agent(path, sizeof path) < 0) {
        plan_fail(&p, AGENT_BIN_PATH, "convocate-agent is not installed next to this program");
        return 1;
    }
    if (image_check_local(&p, o.image) < 0)
        return 1;
    runner *r = o.remote.host != NULL ? runner_remote_new(&o.remote, err, sizeof err)
                                      : runner_local_new(o.agent_root, err, sizeof err);
    if (r == NULL) {
        plan_fail(&p, o.remote.host != NULL ? "--host" : "--agent-root", "%s", err);
        return 1;
    }
    printf("convocate-host update%s (agent %s%s, image %s)\n", o.dry_run ? " --dry-run" : "",
           r->remote ? "" : "root ", r->remote ? r->where : (r->root[0] ? r->root : "/"), o.image);
    fflush(stdout);
    int rc = update_steps(&p, r, o.image);
    if (rc == 0)
        plan_finish(&p);
    runner_free(r);
    return rc == 0 ? 0 : 1;
}
