/* peek and send (SPEC 16): the session's tmux pane read and typed into
 * without attaching, each through one Engine API exec of tmux run as
 * claude. The text to type is one argv element after "--", so neither a
 * shell nor tmux's option parser ever reads it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ops.h"
#include "common/log.h"
#include "proto/rpc.h"

#define PEEK_LINES_MAX 500
#define PEEK_SCREEN_MAX (256u * 1024u)
#define SEND_TEXT_MAX 4096
#define SMALL_OUTPUT 256

/* The session must exist; its name goes into messages. Whether it runs is
 * the exec's own answer (EXEC_NOT_RUNNING): asking the engine first would
 * cost a round trip on every peek, the TUI's preview's once a second. */
static int session_name(agent *a, const char *id, char *name, size_t size, char *err, size_t errlen)
{
    store_entry e;
    if (store_get(a->store, id, &e, err, errlen) < 0)
        return -1;
    snprintf(name, size, "%s", e.valid ? e.meta.name : id);
    store_entry_clear(&e);
    return 0;
}

/* Runs one tmux command line in the session; its stdout in out. A
 * non-zero exit is an error that quotes tmux's own words. */
static int run_tmux(agent *a, const char *id, const char *name, const char *const argv[],
                    size_t max_out, exec_output *out, char *err, size_t errlen)
{
    char why[256];
    int rc = docker_exec_capture(a->docker, id, argv, max_out, out, why, sizeof why);
    if (rc == EXEC_NOT_RUNNING) {
        snprintf(err, errlen, "session \"%s\" is not running", name);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s session \"%s\": %s", argv[1], name, why);
        return -1;
    }
    if (out->exit_code != 0) {
        snprintf(err, errlen, "%s session \"%s\": tmux exited %ld: %s", argv[1], name,
                 out->exit_code, out->errtext[0] ? out->errtext : "(no message)");
        exec_output_clear(out);
        return -1;
    }
    return 0;
}

/* The first line of the combined output is "<cols> <rows>"; the screen is
 * what follows it. */
static int split_size(exec_output *out, int *cols, int *rows, size_t *screen_at)
{
    char *nl = memchr(out->data, '\n', out->len);
    if (nl == NULL || sscanf(out->data, "%d %d", cols, rows) != 2 || *cols <= 0 || *rows <= 0)
        return -1;
    *screen_at = (size_t)(nl - out->data) + 1;
    return 0;
}

int op_peek(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", "lines", NULL};
    const char *id;
    long long lines = 0;
    char name[SESSION_NAME_MAX + 1], start[32];
    if (params_expect_object(params, 0, err, errlen) < 0 ||
        params_only_keys(params, keys, err, errlen) < 0 ||
        params_get_id(params, "id", &id, err, errlen) < 0 ||
        params_get_int(params, "lines", 0, PEEK_LINES_MAX, &lines, err, errlen) < 0 ||
        session_name(a, id, name, sizeof name, err, errlen) < 0)
        return -1;
    /* One exec: tmux runs both commands, separated by the ";" argument. -S -N
     * adds N lines of history above the visible screen. */
    snprintf(start, sizeof start, "-%lld", lines);
    const char *argv[] = {
        "tmux",   "display-message",       "-p",  "-t", "claude", "#{pane_width} #{pane_height}",
        ";",      "capture-pane",          "-p",  "-e", "-J",     "-t",
        "claude", lines > 0 ? "-S" : NULL, start, NULL};
    int cols, rows;
    size_t at;
    exec_output out;
    if (run_tmux(a, id, name, argv, PEEK_SCREEN_MAX + SMALL_OUTPUT, &out, err, errlen) < 0)
        return -1;
    if (split_size(&out, &cols, &rows, &at) < 0) {
        snprintf(err, errlen, "peek session \"%s\": tmux gave no pane size", name);
        exec_output_clear(&out);
        return -1;
    }
    char *text = out.data + at;
    size_t len = out.len - at;
    if (len > PEEK_SCREEN_MAX || out.truncated) {
        len = len > PEEK_SCREEN_MAX ? PEEK_SCREEN_MAX : len;
        log_info("peek %s: screen cut at %u bytes", id, PEEK_SCREEN_MAX);
    }
    /* tmux's output is the pane's bytes; a byte that makes the text invalid
     * UTF-8 (a cut character, a binary's output) would make it unencodable,
     * so then every non-ASCII byte is sent as '?' instead of failing. */
    json_t *screen = json_stringn(text, len);
    if (screen == NULL) {
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)text[i] >= 0x80)
                text[i] = '?';
        screen = json_stringn(text, len);
    }
    exec_output_clear(&out);
    *result = json_pack("{s:o*, s:i, s:i}", "screen", screen, "cols", cols, "rows", rows);
    return *result ? 0 : (snprintf(err, errlen, "peek: out of memory"), -1);
}

/* tmux ends a command at any argument whose last character is ';' (and
 * drops that ';'), unless a backslash comes before it, which it then drops
 * instead: "ls;" would be typed as "ls". So a text ending in ';' goes as
 * its text with "\;" in place of that last ';', which tmux reads back as
 * the text itself. malloc'd; NULL when out of memory. */
char *tmux_literal_arg(const char *text)
{
    size_t n = strlen(text);
    bool ends_in_semicolon = n > 0 && text[n - 1] == ';';
    char *arg = malloc(n + 2);
    if (arg == NULL)
        return NULL;
    memcpy(arg, text, n + 1);
    if (ends_in_semicolon)
        memcpy(arg + n - 1, "\\;", 3);
    return arg;
}

int op_send(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", "text", "enter", NULL};
    const char *id, *text = NULL;
    int enter = 1;
    char name[SESSION_NAME_MAX + 1];
    /* params_get_string refuses a NUL inside the text. */
    if (params_expect_object(params, 0, err, errlen) < 0 ||
        params_only_keys(params, keys, err, errlen) < 0 ||
        params_get_id(params, "id", &id, err, errlen) < 0 ||
        params_get_string(params, "text", SEND_TEXT_MAX, &text, err, errlen) < 0 ||
        params_get_bool(params, "enter", &enter, err, errlen) < 0)
        return -1;
    if (text == NULL || text[0] == '\0') {
        snprintf(err, errlen, "decode params: \"text\" is required (1 to %d bytes)", SEND_TEXT_MAX);
        return -1;
    }
    if (session_name(a, id, name, sizeof name, err, errlen) < 0)
        return -1;
    char *literal = tmux_literal_arg(text);
    if (literal == NULL) {
        snprintf(err, errlen, "send: out of memory");
        return -1;
    }
    /* The Enter goes in an exec of its own, after the text's has ended.
     * In one tmux command line (text ";" Enter) both reach the pane in one
     * burst, and Claude takes a burst for a paste: the Enter becomes a new
     * line in its input instead of sending the prompt (test_activity.py
     * caught it). */
    const char *type_argv[] = {"tmux", "send-keys", "-t", "claude", "-l", "--", literal, NULL};
    static const char *const enter_argv[] = {"tmux", "send-keys", "-t", "claude", "Enter", NULL};
    exec_output out;
    int rc = run_tmux(a, id, name, type_argv, SMALL_OUTPUT, &out, err, errlen);
    free(literal);
    if (rc < 0)
        return -1;
    exec_output_clear(&out);
    if (enter) {
        if (run_tmux(a, id, name, enter_argv, SMALL_OUTPUT, &out, err, errlen) < 0)
            return -1;
        exec_output_clear(&out);
    }
    *result = NULL;
    return 0;
}
