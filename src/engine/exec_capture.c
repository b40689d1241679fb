/* A non-interactive exec whose output we keep: peek and send (SPEC 16).
 *
 * POST /containers/<name>/exec with stdout and stderr attached and no TTY,
 * then POST /exec/<id>/start with Detach false: the engine answers with the
 * raw stream, multiplexed in frames of an 8-byte header (stream type, three
 * zero bytes, big-endian length) and the payload, and closes it when the
 * process ends. The exit code comes from GET /exec/<id>/json afterwards,
 * once the stream's end said the process is gone (asked again only in the
 * moment before the engine has recorded the exit). The argv travels as a JSON array, so no shell
 * ever parses it. Nobody inspects the container first: the exec's create
 * answers 404 or 409 when it is gone or stopped, which is the one answer
 * "not running" needs (EXEC_NOT_RUNNING). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "engine/docker_internal.h"

#define FRAME_HEADER 8
#define STDERR_KEPT 200
#define EXIT_SETTLE_MS 1000 /* an exec's exit recorded after its stream closed */

static int capture_create(docker_client *d, const char *name, const exec_request *req, char *id,
                          size_t idlen, char *err, size_t errlen)
{
    json_t *cmd = json_array();
    for (size_t i = 0; cmd != NULL && req->argv[i] != NULL; i++)
        if (json_array_append_new(cmd, json_string(req->argv[i])) < 0) {
            json_decref(cmd);
            cmd = NULL;
        }
    json_t *spec =
        cmd ? json_pack("{s:s, s:b, s:b, s:b, s:b, s:o}", "User", req->user, "AttachStdin", 0,
                        "AttachStdout", 1, "AttachStderr", 1, "Tty", 0, "Cmd", cmd)
            : NULL;
    char *body = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    json_decref(spec);
    if (body == NULL) {
        snprintf(err, errlen, "exec: out of memory (or an argument is not UTF-8)");
        return -1;
    }
    int rc = exec_create(d, name, body, id, idlen, err, errlen);
    free(body);
    return rc;
}

/* Splits the multiplexed stream: stdout into out (up to max_out bytes, the
 * rest counted as truncated), the first bytes of stderr into errtext. */
static int demux(const docker_reply *r, size_t max_out, exec_output *out, char *err, size_t errlen)
{
    size_t pos = 0, kept_err = 0;
    while (pos < r->len) {
        if (r->len - pos < FRAME_HEADER) {
            snprintf(err, errlen, "docker engine sent a cut exec stream frame");
            return -1;
        }
        const unsigned char *h = (const unsigned char *)r->body + pos;
        size_t n = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) | ((size_t)h[6] << 8) | h[7];
        pos += FRAME_HEADER;
        if (n > r->len - pos || h[0] > 2) {
            snprintf(err, errlen, "docker engine sent a malformed exec stream frame");
            return -1;
        }
        const char *payload = r->body + pos;
        if (h[0] == 1) {
            size_t room = max_out - out->len;
            size_t take = n < room ? n : room;
            memcpy(out->data + out->len, payload, take);
            out->len += take;
            out->truncated |= take < n;
        } else if (h[0] == 2 && kept_err < STDERR_KEPT) {
            size_t take = n < STDERR_KEPT - kept_err ? n : STDERR_KEPT - kept_err;
            memcpy(out->errtext + kept_err, payload, take);
            kept_err += take;
        }
        pos += n;
    }
    out->data[out->len] = '\0';
    out->errtext[kept_err] = '\0';
    /* One line for messages: the first line of stderr. */
    out->errtext[strcspn(out->errtext, "\r\n")] = '\0';
    return 0;
}

static int capture_start(docker_client *d, const char *id, const exec_request *req,
                         exec_output *out, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/exec/%s/start", id);
    docker_reply r;
    if (docker_call(d, "POST", path, "{\"Detach\":false,\"Tty\":false}", req->timeout_s, &r, err,
                    errlen) < 0)
        return -1;
    int rc = -1;
    if (r.status != 200)
        describe_engine_error(&r, "start exec", err, errlen);
    else
        rc = demux(&r, req->max_out, out, err, errlen);
    reply_clear(&r);
    return rc;
}

/* One GET /exec/<id>/json: 1 with *code when the exec has ended, 0 when
 * the engine still calls it running, -1 with err. */
static int exec_inspect_once(docker_client *d, const char *path, long *code, char *err,
                             size_t errlen)
{
    docker_reply r;
    if (docker_call(d, "GET", path, NULL, QUICK_TIMEOUT_S, &r, err, errlen) < 0)
        return -1;
    json_t *root = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    json_t *v = json_object_get(root, "ExitCode");
    int rc = -1;
    if (root != NULL && json_is_true(json_object_get(root, "Running"))) {
        rc = 0;
    } else if (json_is_integer(v)) {
        *code = (long)json_integer_value(v);
        rc = 1;
    } else if (r.status != 200) {
        describe_engine_error(&r, "inspect exec", err, errlen);
    } else {
        snprintf(err, errlen, "docker engine sent no exit code for the exec");
    }
    json_decref(root);
    reply_clear(&r);
    return rc;
}

/* The stream can close a moment before the engine has recorded the exit:
 * then it is asked again, a few ms apart, for at most EXIT_SETTLE_MS. */
int exec_exit_code(docker_client *d, const char *id, long *code, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/exec/%s/json", id);
    int64_t deadline = monotonic_ms() + EXIT_SETTLE_MS;
    for (;;) {
        int rc = exec_inspect_once(d, path, code, err, errlen);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        if (monotonic_ms() >= deadline) {
            snprintf(err, errlen, "the exec's stream ended but the engine still runs it");
            return -1;
        }
        sleep_ms(5);
    }
}

int exec_capture_named(docker_client *d, const char *name, const exec_request *req,
                       exec_output *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->exit_code = -1;
    char id[128];
    out->data = malloc(req->max_out + 1);
    if (out->data == NULL) {
        snprintf(err, errlen, "exec: out of memory");
        return -1;
    }
    int created = capture_create(d, name, req, id, sizeof id, err, errlen);
    if (created < 0 || capture_start(d, id, req, out, err, errlen) < 0 ||
        exec_exit_code(d, id, &out->exit_code, err, errlen) < 0) {
        exec_output_clear(out);
        return created == EXEC_NOT_RUNNING ? EXEC_NOT_RUNNING : -1;
    }
    return 0;
}

int docker_exec_capture(docker_client *d, const char *uuid, const char *const argv[],
                        size_t max_out, exec_output *out, char *err, size_t errlen)
{
    char name[ENGINE_CONTAINER_NAME_LEN];
    memset(out, 0, sizeof *out);
    out->exit_code = -1;
    if (session_container(uuid, name, err, errlen) < 0)
        return -1;
    const exec_request req = {"claude", argv, QUICK_TIMEOUT_S, max_out};
    return exec_capture_named(d, name, &req, out, err, errlen);
}

void exec_output_clear(exec_output *out)
{
    free(out->data);
    out->data = NULL;
    out->len = 0;
}
