#include "shell/cli_settings.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/cli.h"

#define EXIT_USAGE 2
#define KEY_MAX 64 /* longer than any setting's name; the agent names the unknown */

typedef struct {
    const char *agent;
    bool all;
    bool json;
} settings_opts;

static int usage_error(const char *text)
{
    fprintf(stderr, "convocate settings: %s (see 'convocate help')\n", text);
    return EXIT_USAGE;
}

/* ---- KEY=VALUE ---- */

static bool all_in(const char *s, const char *allowed)
{
    return *s != '\0' && strspn(s, allowed) == strlen(s);
}

static json_t *integer_of(const char *word)
{
    const char *digits = word[0] == '-' ? word + 1 : word;
    if (!all_in(digits, "0123456789"))
        return NULL;
    errno = 0;
    char *end;
    long long n = strtoll(word, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return NULL;
    return json_integer((json_int_t)n);
}

/* Digits with a '.' or an exponent: what a person types for 1.5 CPUs. Words
 * such as "nan" or "inf" stay strings. */
static json_t *real_of(const char *word)
{
    if (!all_in(word, "0123456789+-.eE") || strpbrk(word, ".eE") == NULL ||
        strpbrk(word, "0123456789") == NULL)
        return NULL;
    errno = 0;
    char *end;
    double d = strtod(word, &end);
    if (errno == ERANGE || *end != '\0' || !isfinite(d))
        return NULL;
    return json_real(d);
}

static json_t *quoted_string_of(const char *word)
{
    json_error_t jerr;
    json_t *v = json_loads(word, JSON_DECODE_ANY, &jerr);
    if (v != NULL && !json_is_string(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

json_t *cli_settings_value(const char *word)
{
    size_t len = strlen(word);
    if (len >= 2 && word[0] == '"' && word[len - 1] == '"')
        return quoted_string_of(word);
    if (strcmp(word, "true") == 0)
        return json_true();
    if (strcmp(word, "false") == 0)
        return json_false();
    json_t *v = integer_of(word);
    if (v == NULL)
        v = real_of(word);
    return v ? v : json_string(word);
}

static bool key_is_valid(const char *key, size_t len)
{
    if (len == 0 || len > KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower((unsigned char)key[i]) && !isdigit((unsigned char)key[i]) && key[i] != '_')
            return false;
    return true;
}

/* Adds one KEY=VALUE word to obj; a usage error's exit code, or 0. */
static int add_assignment(json_t *obj, const char *word)
{
    const char *eq = strchr(word, '=');
    char key[KEY_MAX + 1];
    if (eq == NULL)
        return usage_error("wants KEY=VALUE words after the options");
    size_t klen = (size_t)(eq - word);
    if (!key_is_valid(word, klen))
        return usage_error("a KEY is 1 to 64 of a-z 0-9 _");
    memcpy(key, word, klen);
    key[klen] = '\0';
    if (json_object_get(obj, key) != NULL)
        return usage_error("a KEY is given twice");
    json_t *v = cli_settings_value(eq + 1);
    if (v == NULL)
        return usage_error("a VALUE in double quotes must be a JSON string");
    json_object_set_new(obj, key, v);
    return 0;
}

/* ---- options and targets ---- */

static int parse_opts(int argc, char **argv, settings_opts *o)
{
    static const struct option opts[] = {
        {"agent", required_argument, NULL, 'a'},
        {"all", no_argument, NULL, 'A'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'a')
            o->agent = optarg;
        else if (c == 'A')
            o->all = true;
        else if (c == 'j')
            o->json = true;
        else
            return usage_error("unknown option or missing value");
    }
    if (o->agent && o->all)
        return usage_error("--agent and --all exclude each other");
    return 0;
}

/* ---- output ---- */

static void print_settings(const char *agent_id, json_t *settings)
{
    const char *key;
    json_t *v;
    json_object_foreach(settings, key, v)
    {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("%-8s  %-24s %s\n", agent_id, key, text ? text : "?");
        free(text);
    }
}

static json_t *json_row(const agent_entry *a, const agent_reply *reply)
{
    json_t *row = json_pack("{s:s, s:b}", "agent_id", a->id, "reachable", reply->answered);
    if (row == NULL)
        return NULL;
    if (reply->result)
        json_object_set(row, "settings", reply->result);
    else
        json_object_set_new(row, "error", json_string(reply->error));
    return row;
}

/* Every failure a line on stderr; 1 when any agent asked failed. */
static int report(agent_registry *r, const bool *skip, agent_reply *replies, bool json_out)
{
    int rc = 0;
    json_t *rows = json_out ? json_array() : NULL;
    if (!json_out)
        printf("%-8s  %-24s %s\n", "AGENT", "KEY", "VALUE");
    for (size_t i = 0; i < r->n; i++) {
        if (skip[i])
            continue;
        if (replies[i].result == NULL) {
            fprintf(stderr, "convocate: agent %s: %s%s\n", r->items[i].id,
                    replies[i].answered ? "" : "unreachable: ", replies[i].error);
            rc = 1;
        }
        if (rows)
            json_array_append_new(rows, json_row(&r->items[i], &replies[i]));
        else if (replies[i].result)
            print_settings(r->items[i].id, replies[i].result);
    }
    if (rows) {
        json_dumpf(rows, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(rows);
    }
    return rc;
}

static int call_and_report(agent_registry *r, const bool *skip, json_t *changes, bool json_out)
{
    agent_reply *replies = calloc(r->n, sizeof *replies);
    const char *op = changes ? "settings-set" : "settings-get";
    if (replies == NULL || agent_call_some(r, op, changes, skip, replies) < 0) {
        free(replies);
        return cli_fail("out of memory");
    }
    int rc = report(r, skip, replies, json_out);
    agent_replies_clear(replies, r->n);
    free(replies);
    return rc;
}

int cli_settings(agent_registry *r, int argc, char **argv)
{
    settings_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    json_t *changes = optind < argc ? json_object() : NULL;
    bool *skip = calloc(r->n ? r->n : 1, sizeof *skip);
    if (skip == NULL || (optind < argc && changes == NULL))
        rc = cli_fail("out of memory");
    for (int i = optind; rc == 0 && i < argc; i++)
        rc = add_assignment(changes, argv[i]);
    if (rc == 0)
        /* Showing defaults to every agent; changing, to the only one. */
        rc = cli_pick_agents(r, o.agent, o.all || changes == NULL, "settings", skip);
    if (rc == 0)
        rc = call_and_report(r, skip, changes, o.json);
    free(skip);
    json_decref(changes);
    return rc;
}
