/* Which sessions have a lock file, without a lookup per session nor a
 * directory read per list (issue 13). The home root is read once, and
 * read again only when its change time moved: every lock file made,
 * removed or renamed in it moves that time. list then checks
 * (lock_is_held) only the sessions that have a lock file, so a lock any
 * process takes still shows.
 *
 * A change time is taken from a clock that may tick only every few ms, so
 * a change in the same tick as the last one leaves it where it was. A read
 * of the directory is trusted only when it was made LOCK_WATCH_SETTLE_MS
 * after the last change: until then, every call reads it again. No
 * inotify instance is used: the kernel gives each user only 128, and test
 * fleets run a hundred agents on one machine. */
#ifndef CONVOCATE_AGENT_LOCK_WATCH_H
#define CONVOCATE_AGENT_LOCK_WATCH_H

#include "agent/lock.h"

/* Far above a kernel's timestamp tick (1 to 10 ms). */
#define LOCK_WATCH_SETTLE_MS 50

typedef struct lock_watch lock_watch;

/* Reads dir once (waiting for it to settle if it just changed). NULL, with
 * a log line, when it cannot be read: callers then read it per call. */
lock_watch *lock_watch_open(const char *dir);
void lock_watch_close(lock_watch *w);

/* The sessions with a lock file now, copied into *out (lock_names_free
 * it); 0, or -1 when they cannot be known (the caller reads the directory
 * or checks every session). */
int lock_watch_names(lock_watch *w, lock_names *out);

#endif
