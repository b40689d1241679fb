/* The process side of an attach relay (SPEC 9): a PTY running
 * `docker exec -it convocate-session-<uuid> sudo -u claude -- tmux attach-session -t claude`. */
#ifndef CONVOCATE_AGENT_ATTACH_H
#define CONVOCATE_AGENT_ATTACH_H

#include <sys/types.h>

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
