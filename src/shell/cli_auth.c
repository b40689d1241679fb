#include "shell/cli_auth.h"
#include "shell/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "proto/claude_fields.h"
#include "shell/secret_input.h"

#define EXIT_USAGE 2
#define ELLIPSIS "\xe2\x80\xa6" /* how agents start a hint: 3 bytes, 1 column */

/* Which options each subcommand takes. */
enum {
    OPT_TARGET = 1 << 0, /* --agent, --all */
    OPT_SECRET = 1 << 1, /* --api-key-file, --oauth-token-file, --base-url, --model */
    OPT_JSON = 1 << 2,
};

typedef struct {
    const char *agent;
    bool all;
    const char *api_key_file, *oauth_token_file, *base_url, *model;
    bool json;
} auth_opts;

void cli_auth_usage(FILE *out)
{
    fprintf(
        out,
        "usage: convocate auth set [--agent ID | --all] (--api-key-file F | --oauth-token-file F)\n"
        "                          [--base-url URL] [--model M]\n"
        "       convocate auth status [--json]\n"
        "       convocate auth clear [--agent ID | --all]\n"
        "\n"
        "The Claude credentials of each agent's sessions: the agent keeps them in its\n"
        "claude.env (root 0600) and mounts that read-only into every session container\n"
        "it starts. A running session keeps what it started with until it is restarted.\n"
        "\n"
        "  set     store an Anthropic API key (--api-key-file) or a Claude Code OAuth\n"
        "          token (--oauth-token-file), replacing whatever was set before. The\n"
        "          secret is read from the file F, or from stdin when F is '-' (one\n"
        "          trailing newline is trimmed), never from the command line; it must be\n"
        "          1 to 4096 printable ASCII characters without spaces.\n"
        "            --base-url URL  an http:// or https:// endpoint instead of Anthropic's\n"
        "            --model M       the model sessions use, 1 to 64 of A-Z a-z 0-9 . _ -\n"
        "  status  one line per agent: kind (api-key, oauth-token or none), a hint made\n"
        "          of the secret's last 4 characters, base URL and model; an agent that\n"
        "          cannot be reached is shown as unreachable. --json for scripts.\n"
        "  clear   remove the agent's credentials\n"
        "\n"
        "  --agent ID  act on that agent; --all: on every registered agent, each\n"
        "              reported on its own line. With neither, the only registered\n"
        "              agent (when there are several, choose).\n"
        "\n"
        "Exit status: 0 done; 1 set or clear failed on some agent (each failure is one\n"
        "line on stderr); 2 usage error. status exits 0 even when it shows an agent\n"
        "unreachable.\n");
}

bool cli_auth_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
            (i == 1 && strcmp(argv[i], "help") == 0))
            return true;
    }
    return false;
}

static int usage_error(const char *cmd, const char *text)
{
    fprintf(stderr, "convocate auth %s: %s (see 'convocate auth --help')\n", cmd, text);
    return EXIT_USAGE;
}

/* ---- options ---- */

static int take_option(int c, const char *cmd, auth_opts *o)
{
    switch (c) {
    case 'a':
        o->agent = optarg;
        return 0;
    case 'A':
        o->all = true;
        return 0;
    case 'k':
        o->api_key_file = optarg;
        return 0;
    case 'o':
        o->oauth_token_file = optarg;
        return 0;
    case 'u':
        o->base_url = optarg;
        return 0;
    case 'm':
        o->model = optarg;
        return 0;
    case 'j':
        o->json = true;
        return 0;
    default:
        return usage_error(cmd, "unknown option or missing value");
    }
}

static bool option_allowed(int c, unsigned allowed)
{
    if (c == 'a' || c == 'A')
        return allowed & OPT_TARGET;
    if (c == 'j')
        return allowed & OPT_JSON;
    return (allowed & OPT_SECRET) && strchr("koum", c) != NULL;
}

static int parse_opts(const char *cmd, int argc, char **argv, unsigned allowed, auth_opts *o)
{
    static const struct option opts[] = {
        {"agent", required_argument, NULL, 'a'},
        {"all", no_argument, NULL, 'A'},
        {"api-key-file", required_argument, NULL, 'k'},
        {"oauth-token-file", required_argument, NULL, 'o'},
        {"base-url", required_argument, NULL, 'u'},
        {"model", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != '?' && !option_allowed(c, allowed))
            return usage_error(cmd, "option not taken by this command");
        int rc = take_option(c, cmd, o);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return usage_error(cmd, "takes no arguments, only options");
    if (o->agent && o->all)
        return usage_error(cmd, "--agent and --all exclude each other");
    return 0;
}

/* ---- targets and replies ---- */

static const char *field(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

static const char *or_dash(const char *s)
{
    return *s ? s : "-";
}

/* One line per agent acted on; 1 when any of them failed. */
static int report_changes(agent_registry *r, const bool *skip, agent_reply *replies)
{
    int rc = 0;
    for (size_t i = 0; i < r->n; i++) {
        json_t *res = replies[i].result;
        if (skip[i])
            continue;
        if (res == NULL) {
            fprintf(stderr, "convocate: agent %s: %s%s\n", r->items[i].id,
                    replies[i].answered ? "" : "unreachable: ", replies[i].error);
            rc = 1;
        } else if (strcmp(field(res, "kind"), "none") == 0) {
            printf("%s: no credentials\n", r->items[i].id);
        } else {
            printf("%s: %s %s  base_url %s  model %s\n", r->items[i].id, field(res, "kind"),
                   field(res, "hint"), or_dash(field(res, "base_url")),
                   or_dash(field(res, "model")));
        }
    }
    return rc;
}

/* Calls op on the targets and reports; 0 when every one succeeded. */
static int call_targets(agent_registry *r, const bool *skip, const char *op, json_t *params)
{
    agent_reply *replies = calloc(r->n, sizeof *replies);
    if (replies == NULL || agent_call_some(r, op, params, skip, replies) < 0) {
        free(replies);
        return cli_fail("out of memory");
    }
    int rc = report_changes(r, skip, replies);
    agent_replies_clear(replies, r->n);
    free(replies);
    return rc;
}

/* ---- set ---- */

static int check_set_opts(const auth_opts *o)
{
    if ((o->api_key_file == NULL) == (o->oauth_token_file == NULL))
        return usage_error("set", "give exactly one of --api-key-file F and --oauth-token-file F");
    if (o->base_url && !claude_base_url_is_valid(o->base_url))
        return usage_error("set", "--base-url wants http:// or https:// and a host, at most 2048 "
                                  "characters, no spaces");
    if (o->model && !claude_model_is_valid(o->model))
        return usage_error("set", "--model wants 1 to 64 of A-Z a-z 0-9 . _ -");
    return 0;
}

static json_t *set_params(const auth_opts *o, const char *secret)
{
    json_t *p = json_pack("{s:s}", o->api_key_file ? "api_key" : "oauth_token", secret);
    if (p && o->base_url && json_object_set_new(p, "base_url", json_string(o->base_url)) < 0)
        goto fail;
    if (p && o->model && json_object_set_new(p, "model", json_string(o->model)) < 0)
        goto fail;
    return p;
fail:
    json_decref(p);
    return NULL;
}

static int cmd_set(agent_registry *r, int argc, char **argv, bool *skip)
{
    auth_opts o;
    char secret[SECRET_BUF], err[600];
    int rc = parse_opts("set", argc, argv, OPT_TARGET | OPT_SECRET, &o);
    if (rc == 0)
        rc = check_set_opts(&o);
    if (rc == 0)
        rc = cli_pick_agents(r, o.agent, o.all, "auth set", skip);
    if (rc)
        return rc;
    const char *file = o.api_key_file ? o.api_key_file : o.oauth_token_file;
    if (secret_read(file, secret, sizeof secret, err, sizeof err) < 0)
        return cli_fail("%s", err);
    json_t *params = set_params(&o, secret);
    explicit_bzero(secret, sizeof secret);
    if (params == NULL)
        return cli_fail("out of memory");
    rc = call_targets(r, skip, "auth-set", params);
    json_decref(params);
    return rc;
}

/* ---- clear ---- */

static int cmd_clear(agent_registry *r, int argc, char **argv, bool *skip)
{
    auth_opts o;
    int rc = parse_opts("clear", argc, argv, OPT_TARGET, &o);
    if (rc == 0)
        rc = cli_pick_agents(r, o.agent, o.all, "auth clear", skip);
    if (rc)
        return rc;
    json_t *params = json_pack("{s:b}", "clear", 1);
    if (params == NULL)
        return cli_fail("out of memory");
    rc = call_targets(r, skip, "auth-set", params);
    json_decref(params);
    return rc;
}

/* ---- status ---- */

static json_t *status_row(const agent_entry *a, const agent_reply *reply)
{
    json_t *row = json_pack("{s:s, s:b}", "agent_id", a->id, "reachable", reply->answered);
    if (row == NULL)
        return NULL;
    const char *keys[] = {"kind", "hint", "base_url", "model"};
    for (size_t k = 0; reply->result && k < sizeof keys / sizeof *keys; k++)
        json_object_set_new(row, keys[k], json_string(field(reply->result, keys[k])));
    if (reply->result == NULL)
        json_object_set_new(row, "error", json_string(reply->error));
    return row;
}

static void print_status_line(const agent_entry *a, const agent_reply *reply)
{
    json_t *res = reply->result;
    if (res == NULL) {
        printf("%-8s  %-12s %s\n", a->id, reply->answered ? "error" : "unreachable", reply->error);
        return;
    }
    const char *hint = or_dash(field(res, "hint"));
    /* The ellipsis takes 3 bytes for 1 column: widen the field to match. */
    int hint_w = strncmp(hint, ELLIPSIS, 3) == 0 ? 9 : 7;
    printf("%-8s  %-12s %-*s %-32s %s\n", a->id, field(res, "kind"), hint_w, hint,
           or_dash(field(res, "base_url")), or_dash(field(res, "model")));
}

static int cmd_status(agent_registry *r, int argc, char **argv)
{
    auth_opts o;
    int rc = parse_opts("status", argc, argv, OPT_JSON, &o);
    if (rc)
        return rc;
    agent_reply *replies = calloc(r->n ? r->n : 1, sizeof *replies);
    if (replies == NULL || agent_call_all(r, "auth-get", NULL, replies) < 0) {
        free(replies);
        return cli_fail("out of memory");
    }
    json_t *all = json_array();
    for (size_t i = 0; all && o.json && i < r->n; i++)
        json_array_append_new(all, status_row(&r->items[i], &replies[i]));
    if (o.json) {
        json_dumpf(all, stdout, JSON_INDENT(2));
        putchar('\n');
    } else if (r->n == 0) {
        printf("No agents registered (add one with 'convocate-host init-agent').\n");
    } else {
        printf("%-8s  %-12s %-7s %-32s %s\n", "AGENT", "KIND", "HINT", "BASE URL", "MODEL");
        for (size_t i = 0; i < r->n; i++)
            print_status_line(&r->items[i], &replies[i]);
    }
    json_decref(all);
    agent_replies_clear(replies, r->n);
    free(replies);
    return 0;
}

int cli_auth(agent_registry *r, int argc, char **argv)
{
    if (cli_auth_wants_help(argc, argv)) {
        cli_auth_usage(stdout);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr,
                "convocate auth: wants set, status or clear (see 'convocate auth --help')\n");
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "status") == 0)
        return cmd_status(r, argc - 1, argv + 1);
    bool *skip = calloc(r->n ? r->n : 1, sizeof *skip);
    if (skip == NULL)
        return cli_fail("out of memory");
    int rc;
    if (strcmp(sub, "set") == 0)
        rc = cmd_set(r, argc - 1, argv + 1, skip);
    else if (strcmp(sub, "clear") == 0)
        rc = cmd_clear(r, argc - 1, argv + 1, skip);
    else
        rc = usage_error(sub, "unknown auth command (want set, status or clear)");
    free(skip);
    return rc;
}
