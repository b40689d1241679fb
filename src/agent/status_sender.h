/* The agent's network sink for status events (SPEC 8.1, 8.3): one thread
 * that keeps a pinned SSH connection to the shell's tcp/223 listener and
 * streams the emitter's queue into one `convocate-status` channel.
 *
 * Lines go in batches: the sender takes every line queued (up to
 * STATUS_BATCH_LINES / STATUS_BATCH_BYTES), writes them with one channel
 * write, then confirms the batch with one SSH round trip (a keepalive
 * request the shell's SSH layer answers only after it has read every byte
 * before it). A batch leaves the sender only once confirmed; a connection
 * that breaks first sends it again on the next one. Delivery is at least
 * once, per batch: a batch in flight when a connection breaks may arrive
 * twice. Lines stay in order. */
#ifndef CONVOCATE_AGENT_STATUS_SENDER_H
#define CONVOCATE_AGENT_STATUS_SENDER_H

#include <stddef.h>

#include "agent/emitter.h"
#include "ssh/client.h"

typedef struct status_sender status_sender;

/* Starts the thread draining q to the peer. NULL with err on failure. */
status_sender *status_sender_start(event_queue *q, const pinned_peer_config *peer, char *err,
                                   size_t errlen);

/* Call after closing q: the sender writes what is left while it is
 * connected (at most STATUS_SENDER_DRAIN_MS), then stops and frees. */
void status_sender_stop(status_sender *s);

#define STATUS_SENDER_DRAIN_MS 2000
#define STATUS_BATCH_LINES 1024
#define STATUS_BATCH_BYTES (64 * 1024)

#endif
