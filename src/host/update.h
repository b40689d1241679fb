/* `convocate-host update` (SPEC 11): push this build's convocate-agent and
 * session image to an agent, re-run its install, stamp current-image and
 * restart it. Also the binary deployment init-agent --host starts with. */
#ifndef CONVOCATE_HOST_UPDATE_H
#define CONVOCATE_HOST_UPDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "host/plan.h"
#include "host/runner.h"

#define AGENT_BIN_PATH "/usr/local/bin/convocate-agent"

/* convocate-agent next to the running program (build tree or install);
 * -1 when there is none. */
int update_sibling_agent(char *out, size_t size);

/* /usr/local/bin/convocate-agent on the target holds exactly this build's
 * convocate-agent, mode 0755, root-owned: compared by SHA-256 computed on
 * the target, written atomically, "unchanged" when equal. */
int update_agent_binary_step(plan *p, runner *r);

/* The whole command: argv[0] is "update"; returns the exit code. */
int update_main(int argc, char **argv, bool verbose);

#endif
