/* The agent's shared state and its convocate-agent-rpc operations (SPEC 7).
 *
 * Locking, from outermost to innermost: a session's PID lock file (held for
 * a whole lifecycle operation, engine calls included), then the store's
 * mutex (the session table, claims and metadata writes; never a read from a
 * session home), settings_mu and attach_mu
 * (short copies). No mutex is ever held across an engine call, so a 10 s
 * stop of one session never delays an operation on another. */
#ifndef CONVOCATE_AGENT_OPS_H
#define CONVOCATE_AGENT_OPS_H

#include <jansson.h>
#include <pthread.h>

#include "agent/activity.h"
#include "agent/agent.h"
#include "agent/capacity.h"
#include "engine/docker.h"
#include "agent/emitter.h"
#include "agent/engine_watch.h"
#include "agent/lock_watch.h"
#include "agent/memory_rest.h"
#include "agent/settings.h"
#include "agent/store.h"
#include "common/textbuf.h"

#define STOP_GRACE_S 10
#define SESSION_SLICE "convocate-sessions.slice"

typedef struct {
    char uuid[UUID_STR_LEN];
    int count;
} attach_count;

struct agent {
    agent_config cfg;
    char agent_id[AGENT_ID_LEN + 1];
    char etc_dir[PATH_BUF]; /* <root>/etc/convocate-agent */
    store *store;
    lock_watch *locks; /* NULL when inotify is not available */
    docker_client *docker;
    emitter *events;
    activity_watcher *activity; /* SPEC 16 */
    engine_watch *watch;        /* NULL when not running */
    capacity_meter meter;
    memory_rest rest; /* trims the heap once calls stop, on the meter's thread */

    pthread_mutex_t settings_mu;
    agent_settings settings;
    char settings_path[PATH_BUF];

    pthread_mutex_t attach_mu;
    attach_count *attached;
    size_t n_attached, cap_attached;
};

/* An op handler: 0 with *result set (NULL means JSON null), or -1 with err
 * holding the text the operator sees. */
typedef int (*op_handler)(agent *a, json_t *params, json_t **result, char *err, size_t errlen);

/* An op that encodes its result itself (list, issue 13): 0 with exactly
 * one compact JSON value appended to result, or -1 with err. */
typedef int (*op_text_handler)(agent *a, json_t *params, textbuf *result, char *err, size_t errlen);

/* Helpers shared by the handlers. */
agent_settings agent_settings_now(agent *a);
int agent_attached_count(agent *a, const char *uuid);
/* The image tag in current-image; "" when there is none. */
void agent_image_tag(agent *a, char *out, size_t size);
/* The session object of SPEC 7 for one store entry. */
/* held_by_caller: the caller holds the lock and is about to drop it, so the
 * object shows the session unlocked. */
json_t *session_object(agent *a, const store_entry *e, bool running, bool held_by_caller);
/* Reads and checks params["id"] (or another key): a canonical UUIDv4, or
 * `invalid id "<id>"`, before anything touches the filesystem. */
int params_get_id(json_t *params, const char *key, const char **out, char *err, size_t errlen);
/* Sessions running now: the engine watch's view while its stream is up,
 * else one engine query (an error counts as none, logged). */
int agent_count_running(agent *a);
bool agent_session_running(agent *a, const char *uuid);

/* The Claude credential ops (SPEC 7, 15), in ops_auth.c. */
int op_auth_set(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_auth_get(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
/* Before a container start: path gets claude.env's host path when it exists
 * and is valid, "" when there is none; -1 with the line-numbered error (and
 * what to do) when it is invalid, so the start is refused. */
int agent_claude_env_mount(agent *a, char *path, size_t size, char *err, size_t errlen);

/* peek and send (SPEC 16), in ops_peek.c. */
int op_peek(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_send(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
/* text as one argument tmux reads back as exactly text (a last ';' would
 * otherwise end the command); malloc'd, NULL when out of memory. */
char *tmux_literal_arg(const char *text);

/* The session lifecycle ops, in ops_lifecycle.c. */
int op_create(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_edit(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_clone(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_delete(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_kill(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_background(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_restart(agent *a, json_t *params, json_t **result, char *err, size_t errlen);
int op_override(agent *a, json_t *params, json_t **result, char *err, size_t errlen);

#endif
