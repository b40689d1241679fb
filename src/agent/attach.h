/* The attach relay (SPEC 9): the channel side, the convocate-agent-attach
 * subsystem, relays between the operator's channel and the process side, a
 * PTY running
 * `docker exec -it convocate-session-<uuid> sudo -u claude -- tmux attach-session -t claude`. */
#ifndef CONVOCATE_AGENT_ATTACH_H
#define CONVOCATE_AGENT_ATTACH_H

#include <sys/types.h>

#include "ssh/listener.h"

/* The convocate-agent-attach subsystem's handler (the channel side): one
 * header line in, then a raw relay between the channel and the PTY. */
extern const lchan_handler attach_relay_handler;

typedef struct {
    pid_t pid;     /* the docker CLI process */
    int master_fd; /* PTY master: bytes to and from the operator */
} attach_proc;

/* Spawns the exec under a new PTY of cols x rows. docker_host is passed to
 * the CLI as DOCKER_HOST. Returns 0 or -1 with err filled. */
int attach_proc_start(attach_proc *p, const char *docker_host, const char *uuid, int cols, int rows,
                      char *err, size_t errlen);
/* Applies a window-change to the PTY; the CLI forwards it to the exec. */
int attach_proc_resize(attach_proc *p, int cols, int rows);
/* Closes the PTY, ends the CLI process if still running and reaps it. The
 * container is never stopped by this. */
void attach_proc_stop(attach_proc *p);

#endif
