/* One command on one SSH exec channel: input on stdin, stdout and stderr
 * collected within bounds, a deadline for the whole exchange. */
#ifndef CONVOCATE_SSH_EXEC_H
#define CONVOCATE_SSH_EXEC_H

#include <libssh/libssh.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A bounded capture: bytes past max are read and dropped (truncated set),
 * so a chatty command can neither stall the channel nor grow memory. */
typedef struct {
    char *data; /* NUL-terminated, malloc'd */
    size_t len, max;
    bool truncated;
} exec_buf;

/* A streaming source for stdin: fills buf with up to cap bytes; returns
 * the count, 0 at the end, -1 to abort (err says why). */
typedef ssize_t (*exec_feed_fn)(void *ctx, char *buf, size_t cap, char *err, size_t errlen);

typedef struct {
    const void *input; /* sent on stdin, then EOF */
    size_t input_len;
    exec_feed_fn feed; /* instead of input: stdin pulled chunk by chunk */
    void *feed_ctx;
    exec_buf *out;     /* stdout; NULL: dropped */
    exec_buf *err_out; /* stderr; NULL: dropped; may equal out to merge */
    bool stream;       /* copy both streams to our stderr as they arrive */
    int timeout;       /* seconds for the whole command */
} exec_request;

void exec_buf_init(exec_buf *b, size_t max);
void exec_buf_free(exec_buf *b);
/* Appends src's bytes to dst within dst's bound; -1 when out of memory. */
int exec_buf_append(exec_buf *dst, const exec_buf *src);
/* The last non-empty line of b (for one-line error messages), at most
 * size-1 bytes; "" when there is none. */
void exec_buf_last_line(const exec_buf *b, char *out, size_t size);

/* Runs command; returns its exit status (0..255), or -1 with err when it
 * could not run, timed out, or ended without a status (a signal). */
int remote_exec(ssh_session s, const char *command, const exec_request *rq, char *err,
                size_t errlen);

#endif
