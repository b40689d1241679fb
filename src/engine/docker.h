/* The container engine driver: the one place that talks to Docker, over the
 * Engine API (v1.41) on its unix socket through libcurl. Everything else in
 * the agent sees only these calls.
 *
 * Every call is safe from any thread (each uses its own curl handle) and
 * fills err with one line for the operator on failure; an unreachable engine
 * is an error return, never a crash or a hang past the call's timeout. */
#ifndef CONVOCATE_ENGINE_DOCKER_H
#define CONVOCATE_ENGINE_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/ids.h"

typedef struct docker_client docker_client;

/* Every session's container is named ENGINE_CONTAINER_PREFIX<uuid>; its
 * log lines carry that name as their syslog tag. */
#define ENGINE_CONTAINER_PREFIX "convocate-session-"
#define ENGINE_CONTAINER_NAME_LEN (sizeof ENGINE_CONTAINER_PREFIX - 1 + UUID_STR_LEN)
/* "convocate-session-<uuid>": the only place the name is spelt. */
void engine_container_name(const char *uuid, char out[ENGINE_CONTAINER_NAME_LEN]);

/* url: "unix:///path/to/docker.sock" (the only scheme supported). */
docker_client *docker_new(const char *url, char *err, size_t errlen);
void docker_free(docker_client *d);

/* GET /_ping; 0 when the engine answers. */
int docker_ping(docker_client *d, char *err, size_t errlen);

/* Everything SPEC 10's run contract needs; host paths are already under
 * --root. A NULL optional path means "not present, do not mount". */
typedef struct {
    const char *uuid;
    const char *agent_id;
    const char *image;       /* e.g. convocate:v0.1.0 (from current-image) */
    const char *home_dir;    /* -> /home/claude (rw) */
    const char *claude_dir;  /* -> /home/claude/.claude-shared (ro), optional */
    const char *ssh_dir;     /* -> /home/claude/.ssh (ro), optional */
    const char *gitconfig;   /* -> /home/claude/.gitconfig (ro), optional */
    const char *claude_bin;  /* -> /usr/local/bin/claude (ro), optional */
    const char *docker_sock; /* -> /var/run/docker.sock, only when the setting says so */
    const char *claude_env;  /* -> /run/convocate/claude.env (ro), optional (SPEC 15) */
    const char *activity;    /* -> /run/convocate/activity (rw), optional (SPEC 16) */
    const char *model;       /* CONVOCATE_MODEL; "" or NULL = none */
    bool autonomous;         /* CONVOCATE_AUTONOMOUS=1|0 */
    unsigned claude_uid, claude_gid;
    int port;                  /* 0 = none */
    const char *protocol;      /* "tcp" or "udp" */
    const char *dns_server;    /* "" or NULL = engine default */
    double cpus;               /* 0 = no limit */
    long memory_mb;            /* 0 = no limit */
    const char *cgroup_parent; /* "convocate-sessions.slice" */
} docker_run_spec;

/* Creates and starts convocate-session-<uuid> detached, auto-removed on exit,
 * with the full run contract. Uses the syslog log driver when the host has
 * /dev/log, else the engine default with one warning logged. */
int docker_start_session(docker_client *d, const docker_run_spec *spec, char *err, size_t errlen);

/* Stops the session's container: SIGTERM, grace_s seconds, then SIGKILL, and
 * waits until it is gone. A container that does not exist is success. */
int docker_stop_session(docker_client *d, const char *uuid, int grace_s, char *err, size_t errlen);

typedef struct {
    char uuid[UUID_STR_LEN];
    bool running;
    char image[256];
} docker_session_info;

/* One engine query for every container labelled convocate.agent=<agent_id>.
 * *out is malloc'd (free() it), *n entries. */
int docker_list_sessions(docker_client *d, const char *agent_id, docker_session_info **out,
                         size_t *n, char *err, size_t errlen);

/* Whether convocate-session-<uuid> is running now. */
int docker_session_running(docker_client *d, const char *uuid, bool *running, char *err,
                           size_t errlen);

/* Detaches every tmux client of the session inside the container
 * (`tmux detach-client -s claude` through an exec); the container keeps running. */
int docker_detach_clients(docker_client *d, const char *uuid, char *err, size_t errlen);

/* The output of a non-interactive exec (docker_exec_capture). */
typedef struct {
    char *data; /* stdout, NUL-terminated; malloc'd */
    size_t len;
    bool truncated;    /* stdout went past max_out: the rest was dropped */
    char errtext[201]; /* the first line of stderr, for messages */
    long exit_code;
} exec_output;

/* docker_exec_capture's answer when the session's container is gone or
 * stopped (err says so too): callers tell "not running" from a failure. */
#define EXEC_NOT_RUNNING (-2)

/* Runs argv (NULL-terminated, each element passed as is: no shell) as user
 * claude inside the session's container, without a TTY, and keeps up to
 * max_out bytes of its stdout. 0 once it ran (whatever its exit code),
 * EXEC_NOT_RUNNING when the container does not run, -1 with err when it
 * could not be run. exec_output_clear() frees it. */
int docker_exec_capture(docker_client *d, const char *uuid, const char *const argv[],
                        size_t max_out, exec_output *out, char *err, size_t errlen);
void exec_output_clear(exec_output *out);

#endif
