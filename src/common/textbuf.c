#include "common/textbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXTBUF_FIRST 256
#define TEXTBUF_PIECE_MAX 256

static void fail(textbuf *b, bool over_limit)
{
    b->failed = true;
    b->over_limit = b->over_limit || over_limit;
}

/* Room for need more bytes and the NUL; false (and failed) when not. */
static bool reserve(textbuf *b, size_t need)
{
    if (b->failed)
        return false;
    if (need > b->limit - b->len) {
        fail(b, true);
        return false;
    }
    size_t want = b->len + need + 1;
    if (want <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : TEXTBUF_FIRST;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    char *data = realloc(b->data, cap);
    if (data == NULL) {
        fail(b, false);
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

void textbuf_init(textbuf *b, size_t limit, size_t hint)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
    if (reserve(b, hint < limit ? hint : limit))
        b->data[0] = '\0';
}

void textbuf_reserve(textbuf *b, size_t len)
{
    reserve(b, len < b->limit - b->len ? len : b->limit - b->len);
}

void textbuf_append(textbuf *b, const char *text, size_t len)
{
    if (!reserve(b, len))
        return;
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void textbuf_append_str(textbuf *b, const char *text)
{
    textbuf_append(b, text, strlen(text));
}

void textbuf_appendf(textbuf *b, const char *fmt, ...)
{
    char piece[TEXTBUF_PIECE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(piece, sizeof piece, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof piece) {
        fail(b, false);
        return;
    }
    textbuf_append(b, piece, (size_t)n);
}

void textbuf_fail(textbuf *b)
{
    fail(b, false);
}

char *textbuf_take(textbuf *b, size_t *len)
{
    char *text = b->failed ? NULL : b->data;
    if (text == NULL)
        free(b->data);
    else if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return text;
}

void textbuf_free(textbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
