/* The agent's status event emitter (SPEC 8.3). Publishing never blocks an
 * RPC: events go into bounded in-memory queues (event_queue.h), one per
 * sink, and a sink that falls behind loses new events (counted, summarised
 * in the log) rather than slowing anyone down. The sinks: the --events-log
 * file, a record of every event, and the status sender to the shell
 * (status_sender.h), whose queue coalesces session.activity and
 * container.edited per session and which takes lines in batches that stay
 * its own until the shell has them, across a reconnect. */
#ifndef CONVOCATE_AGENT_EMITTER_H
#define CONVOCATE_AGENT_EMITTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "agent/event_queue.h"
#include "ssh/client.h"

typedef struct emitter emitter;

/* events_log: "" or NULL for none; shell: the status listener to stream
 * events to (SPEC 8.3), NULL for none. */
emitter *emitter_new(const char *agent_id, const char *events_log, const pinned_peer_config *shell,
                     char *err, size_t errlen);
/* Stops the heartbeat, lets the sinks drain what is queued, frees. */
void emitter_free(emitter *e);

/* Stamps agent_id and timestamp (and session_id, only for container.*
 * events) and queues the event for every sink. data is stolen (NULL = null).
 * Pass session_id for every event about one session (session.activity
 * too): it keeps that session's events in order when the queue coalesces. */
void emitter_publish(emitter *e, const char *type, const char *session_id, json_t *data);

/* The event line as sinks see it; malloc'd, ends in '\n'. data is borrowed. */
char *emitter_encode(const char *agent_id, const char *type, const char *session_id, json_t *data);

/* How the emitter's queues coalesce an event of this type. */
event_kind emitter_kind_of(const char *type);

/* Drops and coalesced events so far on the shell's queue (0 without one). */
unsigned long emitter_dropped(emitter *e);
unsigned long emitter_coalesced(emitter *e);

/* Starts (or retimes) agent.heartbeat every interval_s seconds. */
void emitter_set_heartbeat(emitter *e, int interval_s);

#endif
