/* The activity watcher (SPEC 16): one thread and one inotify descriptor for
 * every running session's spool, <root>/var/lib/convocate-agent/activity/
 * <uuid>/events, which the session's hooks append to. Each session's
 * activity object is kept in memory, published as a session.activity event
 * on every change and handed to list/get.
 *
 * The spool is written by the session, so the watcher trusts nothing in it:
 * the events file is opened without following links and without blocking,
 * must be a regular file with one link, is read from the last offset in
 * bounded passes, and lines that are too long or do not parse are dropped
 * and counted (a rate-limited log line). Once read past ACTIVITY_FILE_MAX
 * the file is truncated, under an flock the hooks take too, so no appended
 * line is lost to the truncation. */
#ifndef CONVOCATE_AGENT_ACTIVITY_H
#define CONVOCATE_AGENT_ACTIVITY_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "agent/emitter.h"
#include "engine/docker.h"

#define ACTIVITY_SPOOL_DIR "/var/lib/convocate-agent/activity"
#define ACTIVITY_FILE_MAX (256 * 1024)

typedef struct activity_watcher activity_watcher;

/* spool_root: <root>ACTIVITY_SPOOL_DIR. Starts the thread. NULL with err. */
activity_watcher *activity_new(const char *spool_root, emitter *events, uid_t uid, gid_t gid,
                               char *err, size_t errlen);
/* Stops the thread and frees everything. */
void activity_free(activity_watcher *w);

/* Before a container start: makes the session's spool directory (owner
 * uid:gid, mode 0700), empties what a previous run left, forgets the old
 * activity and starts watching. dir gets the host path to mount. */
int activity_prepare(activity_watcher *w, const char *uuid, char *dir, size_t size, char *err,
                     size_t errlen);
/* Watches an existing spool directory (a container adopted at start);
 * reads what is there already. Nothing happens when there is none. */
void activity_adopt(activity_watcher *w, const char *uuid);
/* Every running container of agent_id gets activity_adopt. */
void activity_adopt_running(activity_watcher *w, docker_client *d, const char *agent_id);
/* The container stopped: stop watching and forget the activity. */
void activity_forget(activity_watcher *w, const char *uuid);
/* The session is deleted: forget it and remove its spool directory. */
void activity_remove(activity_watcher *w, const char *uuid);

/* The session's activity object (SPEC 16), or JSON null when nothing is
 * known. A new reference. */
json_t *activity_json(activity_watcher *w, const char *uuid);

/* Lines dropped and files refused since start (for tests and logs). */
unsigned long activity_dropped(activity_watcher *w);

#endif
