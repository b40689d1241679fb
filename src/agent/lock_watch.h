/* Which sessions have a lock file, from the kernel's word (issue 13): one
 * read of the home root when the watch opens, then inotify's create,
 * delete and rename events of "<uuid>.lock" names, drained before each
 * answer. list then checks (lock_is_held) only the sessions that have a
 * lock file, with neither a lookup per session nor a directory read per
 * call. A lock any process takes shows: the kernel queues the event in
 * the very syscall that makes the file, before it returns. When the queue
 * overflowed or the watch was lost, the next call reads the directory
 * again. */
#ifndef CONVOCATE_AGENT_LOCK_WATCH_H
#define CONVOCATE_AGENT_LOCK_WATCH_H

#include "agent/lock.h"

typedef struct lock_watch lock_watch;

/* NULL, with a log line, when inotify is not available: callers then read
 * the directory per call. */
lock_watch *lock_watch_open(const char *dir);
void lock_watch_close(lock_watch *w);

/* The sessions with a lock file now, copied into *out (lock_names_free
 * it); 0, or -1 when they cannot be known (the caller reads the directory
 * or checks every session). */
int lock_watch_names(lock_watch *w, lock_names *out);

#endif
