/* Session PID locks (SPEC 6.3): <uuid>.lock holds the owning PID (a
 * regular file; on a full disk, a symlink whose target is the PID). A lock is
 * stale when that PID is dead (or now belongs to a process that started after
 * the lock was written) or the file is older than 24 h; stale locks are
 * ignored and removed. Lifecycle operations hold the lock for their duration
 * so a second operator gets "is locked" instead of racing the first. */
#ifndef CONVOCATE_AGENT_LOCK_H
#define CONVOCATE_AGENT_LOCK_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "common/ids.h"
#include "common/paths.h"

#define LOCK_MAX_AGE_S (24 * 60 * 60)
/* Clock rounding allowed when comparing a process's start with a lock's
 * mtime (boot time and ticks are whole seconds apart from each other). */
#define LOCK_CLOCK_SLACK_S 5

typedef struct {
    char path[PATH_BUF];
    /* Identity of the file we created (inode numbers get reused, change
     * times do not repeat), so release never removes a lock someone else
     * took after an override. */
    dev_t dev;
    ino_t ino;
    struct timespec ctime;
    bool held;
} session_lock;

/* Pure staleness rule, for tests: dead owner, unreadable PID, or too old. */
bool lock_is_stale(bool pid_known, bool pid_alive, time_t mtime, time_t now);
/* Parses the lock file text "<pid>\n"; 0 or -1. */
int lock_parse_pid(const char *text, pid_t *out);
/* Whether a process with this PID exists now. */
bool lock_pid_alive(pid_t pid);
/* The start time field (clock ticks after boot) of /proc/<pid>/stat text,
 * used to tell a lock's owner from a later process given the same PID. */
int lock_parse_proc_starttime(const char *stat_text, unsigned long long *ticks);

/* Takes the lock for this process. 0 taken, 1 held by a live owner, -1 error. */
int lock_acquire(const char *path, session_lock *lk);
/* Drops a lock taken by lock_acquire, only if the file is still ours. */
void lock_release(session_lock *lk);
/* Whether path is a live lock now; a stale one is removed on the way. */
bool lock_is_held(const char *path);
/* override: removes the lock file whoever holds it; a missing file is fine. */
int lock_remove(const char *path);

/* Whether name is a lock file's name, "<uuid>.lock"; uuid gets the uuid. */
bool lock_file_uuid(const char *name, char uuid[UUID_STR_LEN]);

/* The sessions that have a lock file in a directory, from one read of it:
 * list checks (lock_is_held) only these instead of looking up one path per
 * session (issue 13). A lock file created after the read is not seen, as
 * it would not be by a lookup made just before it. */
typedef struct {
    char (*uuids)[UUID_STR_LEN]; /* sorted */
    size_t n, cap;
} lock_names;

/* 0 with *out filled (lock_names_free it), or -1 when the directory cannot
 * be read or memory runs out: the caller then checks every session. */
int lock_names_scan(const char *dir, lock_names *out);
bool lock_names_has(const lock_names *names, const char *uuid);
/* dst gets its own copy of src; 0 or -1 when out of memory. */
int lock_names_copy(lock_names *dst, const lock_names *src);
void lock_names_free(lock_names *names);

#endif
