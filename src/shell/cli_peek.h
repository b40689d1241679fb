/* `convocate peek`, `convocate send` and `convocate watch` (SPEC 16): a
 * session's screen read and typed into without attaching, and the fleet's
 * activity changes as they happen. Exit codes as the rest of the CLI:
 * 0 ok, 1 runtime failure, 2 usage error. */
#ifndef CONVOCATE_SHELL_CLI_PEEK_H
#define CONVOCATE_SHELL_CLI_PEEK_H

#include "ssh/registry.h"

/* argv[0] is the command name. */
int cli_peek(agent_registry *r, int argc, char **argv);
int cli_send(agent_registry *r, int argc, char **argv);
/* Runs until the feed closes (exit 1) or a signal ends it. */
int cli_watch(agent_registry *r, int argc, char **argv);

#endif
