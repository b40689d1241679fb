/* An interactive terminal inside a session container through the Engine
 * API alone: an exec of tmux attach with a TTY, whose stream is the hijacked
 * HTTP connection of POST /exec/<id>/start. No docker CLI process.
 *
 * The stream is a plain socket: with a TTY the engine sends raw terminal
 * bytes (no multiplexing frames) and takes keystrokes the same way. */
#ifndef CONVOCATE_ENGINE_EXEC_TTY_H
#define CONVOCATE_ENGINE_EXEC_TTY_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/docker.h"

#define EXEC_TTY_ID_MAX 80
#define EXEC_TTY_EARLY_MAX 16384
#define EXEC_TTY_SIZE_MAX 1000

typedef struct {
    char exec_id[EXEC_TTY_ID_MAX];
    int fd; /* the hijacked stream, non-blocking, close-on-exec; -1 = none */
    /* Terminal bytes that arrived with the engine's HTTP answer: they come
     * before anything read from fd. */
    char early[EXEC_TTY_EARLY_MAX];
    size_t early_len;
} docker_tty;

/* Why a terminal stream ended, as far as the engine can tell. */
typedef enum {
    TTY_END_DETACHED,        /* the exec ended, the container still runs */
    TTY_END_CONTAINER_ENDED, /* the container is gone or stopped */
    TTY_END_ENGINE_GONE,     /* the engine is unreachable or forgot the exec (restarted) */
} docker_tty_end;

/* Runs `tmux attach-session -t claude` as claude in the session's container
 * on a cols x rows terminal (1..EXEC_TTY_SIZE_MAX; the size is set inside
 * before tmux starts, so its first frame is drawn at that size). Returns 0
 * with t filled, or -1 with err filled and nothing left open. */
int docker_tty_open(docker_client *d, const char *uuid, int cols, int rows, docker_tty *t,
                    char *err, size_t errlen);

/* POST /exec/<id>/resize: the terminal's new size. */
int docker_tty_resize(docker_client *d, const char *exec_id, int cols, int rows, char *err,
                      size_t errlen);

/* After the stream reached its end: what happened. */
docker_tty_end docker_tty_why_ended(docker_client *d, const char *uuid, const char *exec_id);

/* Closes the stream; when the exec still runs (the operator left without
 * detaching), its tmux client is hung up so it does not linger in the
 * container. Never stops the container. */
void docker_tty_close(docker_client *d, docker_tty *t);

#endif
