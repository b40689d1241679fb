/* convocate-host: provisioning of shell and agent hosts (SPEC 2, 11). Today
 * targets are directories of this machine (--root, --agent-root); remote
 * targets over SSH arrive as another runner. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "host/init_agent.h"
#include "host/init_shell.h"
#include "host/plan.h"
#include "host/runner.h"
#include "version.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: convocate-host command [options]\n"
            "\n"
            "commands:\n"
            "  init-shell [--root DIR] [--dry-run]\n"
            "      set up the shell side: status host key, authorized keys, domain,\n"
            "      dnsmasq hosts file and drop-in, log CA and rsyslog TLS listener,\n"
            "      logrotate, convocate-status.service\n"
            "  init-agent [--root DIR] --agent-root DIR [--agent-addr ADDR[:PORT]]\n"
            "             [--shell-host ADDR[:PORT]] [--ca-cert PATH --ca-key PATH]\n"
            "             [--repin] [--dry-run]\n"
            "      pair an agent with this shell: runs 'convocate-agent install' on it when\n"
            "      needed, mints the two key pairs, pins both host keys, issues its log\n"
            "      certificate and drops the rsyslog forwarder\n"
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
            "  --dry-run         print the plan, change nothing\n"
            "  -v, --verbose     log debug detail\n"
            "\n"
            "Every step prints created, updated or unchanged; a second run changes nothing.\n");
}

typedef struct {
    const char *root;
    const char *agent_root;
    bool dry_run;
    init_agent_options agent;
} host_options;

enum {
    OPT_ROOT = 256,
    OPT_AGENT_ROOT,
    OPT_AGENT_ADDR,
    OPT_SHELL_HOST,
    OPT_REPIN,
    OPT_DRY_RUN,
    OPT_CA_CERT,
    OPT_CA_KEY
};

static const struct option long_opts[] = {
    {"root", required_argument, NULL, OPT_ROOT},
    {"agent-root", required_argument, NULL, OPT_AGENT_ROOT},
    {"agent-addr", required_argument, NULL, OPT_AGENT_ADDR},
    {"shell-host", required_argument, NULL, OPT_SHELL_HOST},
    {"repin", no_argument, NULL, OPT_REPIN},
    {"ca-cert", required_argument, NULL, OPT_CA_CERT},
    {"ca-key", required_argument, NULL, OPT_CA_KEY},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *cmd, const char *text)
{
    fprintf(stderr, "convocate-host %s: %s (see 'convocate-host help')\n", cmd, text);
    return EXIT_USAGE;
}

/* Parses the options after the command; returns -1 (usage printed), 1 for
 * help, 0 to go on. Options that do not belong to cmd are refused. */
static int parse_options(const char *cmd, int argc, char **argv, host_options *o)
{
    bool agent_cmd = strcmp(cmd, "init-agent") == 0;
    int c;
    optind = 1;
    opterr = 0; /* usage_error names the program and the command */
    while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
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
            if (!agent_cmd) {
                usage_error(cmd, "that option belongs to init-agent");
                return -1;
            }
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
            else
                o->agent.repin = true;
            break;
        default:
            usage_error(cmd, "unknown option or missing value");
            return -1;
        }
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

/* convocate-agent lives next to convocate-host (build tree and install). */
static int sibling_agent_binary(char *out, size_t size)
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

static void print_header(const char *cmd, const host_options *o, const runner *shell,
                         const runner *agent)
{
    printf("convocate-host %s%s (shell root %s", cmd, o->dry_run ? " --dry-run" : "",
           runner_is_real_root(shell) ? "/" : shell->root);
    if (agent != NULL)
        printf(", agent root %s", runner_is_real_root(agent) ? "/" : agent->root);
    printf(")\n");
}

static int run_init(const char *cmd, host_options *o)
{
    char err[512], agent_bin[PATH_MAX];
    plan p = {.program = strcmp(cmd, "init-shell") == 0 ? "convocate-host init-shell"
                                                        : "convocate-host init-agent",
              .dry_run = o->dry_run};
    runner *shell = runner_local_new(o->root, err, sizeof err), *agent = NULL;
    if (shell == NULL)
        return plan_fail(&p, "--root", "%s", err), 1;
    int rc = -1;
    if (strcmp(cmd, "init-shell") == 0) {
        print_header(cmd, o, shell, NULL);
        rc = init_shell_steps(&p, shell);
    } else if ((agent = runner_local_new(o->agent_root, err, sizeof err)) == NULL) {
        plan_fail(&p, "--agent-root", "%s", err);
    } else if (sibling_agent_binary(agent_bin, sizeof agent_bin) < 0) {
        plan_fail(&p, "agent install", "convocate-agent is not installed next to this program");
    } else {
        o->agent.agent_bin = agent_bin;
        print_header(cmd, o, shell, agent);
        rc = init_agent_steps(&p, shell, agent, &o->agent);
    }
    if (rc == 0)
        plan_finish(&p);
    runner_free(agent);
    runner_free(shell);
    return rc == 0 ? 0 : 1;
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
    if (strcmp(cmd, "init-shell") != 0 && strcmp(cmd, "init-agent") != 0) {
        static const char *const later[] = {"install", "update", "migrate-session", "create-vm"};
        for (size_t i = 0; i < sizeof later / sizeof later[0]; i++)
            if (strcmp(cmd, later[i]) == 0) {
                fprintf(stderr, "convocate-host: %s is not available yet in this version\n", cmd);
                return 1;
            }
        fprintf(stderr, "convocate-host: unknown command \"%s\" (try 'convocate-host help')\n",
                cmd);
        return EXIT_USAGE;
    }
    host_options o = {.root = getenv("CONVOCATE_ROOT")};
    int parsed = parse_options(cmd, argc - 1, argv + 1, &o);
    if (parsed != 0) {
        if (parsed > 0)
            usage(stdout);
        return parsed > 0 ? 0 : EXIT_USAGE;
    }
    if (strcmp(cmd, "init-agent") == 0 && o.agent_root == NULL)
        return usage_error(cmd, "--agent-root DIR is required (remote --host comes later)");
    return run_init(cmd, &o);
}
