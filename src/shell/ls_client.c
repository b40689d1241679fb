/* See ls_client.h. The whole answer is read and checked before anything is
 * printed, so that a service that dies half-way leaves the CLI free to ask
 * the agents itself instead of printing half a list. */
#include "shell/ls_client.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "shell/ls_service.h"

/* The acknowledgement, a header line and the body, at most. */
#define ANSWER_MAX ((size_t)LS_HEADER_MAX + LS_BODY_MAX)
#define REQUEST "{\"op\":\"ls\",\"format\":\"json\"}\n"

typedef struct {
    int fd;
    int64_t deadline_ms;
    char *buf; /* what has come in: buf[0..len) */
    size_t len, cap;
} answer_reader;

/* Connects to path; -1 with errno when nothing listens there. */
static int dial(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Reads until buf holds at least want bytes or the peer closes; -1 with err
 * on a timeout, a read error or more than ANSWER_MAX bytes. */
static int read_until(answer_reader *r, size_t want, char *err, size_t errlen)
{
    const size_t max = ANSWER_MAX;
    while (r->len < want) {
        if (r->len == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 64 * 1024;
            if (cap > max + 1)
                cap = max + 1;
            char *grown = cap > r->cap ? realloc(r->buf, cap) : NULL;
            if (grown == NULL) {
                snprintf(err, errlen, "its answer is larger than %zu bytes", max);
                return -1;
            }
            r->buf = grown;
            r->cap = cap;
        }
        int64_t left = r->deadline_ms - monotonic_ms();
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            snprintf(err, errlen, "no whole answer within the time allowed");
            return -1;
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "reading its answer: %s", strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0; /* closed: the caller sees what is missing */
        r->len += (size_t)n;
    }
    return 0;
}

/* The header line's fields; -1 with err when it is not a good header. */
static int parse_header(const char *line, size_t len, size_t *bytes, size_t *agents,
                        size_t *sessions, char **warnings, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *h = json_loadb(line, len, 0, &jerr);
    json_t *ok = json_object_get(h, "ok");
    int rc = -1;
    if (json_is_false(ok)) {
        const char *text = json_string_value(json_object_get(h, "error"));
        snprintf(err, errlen, "it said: %s", text ? text : "(no reason given)");
    } else if (!json_is_true(ok)) {
        snprintf(err, errlen, "its answer does not start with a header line");
    } else {
        json_int_t b = json_integer_value(json_object_get(h, "bytes"));
        json_int_t a = json_integer_value(json_object_get(h, "agents"));
        json_int_t s = json_integer_value(json_object_get(h, "sessions"));
        const char *w = json_string_value(json_object_get(h, "stderr"));
        if (b <= 0 || (size_t)b > LS_BODY_MAX || a < 0 || s < 0 || w == NULL) {
            snprintf(err, errlen, "its header line is malformed");
        } else if ((*warnings = strdup(w)) == NULL) {
            snprintf(err, errlen, "out of memory");
        } else {
            *bytes = (size_t)b;
            *agents = (size_t)a;
            *sessions = (size_t)s;
            rc = 0;
        }
    }
    json_decref(h);
    return rc;
}

/* Reads until a newline at or after from; *nl is its index. -1 with err
 * when the line is longer than max, or the wait or the connection ends. */
static int read_line(answer_reader *r, size_t from, size_t max, size_t *nl, char *err,
                     size_t errlen)
{
    const char *found;
    while ((found = memchr(r->buf + from, '\n', r->len - from)) == NULL) {
        size_t had = r->len;
        if (had - from >= max) {
            snprintf(err, errlen, "a line of its answer is longer than %zu bytes", max);
            return -1;
        }
        if (read_until(r, had + 1, err, errlen) < 0)
            return -1;
        if (r->len == had) {
            snprintf(err, errlen, "it closed the connection without an answer");
            return -1;
        }
    }
    *nl = (size_t)(found - r->buf);
    return 0;
}

/* Waits LS_ACK_TIMEOUT_MS for the service to take the request: a service
 * that is stuck, or busy with another client's list, is not waited for. A
 * service that refuses the request says why instead. */
static int read_ack(answer_reader *r, char *err, size_t errlen)
{
    int64_t whole = r->deadline_ms, ack_deadline = monotonic_ms() + LS_ACK_TIMEOUT_MS;
    r->deadline_ms = ack_deadline;
    size_t nl, unused;
    int rc = read_line(r, 0, LS_HEADER_MAX, &nl, err, errlen);
    r->deadline_ms = whole;
    if (rc < 0) {
        if (monotonic_ms() >= ack_deadline)
            snprintf(err, errlen,
                     "it did not take the request within %d ms: busy with another "
                     "list, or stuck",
                     LS_ACK_TIMEOUT_MS);
        return -1;
    }
    if (nl + 1 == strlen(LS_ACK) && memcmp(r->buf, LS_ACK, nl + 1) == 0)
        return 0;
    char *warnings = NULL; /* a refusal is a header line that says ok false */
    if (parse_header(r->buf, nl, &unused, &unused, &unused, &warnings, err, errlen) == 0)
        snprintf(err, errlen, "its answer does not start with the acknowledgement line");
    free(warnings);
    return -1;
}

/* Reads the acknowledgement, the header and the body it announces; the
 * body is r->buf[*body..). */
static int read_answer(answer_reader *r, size_t *body, size_t *agents, size_t *sessions,
                       char **warnings, char *err, size_t errlen)
{
    size_t header = strlen(LS_ACK), nl, bytes = 0;
    if (read_ack(r, err, errlen) < 0 || read_line(r, header, LS_HEADER_MAX, &nl, err, errlen) < 0 ||
        parse_header(r->buf + header, nl - header, &bytes, agents, sessions, warnings, err,
                     errlen) < 0)
        return -1;
    *body = nl + 1;
    if (read_until(r, *body + bytes, err, errlen) < 0)
        return -1;
    if (r->len != *body + bytes) {
        snprintf(err, errlen, "its answer held %zu bytes of the %zu it announced", r->len - *body,
                 bytes);
        return -1;
    }
    return 0;
}

enum ls_client_result ls_client_print(const char *path, int timeout_s, FILE *out, size_t *agents,
                                      size_t *sessions, char *err, size_t errlen)
{
    int fd = dial(path);
    if (fd < 0)
        return LS_CLIENT_NO_SERVICE;
    answer_reader r = {fd, monotonic_ms() + (int64_t)timeout_s * 1000, NULL, 0, 0};
    char *warnings = NULL;
    size_t body = 0;
    enum ls_client_result rc = LS_CLIENT_FAILED;
    ssize_t sent = send(fd, REQUEST, strlen(REQUEST), MSG_NOSIGNAL);
    if (sent != (ssize_t)strlen(REQUEST)) {
        snprintf(err, errlen, "sending the request: %s",
                 sent < 0 ? strerror(errno) : "short write");
    } else if (read_answer(&r, &body, agents, sessions, &warnings, err, errlen) == 0) {
        fputs(warnings, stderr);
        if (fwrite(r.buf + body, 1, r.len - body, out) == r.len - body && fflush(out) == 0) {
            rc = LS_CLIENT_PRINTED;
        } else {
            snprintf(err, errlen, "cannot write the list: %s", strerror(errno));
            rc = LS_CLIENT_UNWRITTEN;
        }
    }
    free(warnings);
    free(r.buf);
    close(fd);
    return rc;
}
