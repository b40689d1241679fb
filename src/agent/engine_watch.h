/* Engine truth: a thread that follows the engine's event stream for this
 * agent's session containers and turns what happens to them outside the
 * agent (docker stop/kill, the session ending by itself, the OOM killer, a
 * dockerd going away) into container.stopped / container.started events.
 * When the stream breaks it reconnects with backoff (1 s doubling to 30 s)
 * and reconciles against a fresh list of the containers, publishing what
 * changed while it was blind. The mapping is in docs/decisions.md.
 *
 * The agent's own starts and stops tell the watcher first, so each of them
 * yields exactly one event: a stop by kill or delete is published by the
 * watcher when the engine reports it (by "operator"), a start by the op. */
#ifndef CONVOCATE_AGENT_ENGINE_WATCH_H
#define CONVOCATE_AGENT_ENGINE_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/docker.h"

typedef struct agent agent;
typedef struct engine_watch engine_watch;

/* Starts the thread; NULL (logged) when it cannot: the agent then runs
 * without engine truth, as before. */
engine_watch *engine_watch_start(agent *a);
/* Stops and joins the thread (within about a second). NULL is a no-op. */
void engine_watch_stop(engine_watch *w);

/* How many of this agent's session containers run, as the followed event
 * stream says (no engine call); -1 when the stream is not up now (or w is
 * NULL), so the caller asks the engine instead. */
int engine_watch_running_count(engine_watch *w);
/* The same table's running sessions, as docker_list_sessions would give
 * them (uuid and running only, no image): 0 with *out malloc'd (free() it);
 * -1 when the stream is not up now (or w is NULL) or out of memory, so the
 * caller asks the engine instead. */
int engine_watch_running_sessions(engine_watch *w, docker_session_info **out, size_t *n);

/* How many containers the table tracks: those running and those an op of
 * the agent is starting or stopping (tests: sessions created, started and
 * deleted must not leave entries behind). 0 when w is NULL. */
size_t engine_watch_table_size(engine_watch *w);

/* Before the agent's own container start: the start event that follows is
 * the op's to publish. After it, ok says whether the container runs. */
void engine_watch_op_start_begin(engine_watch *w, const char *uuid);
void engine_watch_op_start_end(engine_watch *w, const char *uuid, bool ok);

/* Before the agent's own stop (kill, delete): the stop that follows is the
 * operator's. After the engine call (stopped: it succeeded), waits briefly
 * for the watcher to publish it; publishes it here when the watcher could
 * not (its stream down). True when a container.stopped went out for this
 * stop; false when nothing was running or the stop failed. */
void engine_watch_op_stop_begin(engine_watch *w, const char *uuid);
bool engine_watch_op_stop_end(engine_watch *w, const char *uuid, bool stopped);

#endif
