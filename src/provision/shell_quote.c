#include "provision/shell_quote.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Words left bare keep -v logs readable. Never bare: '=' (a first word
 * "A=B" would be an assignment, zsh expands "=word"), '~', '*', '?', '[',
 * '#', '%', '!', '{', '$', quotes, blanks and the like. */
static bool is_plain(const char *word)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_/.,:+-";
    return word[0] != '\0' && strspn(word, plain) == strlen(word);
}

/* Writes c at out[at] when it fits; always counts it. */
static void put(char *buf, size_t size, size_t at, char c)
{
    if (at + 1 < size)
        buf[at] = c;
}

size_t shell_quote_word(const char *word, char *buf, size_t size)
{
    size_t start = size > 0 ? strnlen(buf, size) : 0, at = start;
    if (is_plain(word)) {
        for (const char *p = word; *p; p++)
            put(buf, size, at++, *p);
    } else {
        /* Inside '...' every byte is literal, newlines included; a quote
         * itself closes, adds an escaped quote, and reopens: '\'' */
        put(buf, size, at++, '\'');
        for (const char *p = word; *p; p++) {
            if (*p == '\'') {
                static const char esc[] = "'\\''";
                for (size_t i = 0; i < sizeof esc - 1; i++)
                    put(buf, size, at++, esc[i]);
            } else {
                put(buf, size, at++, *p);
            }
        }
        put(buf, size, at++, '\'');
    }
    if (size > 0)
        buf[at < size ? at : size - 1] = '\0';
    return at - start;
}

char *shell_quote_argv(char *const argv[])
{
    if (argv == NULL || argv[0] == NULL)
        return NULL;
    /* Worst case per word: every byte a quote (4 bytes), two outer quotes
     * and a separator. */
    size_t need = 1;
    for (size_t i = 0; argv[i] != NULL; i++) {
        size_t n = strlen(argv[i]);
        if (n > (SIZE_MAX - need - 3) / 4)
            return NULL;
        need += 4 * n + 3;
    }
    char *out = malloc(need);
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; argv[i] != NULL; i++) {
        if (i > 0)
            strcat(out, " ");
        shell_quote_word(argv[i], out, need);
    }
    return out;
}
