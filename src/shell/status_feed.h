/* The local event feed of SPEC 8.4: a unix socket where TUIs subscribe to
 * the status events, as JSON lines. One thread serves every subscriber with
 * non-blocking writes; each subscriber has a bounded outbound buffer, and a
 * subscriber whose buffer overflows is dropped, so a slow reader never
 * stalls the agents' connections or the other subscribers. */
#ifndef CONVOCATE_SHELL_STATUS_FEED_H
#define CONVOCATE_SHELL_STATUS_FEED_H

#include <stddef.h>
#include <sys/types.h>

#define FEED_SUBSCRIBER_BUFFER (1024 * 1024) /* queued bytes before a drop */
#define FEED_MAX_SUBSCRIBERS 64

typedef struct status_feed status_feed;

/* Lines for a subscriber that just connected (the current picture), written
 * with status_feed_greet_line(); runs with the feed lock held, so no event
 * can slip between the greeting and the stream. */
typedef void (*feed_greeter)(status_feed *f, void *sub, void *ctx);
/* Called about once a second on the feed's thread, lock not held. */
typedef void (*feed_ticker)(status_feed *f, void *ctx);

/* Binds the socket at path (a stale socket is replaced; any other file is
 * refused), mode 0660, group gid (KEEP_OWNER-style (gid_t)-1: none). */
status_feed *status_feed_open(const char *path, gid_t gid, feed_greeter greet, feed_ticker tick,
                              void *ctx, char *err, size_t errlen);
/* Starts the feed's thread. */
int status_feed_start(status_feed *f, char *err, size_t errlen);
/* Queues one line (len bytes, ending in '\n') for every subscriber. */
void status_feed_publish(status_feed *f, const char *line, size_t len);
/* Only from a greeter. */
void status_feed_greet_line(status_feed *f, void *sub, const char *line, size_t len);
/* Async-signal-safe: asks the thread to end. */
void status_feed_stop(status_feed *f);
/* Stops, joins, closes every subscriber, removes the socket, frees. */
void status_feed_free(status_feed *f);

#endif
