/* A growable text buffer with a hard size limit, for answers assembled from
 * pieces already encoded (issue 13: list joins each session's cached JSON
 * with its per-call fields instead of building and encoding 1,000 objects).
 * Once an append fails (limit or memory), the buffer stays failed, so a
 * caller may append a whole run of pieces and check once at the end. */
#ifndef CONVOCATE_COMMON_TEXTBUF_H
#define CONVOCATE_COMMON_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated while not failed */
    size_t len, cap;
    size_t limit; /* the most bytes it may ever hold, NUL excluded */
    bool failed;
    bool over_limit; /* why it failed: the limit, not memory */
} textbuf;

/* An empty buffer that will hold at most limit bytes; room for hint bytes
 * is reserved up front (0: none). Never fails: a failed reservation shows
 * as a failed buffer. */
void textbuf_init(textbuf *b, size_t limit, size_t hint);
/* Room for len more bytes now, so a run of appends does not regrow it. */
void textbuf_reserve(textbuf *b, size_t len);
void textbuf_append(textbuf *b, const char *text, size_t len);
void textbuf_append_str(textbuf *b, const char *text);
/* printf-style; a piece longer than 255 bytes is refused (fails the buffer). */
void textbuf_appendf(textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Marks the buffer failed: a piece could not be made (out of memory). */
void textbuf_fail(textbuf *b);
/* The text, malloc'd, given to the caller, and the buffer emptied; NULL when
 * it failed (the memory is freed then). */
char *textbuf_take(textbuf *b, size_t *len);
void textbuf_free(textbuf *b);

#endif
