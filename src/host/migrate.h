/* convocate-host migrate-session (SPEC 6.5): moves an orphan session home
 * from the shell host's /home/claude/<uuid>/ to a registered agent.
 *
 * The shell side is always this machine (paths under --root). The agent is
 * reached twice: its files through a runner (a directory of this machine with
 * --agent-root, or SSH with --host), and its session list through the RPC on
 * the registered address with the pinned key, which is what the cluster
 * itself believes. The source is removed only after the agent lists the
 * session; any failure before that leaves it untouched. */
#ifndef CONVOCATE_HOST_MIGRATE_H
#define CONVOCATE_HOST_MIGRATE_H

#include <stdbool.h>

#include "provision/plan.h"
#include "provision/runner.h"

typedef struct {
    const char *agent_id;    /* --agent */
    const char *uuid;        /* --session */
    const char *docker_host; /* the shell host's engine: "unix:///..." */
} migrate_options;

/* Checks the ids only: 0, or -1 reported through p. Nothing is touched, so
 * main can call it before opening any runner. */
int migrate_check_ids(plan *p, const migrate_options *o);

/* The SSH target when neither --host nor --agent-root is given: the host of
 * the agent's registered agent-host (its port is the RPC's, not SSH's), as
 * "H" or "[v6]". 0, or -1 reported through p. */
int migrate_default_host(plan *p, const char *agent_id, char *host, size_t size);

/* The whole move; agent_fs acts on the agent's files. paths_set_root() must
 * already name the shell's root. 0, or -1 after a line naming the step. */
int migrate_session(plan *p, const migrate_options *o, runner *agent_fs);

#endif
