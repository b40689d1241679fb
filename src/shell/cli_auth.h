/* `convocate auth set|status|clear` (SPEC 15): the Claude credentials of
 * each agent, through its auth-set / auth-get ops. Exit codes as the rest
 * of the CLI: 0 ok, 1 runtime failure (any agent failed), 2 usage error. */
#ifndef CONVOCATE_SHELL_CLI_AUTH_H
#define CONVOCATE_SHELL_CLI_AUTH_H

#include <stdbool.h>
#include <stdio.h>

#include "ssh/registry.h"

/* argv[0] is "auth". */
int cli_auth(agent_registry *r, int argc, char **argv);
/* True when argv asks for help (then cli_auth_usage prints it). */
bool cli_auth_wants_help(int argc, char **argv);
void cli_auth_usage(FILE *out);

#endif
