#include "ssh/exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "ssh/channel_io.h"

#define READ_SLICE_MS 200
#define CHUNK 16384

void exec_buf_init(exec_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void exec_buf_free(exec_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int exec_buf_add(exec_buf *b, const char *data, size_t n)
{
    size_t room = b->max - b->len;
    size_t take = n < room ? n : room;
    if (take < n)
        b->truncated = true;
    if (b->data == NULL || take > 0) {
        char *grown = realloc(b->data, b->len + take + 1);
        if (grown == NULL)
            return -1;
        b->data = grown;
        memcpy(b->data + b->len, data, take);
        b->len += take;
        b->data[b->len] = '\0';
    }
    return 0;
}

int exec_buf_append(exec_buf *dst, const exec_buf *src)
{
    if (src->data == NULL)
        return 0;
    if (exec_buf_add(dst, src->data, src->len) < 0)
        return -1;
    dst->truncated = dst->truncated || src->truncated;
    return 0;
}

void exec_buf_last_line(const exec_buf *b, char *out, size_t size)
{
    out[0] = '\0';
    if (b == NULL || b->data == NULL)
        return;
    size_t end = b->len;
    while (end > 0 && (b->data[end - 1] == '\n' || b->data[end - 1] == '\r'))
        end--;
    size_t start = end;
    while (start > 0 && b->data[start - 1] != '\n')
        start--;
    snprintf(out, size, "%.*s", (int)(end - start), b->data + start);
}

/* A large upload is pulled from its source one chunk at a time, so memory
 * stays bounded whatever the file's size. */
static int send_feed(ssh_channel ch, const exec_request *rq, char *err, size_t errlen)
{
    char buf[CHUNK];
    for (;;) {
        ssize_t n = rq->feed(rq->feed_ctx, buf, sizeof buf, err, errlen);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (channel_write_all(ch, buf, (size_t)n) < 0) {
            snprintf(err, errlen, "cannot send input: %s",
                     ssh_get_error(ssh_channel_get_session(ch)));
            return -1;
        }
    }
}

static int send_input(ssh_channel ch, const exec_request *rq, char *err, size_t errlen)
{
    if (rq->feed != NULL) {
        if (send_feed(ch, rq, err, errlen) < 0)
            return -1;
    } else if (channel_write_all(ch, rq->input, rq->input_len) < 0) {
        snprintf(err, errlen, "cannot send input: %s", ssh_get_error(ssh_channel_get_session(ch)));
        return -1;
    }
    if (ssh_channel_send_eof(ch) != SSH_OK) {
        snprintf(err, errlen, "cannot send input: %s", ssh_get_error(ssh_channel_get_session(ch)));
        return -1;
    }
    return 0;
}

static int take(exec_buf *b, const char *data, int n, bool stream)
{
    if (stream) {
        fwrite(data, 1, (size_t)n, stderr);
        fflush(stderr);
    }
    return b != NULL ? exec_buf_add(b, data, (size_t)n) : 0;
}

/* Reads both streams until the remote side's EOF or the deadline. */
static int collect(ssh_channel ch, const exec_request *rq, int64_t deadline_ms, char *err,
                   size_t errlen)
{
    char buf[CHUNK];
    for (;;) {
        if (monotonic_ms() > deadline_ms) {
            snprintf(err, errlen, "timed out after %d s", rq->timeout);
            return -1;
        }
        int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, READ_SLICE_MS);
        if (n == SSH_ERROR)
            break;
        if (n > 0 && take(rq->out, buf, n, rq->stream) < 0)
            goto oom;
        int m;
        while ((m = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 1)) > 0)
            if (take(rq->err_out, buf, m, rq->stream) < 0)
                goto oom;
        if (m == SSH_ERROR)
            break;
        if (n == 0 && (ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch)))
            return 0;
    }
    snprintf(err, errlen, "the connection broke: %s", ssh_get_error(ssh_channel_get_session(ch)));
    return -1;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

int remote_exec(ssh_session s, const char *command, const exec_request *rq, char *err,
                size_t errlen)
{
    int64_t deadline_ms = monotonic_ms() + (int64_t)(rq->timeout > 0 ? rq->timeout : 60) * 1000;
    ssh_channel ch = ssh_channel_new(s);
    if (ch == NULL || ssh_channel_open_session(ch) != SSH_OK ||
        ssh_channel_request_exec(ch, command) != SSH_OK) {
        snprintf(err, errlen, "cannot start a command: %s", ssh_get_error(s));
        if (ch != NULL)
            ssh_channel_free(ch);
        return -1;
    }
    int status = -1;
    if (send_input(ch, rq, err, errlen) == 0 && collect(ch, rq, deadline_ms, err, errlen) == 0) {
        status = ssh_channel_get_exit_status(ch);
        if (status < 0)
            snprintf(err, errlen, "the command ended without an exit status (killed?)");
    }
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    return status;
}
