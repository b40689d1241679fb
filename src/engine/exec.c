/* Execs inside a session container through the Engine API: created,
 * started detached and polled for their exit code. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "engine/docker_internal.h"

#define EXEC_WAIT_S 10  /* tmux detach-client is instant; allow slack */
#define READY_WAIT_S 15 /* entrypoint: user, then tmux session */

/* ---- exec: detach tmux clients ----------------------------------------- */

int exec_create(docker_client *d, const char *name, const char *body, char *id, size_t idlen,
                char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/containers/%s/exec", name);
    docker_reply r;
    if (docker_call(d, "POST", path, body, QUICK_TIMEOUT_S, &r, err, errlen) < 0)
        return -1;
    int rc = -1;
    if (r.status == 201) {
        json_t *root = json_loadb(r.body, r.len, 0, NULL);
        const char *exec_id = json_string_value(json_object_get(root, "Id"));
        size_t n = exec_id ? strlen(exec_id) : 0;
        if (n > 0 && n < idlen && strspn(exec_id, "0123456789abcdef") == n) {
            memcpy(id, exec_id, n + 1);
            rc = 0;
        } else {
            snprintf(err, errlen, "docker engine sent an unreadable exec reply");
        }
        json_decref(root);
    } else if (r.status == 404 || r.status == 409) {
        snprintf(err, errlen, "container %s is not running", name);
    } else {
        describe_engine_error(&r, "exec in container", err, errlen);
    }
    reply_clear(&r);
    return rc;
}

/* An exec of cmd_json (a constant JSON array: never built from input) run
 * as user claude with nothing attached. */
static int exec_create_detached(docker_client *d, const char *name, const char *cmd_json, char *id,
                                size_t idlen, char *err, size_t errlen)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"User\":\"claude\",\"AttachStdin\":false,\"AttachStdout\":false,"
             "\"AttachStderr\":false,\"Tty\":false,\"Cmd\":%s}",
             cmd_json);
    return exec_create(d, name, body, id, idlen, err, errlen);
}

static int exec_start_detached(docker_client *d, const char *id, char *err, size_t errlen)
{
    static const long ok[] = {200, 204, 0};
    char path[256];
    snprintf(path, sizeof path, "/exec/%s/start", id);
    return docker_expect(d, "POST", path, "{\"Detach\":true,\"Tty\":false}", QUICK_TIMEOUT_S, ok,
                         NULL, "start exec", err, errlen);
}

/* Polls GET /exec/<id>/json until the process has ended; its exit code. */
static int exec_wait(docker_client *d, const char *id, long *exit_code, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/exec/%s/json", id);
    int64_t deadline = monotonic_ms() + EXEC_WAIT_S * 1000;
    while (monotonic_ms() < deadline) {
        docker_reply r;
        if (docker_call(d, "GET", path, NULL, QUICK_TIMEOUT_S, &r, err, errlen) < 0)
            return -1;
        if (r.status != 200) {
            describe_engine_error(&r, "inspect exec", err, errlen);
            reply_clear(&r);
            return -1;
        }
        json_t *root = json_loadb(r.body, r.len, 0, NULL);
        bool running = json_is_true(json_object_get(root, "Running"));
        json_t *code = json_object_get(root, "ExitCode");
        bool done = root != NULL && !running && json_is_integer(code);
        if (done)
            *exit_code = (long)json_integer_value(code);
        json_decref(root);
        reply_clear(&r);
        if (done)
            return 0;
        sleep_ms(50);
    }
    snprintf(err, errlen, "tmux detach-client did not finish within %d s", EXEC_WAIT_S);
    return -1;
}

/* Runs cmd_json as claude inside the container and waits for its exit code. */
static int run_exec(docker_client *d, const char *name, const char *cmd_json, long *exit_code,
                    char *err, size_t errlen)
{
    char exec_id[128];
    *exit_code = -1;
    if (exec_create_detached(d, name, cmd_json, exec_id, sizeof exec_id, err, errlen) < 0 ||
        exec_start_detached(d, exec_id, err, errlen) < 0 ||
        exec_wait(d, exec_id, exit_code, err, errlen) < 0)
        return -1;
    return 0;
}

/* `tmux detach-client -s claude` alone fails with "no current client" when
 * nobody is attached; guarding it with the session's attached count makes
 * "nothing to detach" a success. Still one argv, no shell. */
#define DETACH_ALL_CMD                                                                             \
    "[\"tmux\",\"if-shell\",\"-F\",\"-t\",\"claude\",\"#{session_attached}\","                     \
    "\"detach-client -s claude\"]"

int docker_detach_clients(docker_client *d, const char *uuid, char *err, size_t errlen)
{
    char name[ENGINE_CONTAINER_NAME_LEN];
    if (session_container(uuid, name, err, errlen) < 0)
        return -1;
    long exit_code;
    if (run_exec(d, name, DETACH_ALL_CMD, &exit_code, err, errlen) < 0)
        return -1;
    if (exit_code != 0) {
        snprintf(err, errlen, "tmux detach-client failed in %s (exit %ld)", name, exit_code);
        return -1;
    }
    return 0;
}

/* A started container is usable once its entrypoint has made the claude user
 * and the tmux session: an attach or a background right after a start must
 * find them. Errors while polling mean "not yet"; a container that stops
 * means its entrypoint failed. */
int wait_session_ready(docker_client *d, const char *name, char *err, size_t errlen)
{
    int64_t deadline = monotonic_ms() + READY_WAIT_S * 1000;
    while (monotonic_ms() < deadline) {
        long exit_code;
        char ignored[256];
        if (run_exec(d, name, "[\"tmux\",\"has-session\",\"-t\",\"claude\"]", &exit_code, ignored,
                     sizeof ignored) == 0 &&
            exit_code == 0)
            return 0;
        bool exists, running;
        if (inspect_state(d, name, &exists, &running, err, errlen) < 0)
            return -1;
        if (!running) {
            snprintf(err, errlen,
                     "container %s stopped right after starting: its entrypoint failed "
                     "(is the image a convocate session image?)",
                     name);
            return -1;
        }
        sleep_ms(100);
    }
    log_warn("%s: tmux session not up after %d s; leaving it running", name, READY_WAIT_S);
    return 0;
}
