/* See session_json.h. */
#include "shell/session_json.h"

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

int session_json_print(FILE *out, char *const *items, size_t n)
{
    if (n == 0)
        return fputs("[]\n", out) < 0 ? -1 : 0;
    if (fputs("[\n", out) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (fputs(items[i], out) < 0 || fputs(i + 1 < n ? ",\n" : "\n]\n", out) < 0)
            return -1;
    }
    return fflush(out) == 0 ? 0 : -1;
}
