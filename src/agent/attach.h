/* The attach relay (SPEC 9): the convocate-agent-attach subsystem. It joins
 * the operator's channel to `tmux attach-session -t claude` running as claude
 * in the session's container, through an Engine API exec with a TTY whose
 * hijacked connection is relayed as raw bytes (engine/exec_tty.h): no PTY
 * and no docker CLI process on the agent. */
#ifndef CONVOCATE_AGENT_ATTACH_H
#define CONVOCATE_AGENT_ATTACH_H

#include "ssh/listener.h"

/* The convocate-agent-attach subsystem's handler: one header line in, then
 * a raw relay between the channel and the exec's stream. */
extern const lchan_handler attach_relay_handler;

#endif
