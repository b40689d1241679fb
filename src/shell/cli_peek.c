/* peek, send and watch on the command line (SPEC 16). peek keeps the
 * screen's SGR colours when stdout is a terminal (or with --color) and
 * strips every escape sequence otherwise, so a pipe or a file gets plain
 * text. */
#include "shell/cli_peek.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "shell/orphans.h"
#include "shell/sessions.h"

#define EXIT_USAGE 2
#define SEND_TEXT_MAX 4096
#define PEEK_LINES_MAX 500

static int usage(const char *cmd, const char *text)
{
    fprintf(stderr, "convocate %s: %s (see 'convocate help')\n", cmd, text);
    return EXIT_USAGE;
}

static int failed(const char *text)
{
    fprintf(stderr, "convocate: %s\n", text);
    return 1;
}

static const char *str_of(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v ? v : "";
}

/* Resolves NAME to its agent and uuid (uuid: UUID_STR_LEN bytes). */
static int find_session(agent_registry *r, const char *target, agent_entry **agent, char *uuid,
                        size_t size)
{
    cluster_list l;
    char err[600];
    if (cluster_list_load(r, &l) < 0)
        return failed("out of memory");
    json_t *s = cluster_find(&l, target, err, sizeof err);
    int rc = 0;
    if (s == NULL) {
        rc = failed(err);
    } else if (session_is_orphan(s)) {
        orphan_refusal(err, sizeof err, str_of(s, "name"), str_of(s, "uuid"));
        rc = failed(err);
    } else if ((*agent = registry_find(r, str_of(s, "agent"))) == NULL) {
        rc = failed("the session's agent is no longer registered");
    } else {
        snprintf(uuid, size, "%s", str_of(s, "uuid"));
    }
    cluster_list_free(&l);
    return rc;
}

/* Writes text without its escape sequences (CSI, OSC and two-byte ESC x). */
static void write_plain(const char *text, FILE *out)
{
    for (const char *p = text; *p;) {
        if (*p != '\x1b') {
            fputc(*p++, out);
            continue;
        }
        p++;
        if (*p == '[') {
            p++;
            while (*p && !(*p >= 0x40 && *p <= 0x7e))
                p++;
            p += *p != '\0';
        } else if (*p == ']') {
            while (*p && *p != '\a' && !(p[0] == '\x1b' && p[1] == '\\'))
                p++;
            p += *p == '\a' ? 1 : (*p ? 2 : 0);
        } else if (*p) {
            p++;
        }
    }
}

int cli_peek(agent_registry *r, int argc, char **argv)
{
    const char *target = NULL;
    long lines = 0;
    bool color = isatty(STDOUT_FILENO);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--color") == 0) {
            color = true;
        } else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            lines = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || lines < 0 || lines > PEEK_LINES_MAX)
                return usage("peek", "--lines wants 0 to 500");
        } else if (argv[i][0] != '-' && target == NULL) {
            target = argv[i];
        } else {
            return usage("peek", "wants NAME [--lines N] [--color]");
        }
    }
    if (target == NULL)
        return usage("peek", "wants a session (name or UUID prefix)");
    agent_entry *agent;
    char uuid[64], err[600];
    int rc = find_session(r, target, &agent, uuid, sizeof uuid);
    if (rc)
        return rc;
    json_t *params = json_pack("{s:s, s:I}", "id", uuid, "lines", (json_int_t)lines);
    json_t *res = agent_call(agent, "peek", params, err, sizeof err);
    json_decref(params);
    if (res == NULL)
        return failed(err);
    const char *screen = str_of(res, "screen");
    if (color)
        fputs(screen, stdout);
    else
        write_plain(screen, stdout);
    json_decref(res);
    return fflush(stdout) == 0 ? 0 : failed("cannot write the screen");
}

/* The text of `send NAME -`: all of stdin, at most SEND_TEXT_MAX bytes, one
 * trailing newline dropped (Enter is sent on its own). */
static int read_stdin_text(char *buf, size_t size)
{
    size_t n = fread(buf, 1, size, stdin);
    if (ferror(stdin))
        return -1;
    if (n == size && fgetc(stdin) != EOF)
        return -2;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    return memchr(buf, '\0', n) ? -3 : (int)n;
}

int cli_send(agent_registry *r, int argc, char **argv)
{
    const char *target = NULL, *text = NULL;
    bool enter = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-enter") == 0)
            enter = false;
        else if (target == NULL && (argv[i][0] != '-' || argv[i][1] == '\0'))
            target = argv[i];
        else if (text == NULL && target != NULL)
            text = argv[i];
        else
            return usage("send", "wants NAME TEXT|- [--no-enter]");
    }
    if (target == NULL || text == NULL)
        return usage("send", "wants NAME TEXT|- [--no-enter]");
    static char buf[SEND_TEXT_MAX + 1];
    if (strcmp(text, "-") == 0) {
        int n = read_stdin_text(buf, SEND_TEXT_MAX + 1);
        if (n == -1)
            return failed("cannot read stdin");
        if (n == -2)
            return usage("send", "the text is longer than 4096 bytes");
        if (n == -3)
            return usage("send", "the text holds a NUL byte");
        text = buf;
    }
    if (text[0] == '\0' || strlen(text) > SEND_TEXT_MAX)
        return usage("send", "the text must be 1 to 4096 bytes");
    agent_entry *agent;
    char uuid[64], err[600];
    int rc = find_session(r, target, &agent, uuid, sizeof uuid);
    if (rc)
        return rc;
    json_t *params = json_pack("{s:s, s:s, s:b}", "id", uuid, "text", text, "enter", enter);
    if (params == NULL)
        return failed("the text is not valid UTF-8");
    json_t *res = agent_call(agent, "send", params, err, sizeof err);
    json_decref(params);
    if (res == NULL)
        return failed(err);
    json_decref(res);
    return 0;
}

/* ---- watch ---- */

#define WATCH_LINE_MAX (64 * 1024)
#define NAMES_RELOAD_MS 5000
#define WATCH_NAME_MAX 64 /* SPEC 6.1's longest session name */

typedef struct {
    agent_registry *r;
    json_t *names; /* uuid -> name, from the agents' lists */
    int64_t loaded_ms;
} name_book;

static void names_load(name_book *b)
{
    cluster_list l;
    json_decref(b->names);
    b->names = json_object();
    b->loaded_ms = monotonic_ms();
    if (cluster_list_load(b->r, &l) < 0)
        return;
    size_t i;
    json_t *s;
    json_array_foreach(l.sessions, i, s)
    {
        json_object_set_new(b->names, str_of(s, "uuid"), json_string(str_of(s, "name")));
    }
    cluster_list_free(&l);
}

/* The session's name; a session made since the last load makes one reload
 * (at most every NAMES_RELOAD_MS), else the uuid stands in. */
static const char *name_of(name_book *b, const char *uuid)
{
    const char *name = json_string_value(json_object_get(b->names, uuid));
    if (name == NULL && monotonic_ms() - b->loaded_ms >= NAMES_RELOAD_MS) {
        names_load(b);
        name = json_string_value(json_object_get(b->names, uuid));
    }
    return name ? name : uuid;
}

static void print_activity(name_book *b, json_t *ev)
{
    json_t *d = json_object_get(ev, "data");
    const char *stamp = str_of(ev, "timestamp");
    char clock[9] = "";
    if (strlen(stamp) >= 19)
        snprintf(clock, sizeof clock, "%.8s", stamp + 11);
    printf("%s %s %s %s", clock, name_of(b, str_of(ev, "session_id")), str_of(ev, "agent_id"),
           json_is_object(d) ? str_of(d, "state") : "unknown");
    json_t *cost = json_object_get(d, "cost_usd"), *ctx = json_object_get(d, "context_pct");
    if (json_is_number(cost))
        printf(" $%.2f", json_number_value(cost));
    if (json_is_number(ctx))
        printf(" ctx %.0f%%", json_number_value(ctx));
    const char *detail = str_of(d, "detail");
    if (*detail) {
        fputs(" ", stdout);
        write_plain(detail, stdout); /* a session wrote it: no escapes reach the terminal */
    }
    fputc('\n', stdout);
}

static int feed_connect(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char msg[sizeof addr.sun_path + 128];
    if (root_path(addr.sun_path, sizeof addr.sun_path, "/run/convocate/status.sock") < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
        return fd;
    snprintf(msg, sizeof msg, "cannot reach the local feed at %s: %s (is status-serve running?)",
             addr.sun_path, strerror(errno));
    failed(msg);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* container.created, .edited and .started carry the session object: its
 * name goes into the book at once, so a session made after watch started
 * is printed by name from its first activity, not by uuid until the next
 * reload. Only a short printable name is taken. */
static void names_learn(name_book *b, json_t *ev)
{
    const char *type = str_of(ev, "type");
    if (strcmp(type, "container.created") != 0 && strcmp(type, "container.edited") != 0 &&
        strcmp(type, "container.started") != 0)
        return;
    const char *uuid = str_of(ev, "session_id");
    const char *name = str_of(json_object_get(ev, "data"), "name");
    size_t n = strlen(name);
    if (!uuid_v4_is_valid(uuid) || n == 0 || n > WATCH_NAME_MAX)
        return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return;
    json_object_set_new(b->names, uuid, json_string(name));
}

/* One line of the feed; session.activity events are printed. */
static void watch_line(name_book *b, const char *line, size_t len, bool as_json)
{
    json_t *ev = json_loadb(line, len, 0, NULL);
    if (json_is_object(ev) && !as_json)
        names_learn(b, ev);
    if (json_is_object(ev) && strcmp(str_of(ev, "type"), "session.activity") == 0) {
        if (as_json)
            printf("%.*s\n", (int)len, line);
        else
            print_activity(b, ev);
        fflush(stdout);
    }
    json_decref(ev);
}

int cli_watch(agent_registry *r, int argc, char **argv)
{
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0)
            return usage("watch", "takes only --json");
        as_json = true;
    }
    int fd = feed_connect();
    if (fd < 0)
        return 1;
    name_book b = {.r = r};
    if (!as_json)
        names_load(&b);
    static char buf[WATCH_LINE_MAX];
    size_t have = 0;
    bool skipping = false;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', have - (size_t)(start - buf))) != NULL) {
            if (!skipping)
                watch_line(&b, start, (size_t)(nl - start), as_json);
            skipping = false;
            start = nl + 1;
        }
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
        if (have == sizeof buf) { /* a line longer than any event: skip it */
            have = 0;
            skipping = true;
        }
    }
    close(fd);
    json_decref(b.names);
    return failed("the local feed closed");
}
