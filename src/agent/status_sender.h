/* The agent's network sink for status events (SPEC 8.1, 8.3): one thread
 * that keeps a pinned SSH connection to the shell's tcp/223 listener and
 * streams the emitter's queue into one `convocate-status` channel. A line
 * leaves the queue only once it was written and the connection stayed
 * healthy for a moment after, so events queued while the shell is away, or
 * written into a connection that was already dead, go out after the redial
 * (up to the queue's bound). Delivery is at least once: a line in flight when
 * a connection breaks may arrive twice. */
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

#endif
