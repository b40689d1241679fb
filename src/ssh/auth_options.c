/* authorized_keys options (see auth_options.h). sshd knows many options
 * (command=, restrict, no-pty, permitopen=, ...); our listeners have no
 * shell, pty or forwarding to restrict, so honouring them would mean
 * pretending. A key that carries one is refused instead, so that an
 * operator who wrote a restriction never believes it is in force. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "common/addr_pattern.h"
#include "ssh/auth_options.h"

#define OPTION_NAME_MAX 64

typedef struct {
    const char *p, *end;
    char name[OPTION_NAME_MAX + 1];
    char *value; /* malloc'd, NULL when the option has no "=..." */
} option_cursor;

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '@' || c == '.';
}

/* The quoted value at cur->p (just past '='): copies it with `\"` made a
 * quote. -1 when it is not quoted or not closed. */
static int take_value(option_cursor *cur)
{
    if (cur->p >= cur->end || *cur->p != '"')
        return -1;
    cur->p++;
    cur->value = malloc((size_t)(cur->end - cur->p) + 1);
    if (cur->value == NULL)
        return -2;
    size_t n = 0;
    while (cur->p < cur->end && *cur->p != '"') {
        if (*cur->p == '\\' && cur->p + 1 < cur->end && cur->p[1] == '"')
            cur->p++;
        cur->value[n++] = *cur->p++;
    }
    cur->value[n] = '\0';
    if (cur->p >= cur->end)
        return -1; /* the quote was never closed */
    cur->p++;
    return 0;
}

/* The next option: 1 when one was read, 0 at the end, -1 when malformed,
 * -2 when out of memory. */
static int next_option(option_cursor *cur)
{
    free(cur->value);
    cur->value = NULL;
    if (cur->p >= cur->end)
        return 0;
    size_t n = 0;
    while (cur->p < cur->end && name_char(*cur->p)) {
        if (n >= OPTION_NAME_MAX)
            return -1;
        cur->name[n++] = *cur->p++;
    }
    cur->name[n] = '\0';
    if (n == 0)
        return -1;
    if (cur->p < cur->end && *cur->p == '=') {
        cur->p++;
        int rc = take_value(cur);
        if (rc < 0)
            return rc;
    }
    if (cur->p < cur->end) {
        if (*cur->p != ',' || cur->p + 1 >= cur->end)
            return -1; /* options are separated by one comma, none trails */
        cur->p++;
    }
    return 1;
}

static enum auth_options_result take_from(option_cursor *cur, char **from, char *why, size_t whylen)
{
    char err[160];
    if (cur->value == NULL) {
        snprintf(why, whylen, "option \"from\" needs a value: from=\"pattern-list\"");
        return AUTH_OPTIONS_REFUSED;
    }
    if (*from != NULL) {
        snprintf(why, whylen, "option \"from\" given twice");
        return AUTH_OPTIONS_REFUSED;
    }
    if (addr_pattern_check(cur->value, err, sizeof err) < 0) {
        snprintf(why, whylen, "option \"from\": %s", err);
        return AUTH_OPTIONS_REFUSED;
    }
    *from = cur->value;
    cur->value = NULL; /* now the caller's */
    return AUTH_OPTIONS_OK;
}

enum auth_options_result auth_options_parse(const char *opts, size_t len, char **from, char *why,
                                            size_t whylen)
{
    option_cursor cur = {.p = opts, .end = opts + len};
    enum auth_options_result rc = AUTH_OPTIONS_OK;
    *from = NULL;
    for (;;) {
        int got = next_option(&cur);
        if (got == 0)
            break;
        if (got == -2) {
            rc = AUTH_OPTIONS_NOMEM;
            break;
        }
        if (got < 0) {
            snprintf(why, whylen, "malformed options field near \"%.32s\"", cur.p);
            rc = AUTH_OPTIONS_REFUSED;
            break;
        }
        if (strcasecmp(cur.name, "from") == 0) {
            rc = take_from(&cur, from, why, whylen);
        } else {
            snprintf(why, whylen, "option \"%s\" is not supported (only from= is honoured)",
                     cur.name);
            rc = AUTH_OPTIONS_REFUSED;
        }
        if (rc != AUTH_OPTIONS_OK)
            break;
    }
    free(cur.value);
    if (rc != AUTH_OPTIONS_OK) {
        free(*from);
        *from = NULL;
    }
    return rc;
}
