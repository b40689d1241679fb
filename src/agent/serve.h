/* `convocate-agent serve`: the tcp/222 listener and its connection threads. */
#ifndef CONVOCATE_AGENT_SERVE_H
#define CONVOCATE_AGENT_SERVE_H

#include "agent/agent.h"

/* Runs until SIGTERM or SIGINT; returns the process exit code. */
int agent_serve(const agent_config *cfg);

#endif
