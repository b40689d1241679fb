/* `convocate-host init-agent`: pairs one agent with this shell (SPEC 4, 11).
 * Two runners: the shell's target and the agent's. */
#ifndef CONVOCATE_HOST_INIT_AGENT_H
#define CONVOCATE_HOST_INIT_AGENT_H

#include <stdbool.h>

#include "provision/plan.h"
#include "provision/runner.h"

typedef struct {
    const char *agent_addr; /* what the shell dials; NULL: keep, else 127.0.0.1 */
    const char *shell_host; /* what the agent dials; NULL: keep, else 127.0.0.1 */
    bool repin;             /* accept a changed host key on either side */
    const char *agent_bin;  /* convocate-agent to run `install` with */
    /* --ca-cert/--ca-key: files of this machine holding the CA that issues
     * the agent's log certificate; NULL: the shell's rsyslog-ca. */
    const char *ca_cert;
    const char *ca_key;
    /* --host: the session image transferred to the agent's engine and
     * stamped as its current-image; NULL (--agent-root): neither, since
     * that agent shares this machine's engine. */
    const char *image;
} init_agent_options;

/* Runs every step; 0, or -1 after one line on stderr naming the step. A
 * changed host key is refused before anything is written. */
int init_agent_steps(plan *p, runner *shell, runner *agent, const init_agent_options *opt);

#endif
