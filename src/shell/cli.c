#include "shell/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/claude_fields.h"
#include "shell/attach_client.h"
#include "shell/cli_auth.h"
#include "shell/cli_peek.h"
#include "shell/cli_settings.h"
#include "shell/ls_client.h"
#include "shell/ls_service.h"
#include "shell/ls_timing.h"
#include "shell/names_cache.h"
#include "shell/orphans.h"
#include "ssh/registry.h"
#include "shell/session_json.h"
#include "shell/sessions.h"

#define EXIT_USAGE 2

typedef int (*cli_handler)(agent_registry *r, int argc, char **argv);

static int usage_error(const char *cmd, const char *text)
{
    fprintf(stderr, "convocate %s: %s (see 'convocate help')\n", cmd, text);
    return EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "convocate: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_pick_agents(agent_registry *r, const char *agent_id, bool every, const char *cmd,
                    bool *skip)
{
    if (r->n == 0)
        return cli_fail("no agents registered (add one with 'convocate-host init-agent')");
    for (size_t i = 0; i < r->n; i++)
        skip[i] = false;
    if (agent_id == NULL) {
        if (every || r->n == 1)
            return 0;
        return usage_error(cmd, "several agents are registered: choose one with --agent ID, or "
                                "--all");
    }
    agent_entry *target = registry_find(r, agent_id);
    if (target == NULL)
        return cli_fail("no agent \"%s\" is registered (see 'convocate agents')", agent_id);
    for (size_t i = 0; i < r->n; i++)
        skip[i] = &r->items[i] != target;
    return 0;
}

static bool want_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return true;
    return false;
}

static const char *str_field(json_t *s, const char *key)
{
    const char *v = json_string_value(json_object_get(s, key));
    return v ? v : "";
}

/* ls --json through status-serve's ls service (ls_service.h), which holds a
 * connection to every agent: 1 when that printed the list (or failed to
 * write it: *rc says), 0 when the agents must be asked from here. */
static int ls_json_via_service(int *rc)
{
    const char *direct = getenv("CONVOCATE_LS_DIRECT");
    char path[PATH_BUF], err[512];
    if ((direct != NULL && strcmp(direct, "1") == 0) ||
        root_path(path, sizeof path, "/run/convocate/%s", LS_SOCKET_NAME) < 0)
        return 0;
    size_t agents = 0, sessions = 0;
    switch (
        ls_client_print(path, LS_CLIENT_TIMEOUT_S, stdout, &agents, &sessions, err, sizeof err)) {
    case LS_CLIENT_PRINTED:
        ls_timing_mark(LS_PRINTED);
        ls_timing_end(agents, sessions, "status-serve");
        *rc = 0;
        return 1;
    case LS_CLIENT_UNWRITTEN:
        *rc = cli_fail("%s", err);
        return 1;
    case LS_CLIENT_FAILED:
        fprintf(stderr, "convocate: status-serve's list failed (%s); asking the agents directly\n",
                err);
        return 0;
    case LS_CLIENT_NO_SERVICE:
        break;
    }
    return 0;
}

static int cmd_ls(agent_registry *r, int argc, char **argv)
{
    bool json_out = want_flag(argc, argv, "--json");
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") != 0)
            return usage_error("ls", "takes only --json");
    cluster_list l;
    ls_timing_begin();
    int rc;
    if (json_out && ls_json_via_service(&rc))
        return rc;
    unsigned flags = CLUSTER_LIST_ONCE | (json_out ? CLUSTER_LIST_RENDER_JSON : 0);
    if (cluster_list_load_with(r, &l, flags) < 0) {
        cluster_list_free(&l);
        return cli_fail("out of memory");
    }
    ls_timing_mark(LS_MERGED);
    size_t sessions = json_array_size(l.sessions);
    cluster_list_warn(r, &l, stderr);
    if (json_out) {
        if (cluster_list_print_json(&l, stdout) < 0) {
            cluster_list_free(&l);
            return cli_fail("cannot write the list: %s", strerror(errno));
        }
    } else {
        printf("%-2s %-8s  %-20s %-8s  %-9s %-16s %s\n", "ST", "UUID", "NAME", "AGENT", "PORT",
               "DNS", "LAST ACCESSED");
        size_t i;
        json_t *s;
        json_array_foreach(l.sessions, i, s)
        {
            char port[32] = "-";
            json_int_t p = json_integer_value(json_object_get(s, "port"));
            if (p > 0)
                snprintf(port, sizeof port, "%lld/%s", (long long)p, str_field(s, "protocol"));
            /* SPEC 6.2's "!" for a session whose metadata is broken. An
             * orphan stays "O" even with a broken session.json: that it
             * belongs to no agent is what the operator must act on first. */
            const char *state = session_is_orphan(s)          ? "O"
                                : json_object_get(s, "error") ? "!"
                                                              : str_field(s, "state");
            const char *agent = *str_field(s, "agent") ? str_field(s, "agent") : "-";
            printf("%-2s %-8.8s  %-20s %-8s  %-9s %-16s %s\n", state, str_field(s, "uuid"),
                   str_field(s, "name"), agent, port,
                   *str_field(s, "dns_name") ? str_field(s, "dns_name") : "-",
                   str_field(s, "last_accessed"));
        }
    }
    fflush(stdout);
    ls_timing_mark(LS_PRINTED);
    cluster_list_free(&l);
    ls_timing_mark(LS_FREED);
    ls_timing_end(r->n, sessions, "agents");
    return 0;
}

static int cmd_agents(agent_registry *r, int argc, char **argv)
{
    bool json_out = want_flag(argc, argv, "--json");
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--json") != 0)
            return usage_error("agents", "takes only --json");
    agent_reply *replies = calloc(r->n ? r->n : 1, sizeof *replies);
    if (replies == NULL || agent_call_all(r, "ping", NULL, replies) < 0) {
        free(replies);
        return cli_fail("out of memory");
    }
    json_t *all = json_array();
    for (size_t i = 0; i < r->n; i++) {
        char addr[300];
        snprintf(addr, sizeof addr, "%s:%d", r->items[i].host, r->items[i].port);
        json_t *row = json_pack("{s:s, s:s, s:b}", "agent_id", r->items[i].id, "host", addr,
                                "reachable", replies[i].result != NULL);
        if (replies[i].result)
            json_object_set(row, "ping", replies[i].result);
        else
            json_object_set_new(row, "error", json_string(replies[i].error));
        json_array_append_new(all, row);
    }
    if (json_out) {
        json_dumpf(all, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (r->n == 0) {
        printf("No agents registered (add one with 'convocate-host init-agent').\n");
    } else {
        printf("%-8s  %-24s %-9s %-9s %-18s %s\n", "AGENT", "HOST", "STATE", "VERSION", "IMAGE",
               "CAPACITY");
        for (size_t i = 0; i < r->n; i++) {
            json_t *p = replies[i].result;
            json_t *cap = json_object_get(p, "capacity");
            char capacity[96] = "-";
            if (cap)
                snprintf(capacity, sizeof capacity,
                         "cpu %.1f%% mem %.1f%% cap %lld%% %lld sessions",
                         json_number_value(json_object_get(cap, "cpu_pct")),
                         json_number_value(json_object_get(cap, "mem_pct")),
                         (long long)json_integer_value(json_object_get(cap, "threshold_pct")),
                         (long long)json_integer_value(json_object_get(cap, "sessions")));
            char addr[300];
            snprintf(addr, sizeof addr, "%s:%d", r->items[i].host, r->items[i].port);
            printf("%-8s  %-24s %-9s %-9s %-18s %s\n", r->items[i].id, addr, p ? "up" : "DOWN",
                   p ? str_field(p, "version") : "-", p ? str_field(p, "image_tag") : "-",
                   p ? capacity : replies[i].error);
        }
    }
    json_decref(all);
    agent_replies_clear(replies, r->n);
    free(replies);
    return 0;
}

/* Options shared by new and edit: --port, --proto, --dns, --name, --agent,
 * --model, --autonomous / --no-autonomous. */
typedef struct {
    const char *agent, *name, *proto, *dns, *model;
    long port;
    bool has_port;
    int autonomous; /* -1 = not given, 0, 1 */
} session_opts;

/* --model and --autonomous / --no-autonomous (SPEC 15). */
static int take_claude_opt(const char *cmd, int c, session_opts *o)
{
    if (c == 'm') {
        if (optarg[0] && !claude_model_is_valid(optarg))
            return usage_error(cmd, "--model wants 1 to 64 of A-Z a-z 0-9 . _ - (\"\" for none)");
        o->model = optarg;
        return 0;
    }
    int value = c == 'y' ? 1 : 0;
    if (o->autonomous >= 0 && o->autonomous != value)
        return usage_error(cmd, "--autonomous and --no-autonomous exclude each other");
    o->autonomous = value;
    return 0;
}

static int parse_session_opts(const char *cmd, int argc, char **argv, session_opts *o,
                              int *first_arg)
{
    static const struct option opts[] = {
        {"agent", required_argument, NULL, 'a'},
        {"port", required_argument, NULL, 'p'},
        {"proto", required_argument, NULL, 'P'},
        {"dns", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"model", required_argument, NULL, 'm'},
        {"autonomous", no_argument, NULL, 'y'},
        {"no-autonomous", no_argument, NULL, 'Y'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->autonomous = -1;
    optind = 1;
    opterr = 0;
    int c;
    /* Options may come before or after the positional arguments ("new NAME
     * --agent ID" as the usage shows); "--" ends them for a name like "-x". */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'a':
            o->agent = optarg;
            break;
        case 'p':
            errno = 0;
            o->port = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || o->port < -1 || o->port > 65535)
                return usage_error(cmd, "--port wants -1 (pick one), 0 (none) or 1..65535");
            o->has_port = true;
            break;
        case 'P':
            if (strcmp(optarg, "tcp") != 0 && strcmp(optarg, "udp") != 0)
                return usage_error(cmd, "--proto wants tcp or udp");
            o->proto = optarg;
            break;
        case 'd':
            o->dns = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'm':
        case 'y':
        case 'Y':
            if (take_claude_opt(cmd, c, o))
                return EXIT_USAGE;
            break;
        default:
            return usage_error(cmd, "unknown option");
        }
    }
    *first_arg = optind;
    return 0;
}

static json_t *session_params(const session_opts *o)
{
    json_t *p = json_object();
    if (o->name)
        json_object_set_new(p, "name", json_string(o->name));
    if (o->has_port)
        json_object_set_new(p, "port", json_integer(o->port));
    if (o->proto)
        json_object_set_new(p, "protocol", json_string(o->proto));
    if (o->dns)
        json_object_set_new(p, "dns_name", json_string(o->dns));
    if (o->model)
        json_object_set_new(p, "model", json_string(o->model));
    if (o->autonomous >= 0)
        json_object_set_new(p, "autonomous", json_boolean(o->autonomous));
    return p;
}

static void print_session(json_t *s)
{
    printf("%s %s on %s\n", str_field(s, "uuid"), str_field(s, "name"), str_field(s, "agent"));
}

/* Refuses a DNS name another session of the cluster already has (SPEC 12). */
static int check_dns_unique(cluster_list *l, const char *dns, const char *except_uuid)
{
    const char *owner = dns && *dns ? cluster_dns_owner(l, dns, except_uuid) : NULL;
    if (owner)
        return cli_fail("dns name \"%s\" already in use by session \"%s\"", dns, owner);
    return 0;
}

/* Calls op (taking params) on the session's agent and prints the session
 * it answers with. */
static int call_and_print_session(agent_entry *agent, const char *op, json_t *params)
{
    char err[512];
    json_t *res = agent_call(agent, op, params, err, sizeof err);
    json_decref(params);
    if (res == NULL)
        return cli_fail("%s", err);
    json_object_set_new(res, "agent", json_string(agent->id));
    print_session(res);
    json_decref(res);
    return 0;
}

static int cmd_new(agent_registry *r, int argc, char **argv)
{
    session_opts o;
    int first, rc = parse_session_opts("new", argc, argv, &o, &first);
    if (rc)
        return rc;
    if (argc - first != 1)
        return usage_error("new", "wants exactly one NAME");
    o.name = argv[first];
    if (r->n == 0)
        return cli_fail("no agents registered (add one with 'convocate-host init-agent')");
    agent_entry *target = NULL;
    if (o.agent) {
        target = registry_find(r, o.agent);
        if (target == NULL)
            return cli_fail("no agent \"%s\" is registered (see 'convocate agents')", o.agent);
    } else if (r->n == 1) {
        target = &r->items[0];
    } else {
        return usage_error("new", "several agents are registered: choose one with --agent ID");
    }
    cluster_list l;
    if (cluster_list_load(r, &l) < 0 || check_dns_unique(&l, o.dns, NULL)) {
        cluster_list_free(&l);
        return 1;
    }
    cluster_list_free(&l);
    return call_and_print_session(target, "create", session_params(&o));
}

/* Loads the cluster and resolves argv's TARGET; fills agent and uuid. */
static int resolve_target(agent_registry *r, cluster_list *l, const char *target,
                          agent_entry **agent, json_t **session)
{
    char err[600];
    if (cluster_list_load(r, l) < 0)
        return cli_fail("out of memory");
    *session = cluster_find(l, target, err, sizeof err);
    if (*session == NULL) {
        cluster_list_warn_unreachable(r, l, stderr);
        return cli_fail("%s", err);
    }
    if (session_is_orphan(*session)) {
        /* Every action goes through here: none may reach an agent that
         * does not have the session (SPEC 6.5). */
        orphan_refusal(err, sizeof err, str_field(*session, "name"), str_field(*session, "uuid"));
        return cli_fail("%s", err);
    }
    *agent = registry_find(r, str_field(*session, "agent"));
    return *agent ? 0 : cli_fail("the session's agent is no longer registered");
}

/* kill, restart, bg, override: one id in, nothing out. */
static int simple_op(agent_registry *r, int argc, char **argv, const char *op, const char *done)
{
    if (argc != 2)
        return usage_error(argv[0], "wants exactly one session (name or UUID prefix)");
    cluster_list l;
    agent_entry *agent;
    json_t *s;
    int rc = resolve_target(r, &l, argv[1], &agent, &s);
    if (rc == 0) {
        char err[512];
        json_t *params = json_pack("{s:s}", "id", str_field(s, "uuid"));
        json_t *res = agent_call(agent, op, params, err, sizeof err);
        json_decref(params);
        if (res == NULL) {
            rc = cli_fail("%s", err);
        } else {
            printf("%s %s\n", str_field(s, "name"), done);
            json_decref(res);
        }
    }
    cluster_list_free(&l);
    return rc;
}

static int cmd_kill(agent_registry *r, int argc, char **argv)
{
    return simple_op(r, argc, argv, "kill", "stopped");
}

static int cmd_restart(agent_registry *r, int argc, char **argv)
{
    return simple_op(r, argc, argv, "restart", "started");
}

static int cmd_bg(agent_registry *r, int argc, char **argv)
{
    return simple_op(r, argc, argv, "background", "detached from every operator");
}

static int cmd_override(agent_registry *r, int argc, char **argv)
{
    return simple_op(r, argc, argv, "override", "unlocked");
}

static int cmd_delete(agent_registry *r, int argc, char **argv)
{
    bool yes = want_flag(argc, argv, "--yes");
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--yes") == 0)
            continue;
        if (target)
            return usage_error("delete", "wants exactly one session");
        target = argv[i];
    }
    if (target == NULL)
        return usage_error("delete", "wants a session (name or UUID prefix)");
    if (!yes) {
        if (!isatty(STDIN_FILENO))
            return usage_error("delete", "not on a terminal: confirm with --yes");
        printf("Delete session %s and its home directory? [y/N] ", target);
        fflush(stdout);
        char answer[16];
        if (fgets(answer, sizeof answer, stdin) == NULL || (answer[0] != 'y' && answer[0] != 'Y')) {
            printf("Nothing deleted.\n");
            return 0;
        }
    }
    char *args[] = {argv[0], (char *)target, NULL};
    return simple_op(r, 2, args, "delete", "deleted");
}

static int cmd_clone(agent_registry *r, int argc, char **argv)
{
    if (argc != 3)
        return usage_error("clone", "wants SOURCE and NEW-NAME");
    cluster_list l;
    agent_entry *agent;
    json_t *s;
    int rc = resolve_target(r, &l, argv[1], &agent, &s);
    if (rc == 0)
        rc = call_and_print_session(
            agent, "clone",
            json_pack("{s:s, s:s}", "source_id", str_field(s, "uuid"), "name", argv[2]));
    cluster_list_free(&l);
    return rc;
}

static int cmd_edit(agent_registry *r, int argc, char **argv)
{
    session_opts o;
    int first, rc = parse_session_opts("edit", argc, argv, &o, &first);
    if (rc)
        return rc;
    if (argc - first != 1 || o.agent)
        return usage_error("edit", "wants one session and --name/--port/--proto/--dns/--model/"
                                   "--autonomous/--no-autonomous");
    cluster_list l;
    agent_entry *agent;
    json_t *s;
    rc = resolve_target(r, &l, argv[first], &agent, &s);
    if (rc == 0)
        rc = check_dns_unique(&l, o.dns, str_field(s, "uuid"));
    if (rc == 0) {
        json_t *params = session_params(&o);
        json_object_set_new(params, "id", json_string(str_field(s, "uuid")));
        rc = call_and_print_session(agent, "edit", params);
    }
    cluster_list_free(&l);
    return rc;
}

static int cmd_attach(agent_registry *r, int argc, char **argv)
{
    if (argc != 2)
        return usage_error("attach", "wants exactly one session (name or UUID prefix)");
    cluster_list l;
    agent_entry *agent;
    json_t *s;
    int rc = resolve_target(r, &l, argv[1], &agent, &s);
    if (rc == 0) {
        char err[512];
        char uuid[64];
        snprintf(uuid, sizeof uuid, "%s", str_field(s, "uuid"));
        cluster_list_free(&l);
        if (attach_run(agent, uuid, err, sizeof err) < 0)
            return cli_fail("%s", err);
        return 0;
    }
    cluster_list_free(&l);
    return rc;
}

static const struct {
    const char *name;
    cli_handler fn;
} commands[] = {
    {"ls", cmd_ls},
    {"agents", cmd_agents},
    {"new", cmd_new},
    {"attach", cmd_attach},
    {"kill", cmd_kill},
    {"restart", cmd_restart},
    {"delete", cmd_delete},
    {"bg", cmd_bg},
    {"override", cmd_override},
    {"clone", cmd_clone},
    {"edit", cmd_edit},
    {"auth", cli_auth},
    {"settings", cli_settings},
    {"peek", cli_peek},
    {"send", cli_send},
    {"watch", cli_watch},
};

bool cli_is_command(const char *cmd)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, cmd) == 0)
            return true;
    return false;
}

int cli_run(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(commands[i].name, argv[0]) != 0)
            continue;
        if (strcmp(argv[0], "ls") == 0 && names_cache_wanted(argc, argv))
            return names_cache_main(argc, argv); /* no registry, no network */
        agent_registry r;
        char err[512];
        if (registry_load(&r, err, sizeof err) < 0)
            return cli_fail("%s", err);
        int rc = commands[i].fn(&r, argc, argv);
        registry_free(&r);
        return rc;
    }
    return usage_error(argv[0], "unknown command");
}
