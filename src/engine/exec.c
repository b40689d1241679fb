/* Execs inside a session container through the Engine API whose output
 * nobody reads: tmux detach-client, and the readiness probe after a start. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
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

/* Runs argv as user inside the container and gives its exit code. The
 * exec is started attached (exec_capture.c): the end of its stream is the
 * end of the process, so one inspect reads the code where a detached start
 * had to poll for it. */
static int run_exec(docker_client *d, const char *name, const char *user, const char *const argv[],
                    long timeout_s, long *exit_code, char *err, size_t errlen)
{
    const exec_request req = {user, argv, timeout_s, EXEC_OUTPUT_KEPT};
    exec_output out;
    *exit_code = -1;
    if (exec_capture_named(d, name, &req, &out, err, errlen) < 0)
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

int docker_detach_clients(docker_client *d, const char *uuid, char *err, size_t errlen)
{
    char name[ENGINE_CONTAINER_NAME_LEN];
    if (session_container(uuid, name, err, errlen) < 0)
        return -1;
    long exit_code;
    if (run_exec(d, name, "claude", detach_all_argv, QUICK_TIMEOUT_S, &exit_code, err, errlen) < 0)
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
static const char *const ready_argv[] = {
    "sh", "-c",
    "i=0; while [ $i -lt " READY_TRIES " ]; do "
    "for s in /tmp/tmux-*/default; do [ -S $s ] && "
    "setpriv --reuid claude --regid claude --init-groups tmux has-session -t claude "
    "2>/dev/null && exit 0; done; "
    "sleep 0.02; i=$((i+1)); done; exit 1",
    NULL};

/* A started container is usable once its entrypoint has made the claude user
 * and the tmux session: an attach or a background right after a start must
 * find them. A probe that cannot run or gives up while the container still
 * runs leaves it running (logged); a container that stopped means its
 * entrypoint failed. */
int wait_session_ready(docker_client *d, const char *name, char *err, size_t errlen)
{
    long exit_code;
    char why[256];
    if (run_exec(d, name, "root", ready_argv, READY_WAIT_S + QUICK_TIMEOUT_S, &exit_code, why,
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
