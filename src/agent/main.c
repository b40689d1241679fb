/* convocate-agent: the agent host's program (SPEC 2). */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/install.h"
#include "agent/serve.h"
#include "common/log.h"
#include "common/paths.h"
#include "version.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: convocate-agent <command> [options]\n"
            "\n"
            "commands:\n"
            "  serve     run the agent: the SSH listener for the shell's RPC and attach\n"
            "  install   prepare this host as an agent host (idempotent)\n"
            "  version   print the version\n"
            "  help      print this text\n"
            "\n"
            "serve options:\n"
            "  --listen ADDR:PORT        listen address (default 0.0.0.0:222)\n"
            "  --host-key PATH           ed25519 host key (default "
            "/etc/convocate-agent/ssh_host_ed25519_key)\n"
            "  --auth-keys PATH          keys allowed to connect (default "
            "/etc/convocate-agent/authorized_keys)\n"
            "  --shell-host HOST[:PORT]  shell host for status events (default from "
            "/etc/convocate-agent/shell-host)\n"
            "  --shell-port PORT         shell status port when HOST names none (default 223)\n"
            "  --shell-key PATH          client key for the shell (default "
            "/etc/convocate-agent/agent_to_shell_ed25519_key)\n"
            "  --shell-known-host PATH   pinned shell host key (default "
            "/etc/convocate-agent/shell_host_key.pub)\n"
            "  --events-log FILE         also append every status event to FILE as a JSON line\n"
            "  --test-hooks              enable the test-only op test-emit (tests, benchmarks)\n"
            "\n"
            "install options:\n"
            "  --dry-run                 print the plan, change nothing\n"
            "  --no-docker-check         do not require a reachable engine (package scripts)\n"
            "\n"
            "common options:\n"
            "  --root DIR                take every host path under DIR (env CONVOCATE_ROOT, "
            "default /)\n"
            "  --docker-host URL         engine socket (env DOCKER_HOST, default "
            "unix:///var/run/docker.sock)\n"
            "  -v, --verbose             log debug detail\n"
            "  -h, --help                print this text\n");
}

enum {
    OPT_ROOT = 256,
    OPT_LISTEN,
    OPT_HOST_KEY,
    OPT_AUTH_KEYS,
    OPT_DOCKER_HOST,
    OPT_SHELL_HOST,
    OPT_SHELL_PORT,
    OPT_SHELL_KEY,
    OPT_SHELL_KNOWN_HOST,
    OPT_EVENTS_LOG,
    OPT_TEST_HOOKS,
    OPT_DRY_RUN,
    OPT_NO_DOCKER_CHECK,
};

static const struct option long_options[] = {
    {"root", required_argument, NULL, OPT_ROOT},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"host-key", required_argument, NULL, OPT_HOST_KEY},
    {"auth-keys", required_argument, NULL, OPT_AUTH_KEYS},
    {"docker-host", required_argument, NULL, OPT_DOCKER_HOST},
    {"shell-host", required_argument, NULL, OPT_SHELL_HOST},
    {"shell-port", required_argument, NULL, OPT_SHELL_PORT},
    {"shell-key", required_argument, NULL, OPT_SHELL_KEY},
    {"shell-known-host", required_argument, NULL, OPT_SHELL_KNOWN_HOST},
    {"events-log", required_argument, NULL, OPT_EVENTS_LOG},
    {"test-hooks", no_argument, NULL, OPT_TEST_HOOKS},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"no-docker-check", no_argument, NULL, OPT_NO_DOCKER_CHECK},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_port(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 1 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

/* "ADDR:PORT", "[v6]:PORT" or ":PORT". */
static int parse_listen(const char *s, agent_config *cfg)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || parse_port(colon + 1, &cfg->listen_port) < 0)
        return -1;
    size_t len = (size_t)(colon - s);
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0) {
        snprintf(cfg->listen_addr, sizeof cfg->listen_addr, "0.0.0.0");
        return 0;
    }
    if (len >= sizeof cfg->listen_addr)
        return -1;
    memcpy(cfg->listen_addr, s, len);
    cfg->listen_addr[len] = '\0';
    return 0;
}

static int copy_opt(char *dst, size_t size, const char *value, const char *name)
{
    if (snprintf(dst, size, "%s", value) >= (int)size) {
        fprintf(stderr, "convocate-agent: %s is too long\n", name);
        return -1;
    }
    return 0;
}

/* Fills the defaults that depend on --root once it is known. */
static void default_path(char *dst, size_t size, const char *rel)
{
    if (dst[0] == '\0' && root_path(dst, size, "%s", rel) < 0)
        dst[0] = '\0';
}

/* What the options say besides the agent's configuration. */
typedef struct {
    const char *root;
    const char *docker_host;
    bool verbose;
    bool dry_run;
    bool no_docker_check;
} run_options;

enum { OPT_APPLIED, OPT_HELP_SHOWN, OPT_BAD };

static int copied(char *dst, size_t size, const char *value, const char *name)
{
    return copy_opt(dst, size, value, name) < 0 ? OPT_BAD : OPT_APPLIED;
}

static int bad_value(const char *what, const char *value)
{
    fprintf(stderr, "convocate-agent: %s, got \"%s\"\n", what, value);
    return OPT_BAD;
}

/* One option from getopt_long into cfg or o. */
static int apply_option(int c, const char *arg, agent_config *cfg, run_options *o)
{
    switch (c) {
    case OPT_ROOT:
        o->root = arg;
        return OPT_APPLIED;
    case OPT_LISTEN:
        return parse_listen(arg, cfg) < 0 ? bad_value("--listen wants ADDR:PORT", arg)
                                          : OPT_APPLIED;
    case OPT_HOST_KEY:
        return copied(cfg->host_key, sizeof cfg->host_key, arg, "--host-key");
    case OPT_AUTH_KEYS:
        return copied(cfg->auth_keys, sizeof cfg->auth_keys, arg, "--auth-keys");
    case OPT_DOCKER_HOST:
        o->docker_host = arg;
        return OPT_APPLIED;
    case OPT_SHELL_HOST:
        return copied(cfg->shell_host, sizeof cfg->shell_host, arg, "--shell-host");
    case OPT_SHELL_PORT:
        return parse_port(arg, &cfg->shell_port) < 0 ? bad_value("--shell-port wants 1..65535", arg)
                                                     : OPT_APPLIED;
    case OPT_SHELL_KEY:
        return copied(cfg->shell_key, sizeof cfg->shell_key, arg, "--shell-key");
    case OPT_SHELL_KNOWN_HOST:
        return copied(cfg->shell_known_host, sizeof cfg->shell_known_host, arg,
                      "--shell-known-host");
    case OPT_EVENTS_LOG:
        return copied(cfg->events_log, sizeof cfg->events_log, arg, "--events-log");
    case OPT_TEST_HOOKS:
        cfg->test_hooks = true;
        return OPT_APPLIED;
    case OPT_DRY_RUN:
        o->dry_run = true;
        return OPT_APPLIED;
    case OPT_NO_DOCKER_CHECK:
        o->no_docker_check = true;
        return OPT_APPLIED;
    case 'v':
        o->verbose = true;
        return OPT_APPLIED;
    case 'h':
        usage(stdout);
        return OPT_HELP_SHOWN;
    default:
        fprintf(stderr, "convocate-agent: see 'convocate-agent help' for the options\n");
        return OPT_BAD;
    }
}

static void config_init(agent_config *cfg, run_options *o)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen_addr, sizeof cfg->listen_addr, "0.0.0.0");
    cfg->listen_port = 222;
    cfg->shell_port = 223;
    cfg->claude_uid = CLAUDE_UID_DEFAULT;
    cfg->claude_gid = CLAUDE_GID_DEFAULT;
    *o = (run_options){.root = getenv("CONVOCATE_ROOT"), .docker_host = getenv("DOCKER_HOST")};
}

/* Reads the options after the command; -1 when they are all applied, else
 * the exit code (0 after --help). */
static int parse_options(int argc, char **argv, agent_config *cfg, run_options *o)
{
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "vh", long_options, NULL)) != -1) {
        int rc = apply_option(c, optarg, cfg, o);
        if (rc != OPT_APPLIED)
            return rc == OPT_HELP_SHOWN ? 0 : EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "convocate-agent: unexpected argument \"%s\"\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (paths_set_root(o->root) < 0) {
        fprintf(stderr, "convocate-agent: --root path is too long\n");
        return EXIT_USAGE;
    }
    const char *docker_host =
        o->docker_host && *o->docker_host ? o->docker_host : "unix:///var/run/docker.sock";
    if (copy_opt(cfg->docker_host, sizeof cfg->docker_host, docker_host, "--docker-host") < 0)
        return EXIT_USAGE;
    return -1;
}

/* help, version and unknown commands: the exit code; -1 for serve and install. */
static int simple_command(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("convocate-agent version %s\n", CONVOCATE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "install") != 0) {
        fprintf(stderr, "convocate-agent: unknown command \"%s\" (try 'convocate-agent help')\n",
                cmd);
        return EXIT_USAGE;
    }
    return -1;
}

/* glibc gives threads up to 8 malloc arenas per core. The agent's threads
 * come and go (a thread per SSH connection, pooled RPC workers that grow
 * in bursts, the relays of attaches), and each new one may land on a new
 * arena that then keeps its own free chunks and dirty top: make soak saw
 * 11-12 arenas holding 1.1-1.35 MB and one more arena appear under load.
 * Each arena fragments on its own, so one is best: 30 minutes of make
 * soak side by side grew RSS +0.94 % with one arena and +1.98 % with two
 * (10 minutes: +0.92 % and +1.32 %). The threads mostly wait on sockets
 * and the engine, so malloc's one lock is rarely contended (two arenas
 * against a dozen changed neither ping nor create/list/delete in an A/B;
 * one against two: docs/decisions.md, "One malloc arena"). */
#define AGENT_MALLOC_ARENAS 1

/* Blocks this large or larger always get their own mapping, returned to the
 * kernel when freed. glibc otherwise raises this threshold each time such a
 * block is freed, after which answers, request lines and relay buffers of
 * tens of KiB come from the heap and leave holes among long-lived small
 * objects: make soak showed the heap creeping while live memory stayed flat
 * (valgrind massif: 1.14-1.16 MB live throughout). */
#define AGENT_MMAP_THRESHOLD (64 * 1024)

static int serve(agent_config *cfg)
{
    /* Before any thread exists: arenas are assigned as threads first allocate. */
    if (mallopt(M_ARENA_MAX, AGENT_MALLOC_ARENAS) != 1)
        log_warn("cannot cap malloc arenas at %d; memory may creep under load",
                 AGENT_MALLOC_ARENAS);
    if (mallopt(M_MMAP_THRESHOLD, AGENT_MMAP_THRESHOLD) != 1)
        log_warn("cannot fix malloc's mmap threshold at %d bytes; memory may creep under load",
                 AGENT_MMAP_THRESHOLD);
    default_path(cfg->host_key, sizeof cfg->host_key, "/etc/convocate-agent/ssh_host_ed25519_key");
    default_path(cfg->auth_keys, sizeof cfg->auth_keys, "/etc/convocate-agent/authorized_keys");
    default_path(cfg->shell_key, sizeof cfg->shell_key,
                 "/etc/convocate-agent/agent_to_shell_ed25519_key");
    default_path(cfg->shell_known_host, sizeof cfg->shell_known_host,
                 "/etc/convocate-agent/shell_host_key.pub");
    return agent_serve(cfg);
}

int main(int argc, char **argv)
{
    int rc = simple_command(argc, argv);
    if (rc >= 0)
        return rc;
    agent_config cfg;
    run_options o;
    config_init(&cfg, &o);
    rc = parse_options(argc, argv, &cfg, &o);
    if (rc >= 0)
        return rc;
    log_init("convocate-agent", o.verbose);
    if (strcmp(argv[1], "install") == 0) {
        install_options opt = {.dry_run = o.dry_run,
                               .skip_docker_check = o.no_docker_check,
                               .docker_host = cfg.docker_host};
        return agent_install(&opt);
    }
    return serve(&cfg);
}
