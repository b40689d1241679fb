/* The engine's event stream (GET /events), narrowed to one agent's session
 * containers and to the actions that change whether one runs. */
#ifndef CONVOCATE_ENGINE_EVENTS_H
#define CONVOCATE_ENGINE_EVENTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/docker.h"

#define DOCKER_EVENT_LINE_MAX 65536 /* a longer line is dropped, the stream goes on */

typedef enum {
    DOCKER_EV_START,
    DOCKER_EV_DIE,  /* exit_code set */
    DOCKER_EV_OOM,  /* the kernel's OOM killer hit a process of the container */
    DOCKER_EV_KILL, /* a signal sent through the engine (docker stop/kill, shutdown) */
    DOCKER_EV_STOP,
} docker_event_action;

typedef struct {
    docker_event_action action;
    char uuid[UUID_STR_LEN]; /* the convocate.session label */
    int exit_code;           /* die: exitCode, -1 when absent */
    int signal;              /* kill: signal, 0 when absent */
} docker_event;

/* One line of the stream: 0 with ev filled when it is one of the actions
 * above on a container with a canonical session label; -1 otherwise. */
int docker_event_parse(const char *line, size_t len, docker_event *ev);

/* Follows the events of containers labelled convocate.agent=<agent_id>
 * since since_s (unix seconds; the engine replays what it still holds),
 * calling on_event for each, until *stop is set (returns 0) or the stream
 * ends or fails (returns -1 with err filled). on_up runs once the engine has
 * accepted the stream. Blocks; run it on its own thread. */
int docker_follow_events(docker_client *d, const char *agent_id, double since_s,
                         void (*on_up)(void *ctx),
                         void (*on_event)(const docker_event *ev, void *ctx), void *ctx,
                         atomic_bool *stop, char *err, size_t errlen);

#endif
