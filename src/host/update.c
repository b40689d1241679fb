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

#include "common/layout.h"
#include "provision/deploy.h"
#include "provision/deploy_deb.h"
#include "provision/packaging.h"
#include "provision/image_transfer.h"
#include "host/init_agent.h"
#include "provision/service.h"
#include "version.h"

#define EXIT_USAGE 2

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
    const char *deb_path; /* --deb: the convocate-agent package instead of the binary */
    deb_file deb;
} update_options;

int update_image_steps(plan *p, runner *r, const char *tag)
{
    char stamp[IMAGE_TAG_MAX + 2];
    int before = p->changes;
    if (image_transfer_step(p, r, tag) < 0)
        return -1;
    int n = snprintf(stamp, sizeof stamp, "%s\n", tag);
    /* On a dry run whose image would move, the stamp waits for it too. */
    if (p->dry_run && p->changes != before) {
        printf("  %s: would be stamped %s after the load\n", AGENT_CURRENT_IMAGE, tag);
        return 0;
    }
    return plan_file(p, r, AGENT_CURRENT_IMAGE, AGENT_CURRENT_IMAGE, stamp, (size_t)n, 0644, 0, 0);
}

static int update_steps(plan *p, runner *r, const char *tag, const update_options *o)
{
    step_outcome installed;
    int deployed = o->deb_path ? deploy_debs_step(p, r, &o->deb, 1)
                               : deploy_binary_step(p, r, "convocate-agent");
    const char *bin = o->deb_path ? PACKAGE_BIN_DIR "/convocate-agent" : AGENT_BIN_PATH;
    if (deployed < 0 || deploy_install_step(p, r, "agent install", bin, &installed) < 0 ||
        update_image_steps(p, r, tag) < 0)
        return -1;
    return restart_step(p, r, installed != STEP_UNCHANGED);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: convocate-host update [--root DIR] (--host H [--user U] [--deb FILE] |\n"
                 "                             --agent-root DIR) [--image TAG] [--dry-run] [-v]\n"
                 "  deploys this build's convocate-agent to /usr/local/bin (or installs the\n"
                 "  --deb package there: uploaded, SHA-256 checked, apt-get install), re-runs\n"
                 "  its install, transfers the image (default convocate:" CONVOCATE_VERSION "),\n"
                 "  stamps current-image and restarts the agent when systemd runs there.\n"
                 "  Remote options as for init-agent: --port, --identity, --known-hosts,\n"
                 "  --accept-new-host-key.\n");
}

enum {
    U_ROOT = 256,
    U_AGENT_ROOT,
    U_IMAGE,
    U_DRY_RUN,
    U_HOST,
    U_DEB,
};

static const struct option update_opts[] = {
    {"root", required_argument, NULL, U_ROOT},
    {"agent-root", required_argument, NULL, U_AGENT_ROOT},
    {"image", required_argument, NULL, U_IMAGE},
    {"dry-run", no_argument, NULL, U_DRY_RUN},
    {"host", required_argument, NULL, U_HOST},
    {"deb", required_argument, NULL, U_DEB},
    REMOTE_LONG_OPTIONS,
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *text)
{
    fprintf(stderr, "convocate-host update: %s (see 'convocate-host update --help')\n", text);
    return EXIT_USAGE;
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
        case U_DEB:
            if (o->deb_path != NULL)
                return usage_error("one --deb file"), -1;
            o->deb_path = optarg;
            break;
        case 'h':
            return 1;
        default: {
            char err[128];
            int rc = remote_option_apply(c, optarg, &o->remote, err, sizeof err);
            if (rc <= 0)
                return usage_error(rc < 0 ? err : "unknown option or missing value"), -1;
        }
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument"), -1;
    if ((o->agent_root == NULL) == (o->remote.host == NULL))
        return usage_error("give exactly one of --agent-root DIR and --host H"), -1;
    if (o->remote.host == NULL && remote_options_given(&o->remote))
        return usage_error("--user, --port, --identity, --known-hosts and "
                           "--accept-new-host-key need --host"),
               -1;
    if (o->deb_path != NULL && o->remote.host == NULL)
        return usage_error("--deb needs --host"), -1;
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
    /* Every refusal comes before any connection or copy. */
    if (o.deb_path != NULL) {
        if (deb_inspect(&p, o.deb_path, &o.deb) < 0)
            return 1;
        if (strcmp(o.deb.package, "convocate-agent") != 0) {
            plan_fail(&p, "--deb", "%s is the %s package, not convocate-agent", o.deb_path,
                      o.deb.package);
            return 1;
        }
    } else if (deploy_sibling("convocate-agent", path, sizeof path) < 0) {
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
    int rc = update_steps(&p, r, o.image, &o);
    if (rc == 0)
        plan_finish(&p);
    runner_free(r);
    return rc == 0 ? 0 : 1;
}
