/* The shell's view of its agents: one directory per registered agent under
 * /etc/convocate/agent-keys/<agent-id>/ (SPEC 4), each with one persistent
 * pinned SSH connection. */
#ifndef CONVOCATE_SSH_REGISTRY_H
#define CONVOCATE_SSH_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/hostport.h" /* parse_host_port, for the agent-host files */
#include "common/ids.h"
#include "ssh/client.h"

typedef struct {
    char id[AGENT_ID_LEN + 1];
    char host[256];
    int port;
    pinned_peer *peer;
} agent_entry;

typedef struct {
    agent_entry *items;
    size_t n;
} agent_registry;

/* Reads every agent directory; a broken one is skipped with a warning on
 * stderr naming the file to fix. Agents are sorted by id. */
int registry_load(agent_registry *r, char *err, size_t errlen);
void registry_free(agent_registry *r);
agent_entry *registry_find(agent_registry *r, const char *id);

/* One RPC to one agent. Returns the result (new reference; JSON null is a
 * valid result), or NULL with err holding the agent's error text verbatim or
 * the transport failure. */
json_t *agent_call(agent_entry *a, const char *op, json_t *params, char *err, size_t errlen);
/* The same, telling an agent's refusal (*answered true) from a transport
 * failure: an agent that could not be reached or did not answer. */
json_t *agent_call_answered(agent_entry *a, const char *op, json_t *params, bool *answered,
                            char *err, size_t errlen);

/* The same call to every agent at once, one thread each, so one slow or dead
 * agent costs only its own timeout. results[i] / errors[i] follow r->items. */
typedef struct {
    json_t *result; /* NULL on failure */
    bool answered;  /* the agent sent an RPC response (ok or not) */
    char error[512];
} agent_reply;
int agent_call_all(agent_registry *r, const char *op, json_t *params, agent_reply *replies);
/* agent_call_all that leaves out the agents whose skip[i] is true (their
 * reply: no result, not answered, error "not asked"); skip may be NULL. */
int agent_call_some(agent_registry *r, const char *op, json_t *params, const bool *skip,
                    agent_reply *replies);
/* agent_call_some that hands each asked agent's reply to then(i, reply, ctx)
 * on the thread that received it, as soon as it is in: per-agent work done
 * there (decoding, stamping, rendering) overlaps with the agents still
 * answering instead of running after the last one. then runs once per
 * asked agent, reachable or not, concurrently with other agents' calls: it
 * may touch only reply i and what ctx makes safe. then may be NULL. */
typedef void (*agent_reply_fn)(size_t i, agent_reply *reply, void *ctx);
int agent_call_some_then(agent_registry *r, const char *op, json_t *params, const bool *skip,
                         agent_reply *replies, agent_reply_fn then, void *ctx);
void agent_replies_clear(agent_reply *replies, size_t n);

/* Closes the agent's connection now (the next call dials again): for a
 * command that is done with the agent, from the call thread, so that a
 * hundred teardowns overlap instead of running one after another at exit. */
void agent_hang_up(agent_entry *a);

#endif
