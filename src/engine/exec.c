/* Execs inside a session container through the Engine API: created, then
 * started attached, so the engine's answer ends exactly when the process
 * does (no polling), and their exit code read once. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "engine/docker_internal.h"

#define EXEC_WAIT_S 10      /* tmux detach-client is instant; allow slack */
#define READY_WAIT_S 15     /* entrypoint: user, then tmux session */
#define EXIT_SETTLE_MS 1000 /* an exec's exit recorded after its stream closed */

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
 * as user (a constant) with its output attached, so that its start below
 * returns exactly when it ends. */
static int exec_create_attached(docker_client *d, const char *name, const char *user,
                                const char *cmd_json, char *id, size_t idlen, char *err,
                                size_t errlen)
{
    char body[1024];
    if (snprintf(body, sizeof body,
                 "{\"User\":\"%s\",\"AttachStdin\":false,\"AttachStdout\":true,"
                 "\"AttachStderr\":true,\"Tty\":false,\"Cmd\":%s}",
                 user, cmd_json) >= (int)sizeof body) {
        snprintf(err, errlen, "exec command too long");
        return -1;
    }
    return exec_create(d, name, body, id, idlen, err, errlen);
}

/* Starts the exec attached: the engine streams its output and closes the
 * stream when the process ends, so no polling and no sleep; the few bytes
 * of output (error lines) are dropped. */
static int exec_start_until_exit(docker_client *d, const char *id, long timeout_s, char *err,
                                 size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/exec/%s/start", id);
    docker_reply r;
    if (docker_call(d, "POST", path, "{\"Detach\":false,\"Tty\":false}", timeout_s, &r, err,
                    errlen) < 0)
        return -1;
    int rc = 0;
    if (r.status != 200) {
        describe_engine_error(&r, "start exec", err, errlen);
        rc = -1;
    }
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

/* Runs cmd_json as user inside the container and waits for its exit code. */
static int run_exec(docker_client *d, const char *name, const char *user, const char *cmd_json,
                    long timeout_s, long *exit_code, char *err, size_t errlen)
{
    char exec_id[128];
    *exit_code = -1;
    if (exec_create_attached(d, name, user, cmd_json, exec_id, sizeof exec_id, err, errlen) < 0 ||
        exec_start_until_exit(d, exec_id, timeout_s, err, errlen) < 0 ||
        exec_exit_code(d, exec_id, exit_code, err, errlen) < 0)
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
    if (run_exec(d, name, "claude", DETACH_ALL_CMD, EXEC_WAIT_S, &exit_code, err, errlen) < 0)
        return -1;
    if (exit_code != 0) {
        snprintf(err, errlen, "tmux detach-client failed in %s (exit %ld)", name, exit_code);
        return -1;
    }
    return 0;
}

/* The readiness probe, run once as root inside the container: it asks
 * tmux as claude (as the operator's attach will) until the session answers,
 * and ends at once when it does, so the start returns within a few ms of
 * the session being usable. It runs in the container's cgroup, next to the
 * entrypoint it waits for, so each try is cheap: a shell test for a tmux
 * server socket under /tmp (tmux's default place, no process), and only
 * when one exists setpriv + tmux has-session (setpriv, not runuser: no PAM
 * session). At most READY_TRIES tries 20 ms apart (READY_WAIT_S); exit 1
 * then. A constant: nothing from input. */
#define READY_TRIES "750"
#define READY_CMD                                                                                  \
    "[\"sh\",\"-c\",\"i=0; while [ $i -lt " READY_TRIES " ]; do "                                  \
    "for s in /tmp/tmux-*/default; do [ -S $s ] && "                                               \
    "setpriv --reuid claude --regid claude --init-groups tmux has-session -t claude "              \
    "2>/dev/null && exit 0; done; "                                                                \
    "sleep 0.02; i=$((i+1)); done; exit 1\"]"

/* A started container is usable once its entrypoint has made the claude user
 * and the tmux session: an attach or a background right after a start must
 * find them. A probe that cannot run or gives up while the container still
 * runs leaves it running (logged); a container that stopped means its
 * entrypoint failed. */
int wait_session_ready(docker_client *d, const char *name, char *err, size_t errlen)
{
    long exit_code;
    char why[256];
    if (run_exec(d, name, "root", READY_CMD, READY_WAIT_S + QUICK_TIMEOUT_S, &exit_code, why,
                 sizeof why) == 0 &&
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
    log_warn("%s: tmux session not up after %d s (%s); leaving it running", name, READY_WAIT_S,
             exit_code > 0 ? "the probe gave up" : why);
    return 0;
}
