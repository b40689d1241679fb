/* Which agent a 223 connection speaks for, and where its sessions' DNS
 * names point (SPEC 8.4). The key that
 * authenticated decides it, never the text of the events: each registered
 * agent has its own key under agent-keys/<id>/agent_to_shell_ed25519_key.pub,
 * so the authenticated key's fingerprint names exactly one agent id. */
#ifndef CONVOCATE_SHELL_STATUS_IDENTITY_H
#define CONVOCATE_SHELL_STATUS_IDENTITY_H

#include <stddef.h>

#include "common/ids.h"

#define STATUS_IDENTITY_MAX_AGENTS 4096 /* agent-keys entries looked at */

enum status_identity {
    STATUS_IDENTITY_FOUND = 0,
    STATUS_IDENTITY_NONE = -1,      /* no registered agent has this key */
    STATUS_IDENTITY_AMBIGUOUS = -2, /* two agents share it: trust neither */
};

/* Looks the fingerprint up among the registered agents (read afresh, like
 * the authorized keys, so an agent paired while status-serve runs is
 * known). On STATUS_IDENTITY_FOUND id holds the agent id; otherwise why
 * says what was wrong. */
enum status_identity status_identity_of_key(const char *fingerprint, char id[AGENT_ID_LEN + 1],
                                            char *why, size_t whylen);

/* The address agent id's session names point at: where the shell dials it
 * (agent-keys/<id>/agent-host). A literal is used as it is, a name is
 * resolved. Returns 0 with ip numeric, or -1. */
int status_identity_address(const char *id, char *ip, size_t iplen);

#endif
