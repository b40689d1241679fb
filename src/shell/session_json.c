/* See session_json.h. */
#include "shell/session_json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_INDENT "  "
#define ITEM_INDENT_LEN 2

char *session_json_render(json_t *session)
{
    char *flat = json_dumps(session, JSON_INDENT(2));
    if (flat == NULL)
        return NULL;
    /* A newline in the encoding is always jansson's own: one inside a
     * string is escaped as \n. So every line is shifted by the same indent. */
    size_t len = 0, lines = 1;
    for (; flat[len] != '\0'; len++)
        lines += flat[len] == '\n';
    char *text = malloc(len + lines * ITEM_INDENT_LEN + 1);
    if (text != NULL) {
        char *w = text;
        const char *line = flat;
        for (;;) {
            const char *nl = strchr(line, '\n');
            size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
            memcpy(w, ITEM_INDENT, ITEM_INDENT_LEN);
            memcpy(w + ITEM_INDENT_LEN, line, n);
            w += ITEM_INDENT_LEN + n;
            if (nl == NULL)
                break;
            line = nl + 1;
        }
        *w = '\0';
    }
    free(flat);
    return text;
}

/* Output gathered into writes of this size: a pipe to a script then takes
 * 4 MB in sixty-odd writes instead of a thousand of stdio's 4 KiB. */
#define WRITE_CHUNK (64 * 1024)

typedef struct {
    FILE *out;
    size_t used;
    bool failed;
    char buf[WRITE_CHUNK];
} chunked_writer;

static void flush_chunk(chunked_writer *w)
{
    if (w->used && fwrite(w->buf, 1, w->used, w->out) != w->used)
        w->failed = true;
    w->used = 0;
}

static void put(chunked_writer *w, const char *text, size_t n)
{
    if (w->used + n > sizeof w->buf)
        flush_chunk(w);
    if (n > sizeof w->buf) {
        if (fwrite(text, 1, n, w->out) != n)
            w->failed = true;
        return;
    }
    memcpy(w->buf + w->used, text, n);
    w->used += n;
}

int session_json_print(FILE *out, char *const *items, size_t n)
{
    chunked_writer *w = malloc(sizeof *w);
    if (w == NULL)
        return -1;
    w->out = out;
    w->used = 0;
    w->failed = false;
    put(w, n ? "[\n" : "[]\n", n ? 2 : 3);
    for (size_t i = 0; i < n; i++) {
        put(w, items[i], strlen(items[i]));
        put(w, i + 1 < n ? ",\n" : "\n]\n", i + 1 < n ? 2 : 3);
    }
    flush_chunk(w);
    bool failed = w->failed;
    free(w);
    return failed || fflush(out) != 0 ? -1 : 0;
}

size_t session_json_length(char *const *items, size_t n)
{
    if (n == 0)
        return strlen("[]\n");
    /* "[\n", then the items with ",\n" between them, then "\n]\n" */
    size_t len = strlen("[\n") + 2 * (n - 1) + strlen("\n]\n");
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]);
    return len;
}
