/* `convocate-agent install` (SPEC 11): the agent-side files under --root. */
#ifndef CONVOCATE_AGENT_INSTALL_H
#define CONVOCATE_AGENT_INSTALL_H

#include <stdbool.h>

typedef struct {
    bool dry_run;
    bool skip_docker_check; /* --no-docker-check: for packaging into a DESTDIR */
    const char *docker_host;
} install_options;

/* Prints each step and whether it changed anything; returns the exit code
 * (0 ok, 1 failure with one line on stderr naming the step). */
int agent_install(const install_options *opt);

#endif
