/* Execs inside a session container through the Engine API whose output
 * nobody reads: tmux detach-client, and the readiness probe after a start. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "engine/docker_internal.h"

#define READY_WAIT_S 15      /* entrypoint: user, then tmux session */
#define EXEC_OUTPUT_KEPT 256 /* tmux says nothing on stdout here; its stderr goes in errtext */

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
        rc = EXEC_NOT_RUNNING;
    } else {
        describe_engine_error(&r, "exec in container", err, errlen);
    }
    reply_clear(&r);
    return rc;
}

/* Runs argv as claude inside the container and gives its exit code. The
 * exec is started attached (exec_capture.c): the end of its stream is the
 * end of the process, so one inspect reads the code where a detached start
 * had to poll for it. */
static int run_exec(docker_client *d, const char *name, const char *const argv[], long *exit_code,
                    char *err, size_t errlen)
{
    exec_output out;
    *exit_code = -1;
    if (exec_capture_named(d, name, argv, EXEC_OUTPUT_KEPT, &out, err, errlen) < 0)
        return -1;
    *exit_code = out.exit_code;
    exec_output_clear(&out);
    return 0;
}

/* `tmux detach-client -s claude` alone fails with "no current client" when
 * nobody is attached; guarding it with the session's attached count makes
 * "nothing to detach" a success. Still one argv, no shell. */
static const char *const detach_all_argv[] = {
    "tmux", "if-shell", "-F", "-t", "claude", "#{session_attached}", "detach-client -s claude",
    NULL};
static const char *const has_session_argv[] = {"tmux", "has-session", "-t", "claude", NULL};

int docker_detach_clients(docker_client *d, const char *uuid, char *err, size_t errlen)
{
    char name[ENGINE_CONTAINER_NAME_LEN];
    if (session_container(uuid, name, err, errlen) < 0)
        return -1;
    long exit_code;
    if (run_exec(d, name, detach_all_argv, &exit_code, err, errlen) < 0)
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
        if (run_exec(d, name, has_session_argv, &exit_code, ignored, sizeof ignored) == 0 &&
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
