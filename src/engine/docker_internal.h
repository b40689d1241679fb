/* What the files of the engine driver share and nobody else sees: one HTTP
 * exchange with the Engine API and the container calls they build on.
 *
 *   docker.c      the transport (curl over the unix socket) and the run
 *                 contract of a session container (create, start)
 *   containers.c  inspection, stop and list of session containers
 *   exec.c        execs inside a session container (tmux detach, readiness)
 *   exec_capture.c  an exec whose output is kept (peek, send)
 *   exec_tty.c    the attach terminal: an exec on a hijacked connection */
#ifndef CONVOCATE_ENGINE_DOCKER_INTERNAL_H
#define CONVOCATE_ENGINE_DOCKER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/docker.h"

#define QUICK_TIMEOUT_S 15L  /* ping, inspect, list, exec bookkeeping */
#define CREATE_TIMEOUT_S 30L /* create and start may wait on image layers */

/* One HTTP exchange with the engine. */
typedef struct {
    long status;
    char *body; /* NUL-terminated, never NULL after a successful call */
    size_t len;
    bool overflow;
} docker_reply;

/* docker.c */
/* The engine's unix socket path, for the one request written by hand (exec_tty.c). */
const char *docker_socket_path(const docker_client *d);
int docker_call(docker_client *d, const char *method, const char *path, const char *json_body,
                long timeout_s, docker_reply *reply, char *err, size_t errlen);
void reply_clear(docker_reply *r);
void describe_engine_error(const docker_reply *r, const char *what, char *err, size_t errlen);
/* A request whose answer is only its status: 0 when it is one of ok (a
 * list ending in 0; *status gets it unless status is NULL), else -1 with
 * err filled (the engine's own words under what, or why the engine could
 * not be reached). */
int docker_expect(docker_client *d, const char *method, const char *path, const char *json_body,
                  long timeout_s, const long ok[], long *status, const char *what, char *err,
                  size_t errlen);
int remove_container(docker_client *d, const char *name, char *err, size_t errlen);

/* exec.c */
/* POST /containers/<name>/exec with the JSON body; the new exec's id (hex)
 * in id. 0; EXEC_NOT_RUNNING with "container <name> is not running" when
 * the container is gone or stopped; else -1 with err filled. */
int exec_create(docker_client *d, const char *name, const char *body, char *id, size_t idlen,
                char *err, size_t errlen);

/* containers.c */
/* A session's container name, after checking uuid; -1 with err when it is
 * no canonical UUIDv4. */
int session_container(const char *uuid, char name[ENGINE_CONTAINER_NAME_LEN], char *err,
                      size_t errlen);
int inspect_state(docker_client *d, const char *name, bool *exists, bool *running, char *err,
                  size_t errlen);

/* exec_capture.c */
/* One exec: who runs it, what (a NULL-ended argv, never through a shell of
 * ours), how long its start may take, and how much stdout is kept. */
typedef struct {
    const char *user;
    const char *const *argv;
    long timeout_s;
    size_t max_out;
} exec_request;
/* docker_exec_capture on a container by name, as req says. */
int exec_capture_named(docker_client *d, const char *name, const exec_request *req,
                       exec_output *out, char *err, size_t errlen);
/* GET /exec/<id>/json once its stream has ended: the exit code. Asked
 * again for up to a second while the engine has not recorded the exit yet.
 * 0, or -1 with err. */
int exec_exit_code(docker_client *d, const char *id, long *code, char *err, size_t errlen);

/* exec.c */
int wait_session_ready(docker_client *d, const char *name, char *err, size_t errlen);

#endif
