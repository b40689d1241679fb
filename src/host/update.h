/* `convocate-host update` (SPEC 11): push this build's convocate-agent and
 * session image to an agent, re-run its install, stamp current-image and
 * restart it. The image part is shared with init-agent --host. */
#ifndef CONVOCATE_HOST_UPDATE_H
#define CONVOCATE_HOST_UPDATE_H

#include <stdbool.h>

#include "provision/plan.h"
#include "provision/runner.h"

/* Transfers tag to the agent's engine (image_transfer_step) and then, only
 * once it is verified and loaded, stamps /etc/convocate-agent/current-image
 * with it, so an agent never names a tag its engine lacks. */
int update_image_steps(plan *p, runner *r, const char *tag);

/* The whole command: argv[0] is "update"; returns the exit code. */
int update_main(int argc, char **argv, bool verbose);

#endif
