/* The agent's state shared by every connection: configuration, the session
 * store, the container engine, settings and the event emitter.
 *
 * Threading: every function here may be called from any connection or worker
 * thread at once. Slow calls (kill, restart, delete, attach preparation) block
 * only their caller; callers that must stay responsive (the SSH connection
 * loops) run them on a worker thread. */
#ifndef CONVOCATE_AGENT_AGENT_H
#define CONVOCATE_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/layout.h"
#include "common/paths.h"

typedef struct {
    char listen_addr[256];      /* default 0.0.0.0 */
    int listen_port;            /* default 222 */
    char host_key[PATH_BUF];    /* default <root>/etc/convocate-agent/ssh_host_ed25519_key */
    char auth_keys[PATH_BUF];   /* default <root>/etc/convocate-agent/authorized_keys */
    char docker_host[PATH_BUF]; /* default $DOCKER_HOST or unix:///var/run/docker.sock */
    char events_log[PATH_BUF];  /* "" = none; else every event appended as a JSON line */
    /* Status channel to the shell (SPEC 8.3): shell_host "" = the shell-host file. */
    char shell_host[256];
    int shell_port;
    char shell_key[PATH_BUF];
    char shell_known_host[PATH_BUF];
    bool test_hooks; /* --test-hooks: the test-only ops of test_hooks.h */
    uid_t claude_uid;
    gid_t claude_gid;
} agent_config;

typedef struct agent agent;

/* Loads agent-id, settings and the current sessions, connects the engine
 * driver (an unreachable engine is logged, not fatal) and adopts running
 * containers labelled with this agent's id. NULL with err filled on failure. */
agent *agent_new(const agent_config *cfg, char *err, size_t errlen);
void agent_free(agent *a);

/* Publishes agent.started; called once the listener is up. */
void agent_announce_start(agent *a);
/* Publishes agent.shutdown with the given reason ("SIGTERM"). */
void agent_announce_shutdown(agent *a, const char *reason);

const char *agent_id(const agent *a);
const agent_config *agent_cfg(const agent *a);

/* Handles one convocate-agent-rpc request line (len bytes, may end in '\n')
 * and returns the malloc'd response line, ending in '\n'. Never NULL. */
char *agent_rpc_handle(agent *a, const char *line, size_t len);

/* The same, for a request that can be answered without waiting on
 * anything (the engine, the disk, a lock held across I/O): today a ping
 * while the engine watch knows the running count. NULL when the request
 * needs agent_rpc_handle() on a worker thread. */
char *agent_rpc_quick(agent *a, const char *line, size_t len);

/* Before an attach relay starts: checks the session exists, starts its
 * container when stopped (admission and lock rules apply), and moves
 * last_accessed. Returns 0, or -1 with the error text for the operator. */
int agent_attach_prepare(agent *a, const char *uuid, char *err, size_t errlen);

/* Counts operators attached now, per session, for the "attached" field. */
void agent_attach_enter(agent *a, const char *uuid);
void agent_attach_leave(agent *a, const char *uuid);

#endif
