/* The operator's end of convocate-agent-attach (SPEC 9): header line, then
 * the local terminal in raw mode relayed to the session until it ends. */
#ifndef CONVOCATE_SHELL_ATTACH_CLIENT_H
#define CONVOCATE_SHELL_ATTACH_CLIENT_H

#include <stddef.h>

#include "ssh/registry.h"

/* Relays stdin/stdout to the session until detach, container end or
 * connection loss; SIGWINCH is passed on as window-change. The terminal mode
 * is restored on every path. Returns 0, or -1 with err filled. */
int attach_run(agent_entry *agent, const char *uuid, char *err, size_t errlen);

#endif
