/* convocate-host: provisioning of shell and agent hosts (SPEC 2, 11). A
 * target is a directory of this machine (--root, --agent-root) or another
 * host reached over SSH (--host): both are runners, so every step is
 * written once. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/paths.h"
#include "host/vm/create_vm.h"
#include "provision/deploy.h"
#include "provision/deploy_deb.h"
#include "provision/packaging.h"
#include "provision/image_transfer.h"
#include "host/init_agent.h"
#include "host/init_shell.h"
#include "host/install_host.h"
#include "host/migrate.h"
#include "provision/plan.h"
#include "provision/runner.h"
#include "host/update.h"
#include "version.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: convocate-host command [options]\n"
            "\n"
            "commands:\n"
            "  install    [--root DIR] [--host H [--user U]] [--role shell|agent|both]\n"
            "             [--no-reboot] [--dry-run]\n"
            "      prepare a fresh Ubuntu/Debian host: apt upgrade, docker and the other\n"
            "      packages, user claude 1337, timezone Etc/UTC, ufw openings; a remote\n"
            "      host is rebooted when the upgrade requires it (this host never is)\n"
            "  init-shell [--root DIR] [--host H [--user U] [--deb FILE]...] [--dry-run]\n"
            "      set up the shell side: with --host, first deploys convocate,\n"
            "      convocate-host and convocate-agent to /usr/local/bin (or installs the\n"
            "      --deb packages there) and runs 'convocate install' there; then status\n"
            "      host key, authorized keys, domain, dnsmasq hosts file and drop-in, log\n"
            "      CA and rsyslog TLS listener, logrotate, convocate-status.service, ufw\n"
            "      223 and 514 (when ufw is installed; not under --root DIR)\n"
            "  init-agent [--root DIR] (--agent-root DIR | --host H [--user U] [--image TAG]\n"
            "             [--deb FILE])\n"
            "             [--agent-addr ADDR[:PORT]] [--shell-host ADDR[:PORT]]\n"
            "             [--ca-cert PATH --ca-key PATH] [--repin] [--dry-run]\n"
            "      pair an agent with this shell (run it on the shell host): deploys\n"
            "      /usr/local/bin/convocate-agent (remote; or installs the --deb package),\n"
            "      runs 'convocate-agent install' on it when needed, mints the two key\n"
            "      pairs, pins both host keys, issues its log certificate and drops the\n"
            "      rsyslog forwarder; remote: then transfers the image TAG (default\n"
            "      convocate:" CONVOCATE_VERSION
            ", which must exist here) and stamps current-image\n"
            "  migrate-session [--root DIR] --agent ID --session UUID\n"
            "             [--agent-root DIR | --host H [--user U]] [--dry-run]\n"
            "      move an orphan session home from this host's /home/claude/<uuid>/ to\n"
            "      a registered agent; its files are under DIR, or reached over SSH on H\n"
            "      (default: the host of the agent's registered address)\n"
            "  update     [--root DIR] (--agent-root DIR | --host H [--user U] [--deb FILE])\n"
            "             [--image TAG] [--dry-run]\n"
            "      push this build's convocate-agent and the session image to an agent,\n"
            "      re-run its install, stamp current-image, restart it\n"
            "  create-vm  --hypervisor H[:PORT] --username U --domain D --cpu N --ram MB\n"
            "             --osdisk GB --datadisk GB --iso PATH_OR_URL --iso-sha256 HEX\n"
            "             [--iso-cache DIR] [--pubkey PATH] [--os-variant ID] [--root DIR]\n"
            "             [--no-reboot] [--dry-run]\n"
            "      make a KVM hypervisor of H (needs /dev/kvm there) and boot an Ubuntu VM\n"
            "      on it from the live-server ISO you name, installed unattended with user\n"
            "      U and your public key; see 'convocate-host create-vm --help'\n"
            "  version    print the version\n"
            "  help       print this text\n"
            "\n"
            "options:\n"
            "  --root DIR        the shell's files under DIR (env CONVOCATE_ROOT, default /)\n"
            "  --agent-root DIR  the agent's files under DIR of this machine\n"
            "  --agent-addr A    what the shell dials (default: kept, else 127.0.0.1:222)\n"
            "  --shell-host S    what the agent dials (default: kept, else 127.0.0.1)\n"
            "  --ca-cert PATH    with --ca-key: issue the agent's log certificate from this\n"
            "  --ca-key PATH     CA (files of this machine) instead of the shell's\n"
            "  --repin           accept a changed host key on either side\n"
            "  --image TAG       init-agent --host: the session image to transfer\n"
            "  --deb FILE        with --host: install this .deb of ours there (uploaded,\n"
            "                    SHA-256 checked, apt-get install) instead of the bare\n"
            "                    programs; init-shell takes several\n"
            "  --dry-run         print the plan, change nothing\n"
            "  -v, --verbose     log debug detail, stream remote command output\n"
            "\n"
            "remote targets (over SSH, as root there through passwordless sudo):\n"
            "  --host H[:PORT]   the target host     --port N      its SSH port (22)\n"
            "  --user U          login user (default $USER, else root)\n"
            "  --identity PATH   this key only (default: ssh-agent, ~/.ssh/id_ed25519,\n"
            "                    id_ecdsa, id_rsa)\n"
            "  --known-hosts P   known_hosts file (default ~/.ssh/known_hosts)\n"
            "  --accept-new-host-key  trust and record an unknown host key (a changed\n"
            "                    key is always refused)\n"
            "  --role R          install: shell, agent or both (default both): ufw ports\n"
            "                    22 plus 222 (agent), 223 and 514 (shell)\n"
            "  --no-reboot       install: never reboot, only say a reboot is required\n"
            "\n"
            "Every step prints created, updated or unchanged; a second run changes nothing.\n");
}

typedef struct {
    const char *root;
    const char *agent_root;
    bool dry_run;
    init_agent_options agent;
    remote_options remote; /* remote.host NULL: no --host */
    install_host_options install;
    migrate_options migrate;
    const char *deb_paths[DEB_FILES_MAX]; /* --deb, in order */
    size_t n_debs;
    deb_file debs[DEB_FILES_MAX]; /* read from deb_paths before any connection */
} host_options;

enum {
    OPT_ROOT = 256,
    OPT_AGENT_ROOT,
    OPT_AGENT_ADDR,
    OPT_SHELL_HOST,
    OPT_REPIN,
    OPT_DRY_RUN,
    OPT_HOST,
    OPT_ROLE,
    OPT_NO_REBOOT,
    OPT_CA_CERT,
    OPT_CA_KEY,
    OPT_AGENT,
    OPT_SESSION,
    OPT_IMAGE,
    OPT_DEB,
};

static const struct option long_opts[] = {
    {"root", required_argument, NULL, OPT_ROOT},
    {"agent-root", required_argument, NULL, OPT_AGENT_ROOT},
    {"agent-addr", required_argument, NULL, OPT_AGENT_ADDR},
    {"shell-host", required_argument, NULL, OPT_SHELL_HOST},
    {"repin", no_argument, NULL, OPT_REPIN},
    {"ca-cert", required_argument, NULL, OPT_CA_CERT},
    {"ca-key", required_argument, NULL, OPT_CA_KEY},
    {"image", required_argument, NULL, OPT_IMAGE},
    {"deb", required_argument, NULL, OPT_DEB},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"agent", required_argument, NULL, OPT_AGENT},
    {"session", required_argument, NULL, OPT_SESSION},
    {"host", required_argument, NULL, OPT_HOST},
    REMOTE_LONG_OPTIONS,
    {"role", required_argument, NULL, OPT_ROLE},
    {"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *cmd, const char *text)
{
    fprintf(stderr, "convocate-host %s: %s (see 'convocate-host help')\n", cmd, text);
    return EXIT_USAGE;
}

static int agent_option(const char *cmd, int c, host_options *o)
{
    bool migrating = strcmp(cmd, "migrate-session") == 0;
    if (c == OPT_AGENT_ROOT && migrating) {
        o->agent_root = optarg;
        return 0;
    }
    if (strcmp(cmd, "init-agent") != 0)
        return usage_error(cmd, "that option belongs to init-agent"), -1;
    if (c == OPT_AGENT_ROOT)
        o->agent_root = optarg;
    else if (c == OPT_AGENT_ADDR)
        o->agent.agent_addr = optarg;
    else if (c == OPT_SHELL_HOST)
        o->agent.shell_host = optarg;
    else if (c == OPT_CA_CERT)
        o->agent.ca_cert = optarg;
    else if (c == OPT_CA_KEY)
        o->agent.ca_key = optarg;
    else if (c == OPT_IMAGE)
        o->agent.image = optarg;
    else
        o->agent.repin = true;
    return 0;
}

static int install_option(const char *cmd, int c, host_options *o)
{
    if (strcmp(cmd, "install") != 0)
        return usage_error(cmd, "that option belongs to install"), -1;
    if (c == OPT_NO_REBOOT)
        o->install.no_reboot = true;
    else if (host_role_parse(optarg, &o->install.role) < 0)
        return usage_error(cmd, "--role is shell, agent or both"), -1;
    return 0;
}

static int migrate_option(const char *cmd, int c, host_options *o)
{
    if (strcmp(cmd, "migrate-session") != 0)
        return usage_error(cmd, "that option belongs to migrate-session"), -1;
    if (c == OPT_AGENT)
        o->migrate.agent_id = optarg;
    else
        o->migrate.uuid = optarg;
    return 0;
}

/* --deb FILE for init-shell (several) and init-agent (one). */
static int deb_option(const char *cmd, host_options *o)
{
    bool shell = strcmp(cmd, "init-shell") == 0;
    if (!shell && strcmp(cmd, "init-agent") != 0)
        return usage_error(cmd, "--deb belongs to init-shell, init-agent and update"), -1;
    if (o->n_debs == (shell ? DEB_FILES_MAX : 1))
        return usage_error(cmd, shell ? "at most 4 --deb files" : "one --deb file"), -1;
    o->deb_paths[o->n_debs++] = optarg;
    return 0;
}

/* Parses the options after the command; returns -1 (usage printed), 1 for
 * help, 0 to go on. Options that do not belong to cmd are refused. */
static int parse_options(const char *cmd, int argc, char **argv, host_options *o)
{
    int c;
    optind = 1;
    opterr = 0; /* usage_error names the program and the command */
    while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_ROOT:
            o->root = optarg;
            break;
        case OPT_DRY_RUN:
            o->dry_run = true;
            break;
        case 'v':
            break; /* read by main before the command */
        case 'h':
            return 1;
        case OPT_AGENT_ROOT:
        case OPT_AGENT_ADDR:
        case OPT_SHELL_HOST:
        case OPT_REPIN:
        case OPT_CA_CERT:
        case OPT_CA_KEY:
        case OPT_IMAGE:
            rc = agent_option(cmd, c, o);
            break;
        case OPT_HOST:
            o->remote.host = optarg;
            break;
        case OPT_DEB:
            rc = deb_option(cmd, o);
            break;
        case OPT_ROLE:
        case OPT_NO_REBOOT:
            rc = install_option(cmd, c, o);
            break;
        case OPT_AGENT:
        case OPT_SESSION:
            rc = migrate_option(cmd, c, o);
            break;
        default: {
            char err[128];
            rc = remote_option_apply(c, optarg, &o->remote, err, sizeof err);
            if (rc <= 0)
                return usage_error(cmd, rc < 0 ? err : "unknown option or missing value"), -1;
            rc = 0;
        }
        }
        if (rc < 0)
            return -1;
    }
    if (optind < argc) {
        usage_error(cmd, "unexpected argument");
        return -1;
    }
    if ((o->agent.ca_cert == NULL) != (o->agent.ca_key == NULL)) {
        usage_error(cmd, "--ca-cert and --ca-key go together");
        return -1;
    }
    return 0;
}

static const char *target_text(const runner *r)
{
    if (r->remote)
        return r->where;
    return runner_is_real_root(r) ? "/" : r->root;
}

static void print_header(const char *cmd, const host_options *o, const runner *shell,
                         const runner *agent)
{
    printf("convocate-host %s%s (shell %s%s", cmd, o->dry_run ? " --dry-run" : "",
           shell->remote ? "" : "root ", target_text(shell));
    if (agent != NULL)
        printf(", agent %s%s", agent->remote ? "" : "root ", target_text(agent));
    printf(")\n");
}

/* The target: --host over SSH, else --root (or root) on this machine. */
static runner *open_target(plan *p, const char *root, const host_options *o)
{
    char err[1024];
    runner *r = o->remote.host != NULL ? runner_remote_new(&o->remote, err, sizeof err)
                                       : runner_local_new(root, err, sizeof err);
    if (r == NULL)
        plan_fail(p, o->remote.host != NULL ? "--host" : "--root", "%s", err);
    return r;
}

static int run_init_agent(plan *p, host_options *o, runner *shell)
{
    char err[1024], agent_bin[PATH_MAX];
    runner *agent = NULL;
    if (o->remote.host != NULL) {
        /* The image is checked here before any connection or copy, as
         * update does. */
        if (image_check_local(p, o->agent.image) < 0)
            return -1;
        agent = runner_remote_new(&o->remote, err, sizeof err);
        snprintf(agent_bin, sizeof agent_bin, "%s", AGENT_BIN_PATH);
        if (agent == NULL)
            return plan_fail(p, "--host", "%s", err);
    } else if ((agent = runner_local_new(o->agent_root, err, sizeof err)) == NULL) {
        return plan_fail(p, "--agent-root", "%s", err);
    } else if (deploy_sibling("convocate-agent", agent_bin, sizeof agent_bin) < 0) {
        runner_free(agent);
        return plan_fail(p, "agent install",
                         "convocate-agent is not installed next to this program");
    }
    if (o->n_debs > 0)
        snprintf(agent_bin, sizeof agent_bin, "%s", PACKAGE_BIN_DIR "/convocate-agent");
    o->agent.agent_bin = agent_bin;
    print_header("init-agent", o, shell, agent);
    /* A remote agent gets this build's binary (or package) first (SPEC 11),
     * as update does. */
    int rc = !agent->remote ? 0
             : o->n_debs    ? deploy_debs_step(p, agent, o->debs, o->n_debs)
                            : deploy_binary_step(p, agent, "convocate-agent");
    if (rc == 0)
        rc = init_agent_steps(p, shell, agent, &o->agent);
    runner_free(agent);
    return rc;
}

static int run_init(const char *cmd, host_options *o)
{
    bool is_shell = strcmp(cmd, "init-shell") == 0;
    plan p = {.program = is_shell ? "convocate-host init-shell" : "convocate-host init-agent",
              .dry_run = o->dry_run};
    char err[512];
    /* The packages are read here, before any connection. */
    for (size_t i = 0; i < o->n_debs; i++)
        if (deb_inspect(&p, o->deb_paths[i], &o->debs[i]) < 0)
            return 1;
    const char *wanted = is_shell ? "convocate" : "convocate-agent";
    if (o->n_debs > 0 && !debs_include(o->debs, o->n_debs, wanted)) {
        plan_fail(&p, "--deb", "none of the files is the %s package", wanted);
        return 1;
    }
    /* init-agent's --host names the agent; its shell is always this machine. */
    runner *shell =
        is_shell ? open_target(&p, o->root, o) : runner_local_new(o->root, err, sizeof err);
    if (shell == NULL && !is_shell)
        plan_fail(&p, "--root", "%s", err);
    if (shell == NULL)
        return 1;
    int rc;
    if (is_shell) {
        print_header(cmd, o, shell, NULL);
        /* A remote shell host gets this build's programs and their install
         * first (SPEC 11); a --root directory of this machine does not. */
        rc = !shell->remote ? 0
             : o->n_debs    ? init_shell_package_steps(&p, shell, o->debs, o->n_debs)
                            : init_shell_program_steps(&p, shell);
        if (rc == 0)
            rc = init_shell_steps(&p, shell);
    } else {
        rc = run_init_agent(&p, o, shell);
    }
    if (rc == 0)
        plan_finish(&p);
    runner_free(shell);
    return rc == 0 ? 0 : 1;
}

static int run_install(host_options *o)
{
    plan p = {.program = "convocate-host install", .dry_run = o->dry_run};
    runner *r = open_target(&p, o->root, o);
    if (r == NULL)
        return 1;
    printf("convocate-host install%s (%s%s, role %s%s)\n", o->dry_run ? " --dry-run" : "",
           r->remote ? "" : "root ", target_text(r),
           o->install.role == HOST_ROLE_SHELL   ? "shell"
           : o->install.role == HOST_ROLE_AGENT ? "agent"
                                                : "both",
           o->install.no_reboot ? ", no reboot" : "");
    fflush(stdout);
    int rc = install_host_steps(&p, r, &o->install);
    if (rc == 0)
        plan_finish(&p);
    runner_free(r);
    return rc == 0 ? 0 : 1;
}

/* The source is always this machine's --root; the agent's files are a
 * directory here (--agent-root) or a host over SSH (--host). */
static int run_migrate(host_options *o)
{
    plan p = {.program = "convocate-host migrate-session", .dry_run = o->dry_run};
    const char *engine = getenv("DOCKER_HOST");
    o->migrate.docker_host = engine && *engine ? engine : "unix:///var/run/docker.sock";
    if (migrate_check_ids(&p, &o->migrate) < 0)
        return 1;
    if (paths_set_root(o->root) < 0)
        return plan_fail(&p, "--root", "%s is too long", o->root), 1;
    char err[1024], host[300];
    /* SPEC 11's plain form: the agent's files are on its registered host. */
    if (o->agent_root == NULL && o->remote.host == NULL) {
        if (migrate_default_host(&p, o->migrate.agent_id, host, sizeof host) < 0)
            return 1;
        o->remote.host = host;
    }
    runner *agent = o->remote.host != NULL ? runner_remote_new(&o->remote, err, sizeof err)
                                           : runner_local_new(o->agent_root, err, sizeof err);
    if (agent == NULL)
        return plan_fail(&p, o->remote.host ? "--host" : "--agent-root", "%s", err), 1;
    printf("convocate-host migrate-session%s (session %s, agent %s on %s%s)\n",
           o->dry_run ? " --dry-run" : "", o->migrate.uuid, o->migrate.agent_id,
           agent->remote ? "" : "root ", target_text(agent));
    fflush(stdout);
    int rc = migrate_session(&p, &o->migrate, agent);
    runner_free(agent);
    return rc == 0 ? 0 : 1;
}

/* init-agent's --host and --agent-root exclude each other; --image is for
 * --host only, since a local agent shares this machine's engine and its
 * image. 0, or -1 after a usage error. */
static int check_init_agent(host_options *o)
{
    const char *cmd = "init-agent";
    if ((o->agent_root == NULL) == (o->remote.host == NULL))
        return usage_error(cmd, "give exactly one of --agent-root DIR and --host H"), -1;
    if (o->agent_root != NULL && o->agent.image != NULL)
        return usage_error(cmd, "--image needs --host: an --agent-root agent shares this "
                                "machine's docker engine and its images"),
               -1;
    if (o->remote.host == NULL)
        return 0;
    if (o->agent.image == NULL)
        o->agent.image = "convocate:" CONVOCATE_VERSION;
    if (!image_tag_is_valid(o->agent.image))
        return usage_error(cmd, "--image needs a tag of [A-Za-z0-9._/:@-], at most 255 "
                                "characters"),
               -1;
    return 0;
}

static bool is_help(const char *s)
{
    return strcmp(s, "help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

int main(int argc, char **argv)
{
    bool verbose = false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0)
            verbose = true;
    log_init("convocate-host", verbose);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("convocate-host version %s\n", CONVOCATE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "update") == 0)
        return update_main(argc - 1, argv + 1, verbose);
    bool known = strcmp(cmd, "init-shell") == 0 || strcmp(cmd, "init-agent") == 0 ||
                 strcmp(cmd, "install") == 0 || strcmp(cmd, "migrate-session") == 0;
    if (strcmp(cmd, "create-vm") == 0)
        return create_vm_main(argc - 1, argv + 1, verbose);
    if (!known) {
        fprintf(stderr, "convocate-host: unknown command \"%s\" (try 'convocate-host help')\n",
                cmd);
        return EXIT_USAGE;
    }
    host_options o = {.root = getenv("CONVOCATE_ROOT"),
                      .remote = {.verbose = verbose},
                      .install = {.role = HOST_ROLE_BOTH}};
    int parsed = parse_options(cmd, argc - 1, argv + 1, &o);
    if (parsed != 0) {
        if (parsed > 0)
            usage(stdout);
        return parsed > 0 ? 0 : EXIT_USAGE;
    }
    bool migrating = strcmp(cmd, "migrate-session") == 0;
    if (o.remote.host == NULL && !(migrating && o.agent_root == NULL) &&
        remote_options_given(&o.remote))
        return usage_error(cmd, "--user, --port, --identity, --known-hosts and "
                                "--accept-new-host-key need --host");
    if (o.n_debs > 0 && o.remote.host == NULL)
        return usage_error(cmd, "--deb needs --host: a package is installed on a host, not "
                                "under a directory");
    if (strcmp(cmd, "install") == 0)
        return run_install(&o);
    if (migrating && o.agent_root != NULL && o.remote.host != NULL)
        return usage_error(cmd, "give at most one of --agent-root DIR and --host H");
    if (migrating)
        return run_migrate(&o);
    if (strcmp(cmd, "init-agent") == 0)
        return check_init_agent(&o) < 0 ? EXIT_USAGE : run_init(cmd, &o);
    return run_init(cmd, &o);
}
