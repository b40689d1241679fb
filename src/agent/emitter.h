/* The agent's status event emitter (SPEC 8.3). Publishing never blocks an
 * RPC: events go into bounded in-memory queues of EVENT_QUEUE_CAP, one per
 * sink, and a sink that falls behind loses new events (counted and logged)
 * rather than slowing anyone down. The sinks: the --events-log file, and the
 * status sender to the shell (status_sender.h), which drains its own queue
 * with event_queue_front_wait/event_queue_pop so an event it could not send
 * stays queued across a reconnect. */
#ifndef CONVOCATE_AGENT_EMITTER_H
#define CONVOCATE_AGENT_EMITTER_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "ssh/client.h"

#define EVENT_QUEUE_CAP 256

/* A bounded FIFO of encoded event lines (each ending in '\n'). */
typedef struct {
    char *lines[EVENT_QUEUE_CAP];
    size_t head, len;
    unsigned long dropped;
    bool closed;
    pthread_mutex_t mu;
    pthread_cond_t cond;
} event_queue;

int event_queue_init(event_queue *q);
/* Frees whatever is still queued. */
void event_queue_destroy(event_queue *q);
/* Takes ownership of line. False when the queue is full or closed: the line
 * is freed and counted as dropped. Never blocks on a consumer. */
bool event_queue_push(event_queue *q, char *line);
/* Waits up to timeout_ms (-1 = forever) for the oldest line and returns it
 * without removing it; it stays valid until event_queue_pop. NULL on timeout,
 * or once the queue is closed and empty. One consumer per queue. */
const char *event_queue_front_wait(event_queue *q, int timeout_ms);
/* The same for the line at index (0 = the oldest): a consumer may look
 * ahead of what it has popped, as long as it pops in order. */
const char *event_queue_peek_wait(event_queue *q, size_t index, int timeout_ms);
bool event_queue_is_closed(event_queue *q);
void event_queue_pop(event_queue *q);
/* Wakes the consumer; it drains what is left, then sees NULL. */
void event_queue_close(event_queue *q);
unsigned long event_queue_dropped(event_queue *q);

typedef struct emitter emitter;

/* events_log: "" or NULL for none; shell: the status listener to stream
 * events to (SPEC 8.3), NULL for none. */
emitter *emitter_new(const char *agent_id, const char *events_log, const pinned_peer_config *shell,
                     char *err, size_t errlen);
/* Stops the heartbeat, lets the sinks drain what is queued, frees. */
void emitter_free(emitter *e);

/* Stamps agent_id and timestamp (and session_id, only for container.*
 * events) and queues the event for every sink. data is stolen (NULL = null). */
void emitter_publish(emitter *e, const char *type, const char *session_id, json_t *data);

/* The event line as sinks see it; malloc'd, ends in '\n'. data is borrowed. */
char *emitter_encode(const char *agent_id, const char *type, const char *session_id, json_t *data);

/* Starts (or retimes) agent.heartbeat every interval_s seconds. */
void emitter_set_heartbeat(emitter *e, int interval_s);

#endif
