/* Claims on (port, protocol) and DNS names (SPEC 6): what two sessions of
 * one agent may not share, and the lowest port nobody holds. */
#ifndef CONVOCATE_AGENT_CLAIMS_H
#define CONVOCATE_AGENT_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/session.h"

/* The part of a session that others may collide with. */
typedef struct {
    char uuid[UUID_STR_LEN];
    char name[SESSION_NAME_MAX + 1];
    int port;
    char protocol[4];
    char dns_name[DNS_LABEL_MAX + 1];
} session_claim;

/* Whether the host lets us bind port/protocol now (true = free). */
typedef bool (*port_probe_fn)(int port, const char *protocol, void *ctx);
bool host_port_is_free(int port, const char *protocol, void *ctx);

/* Pure collision rules, for tests. A claim whose uuid is self_uuid is
 * ignored. 0, or -1 with the operator's error text. */
int claims_check(const session_claim *claims, size_t n, const char *self_uuid, int port,
                 const char *protocol, const char *dns_name, char *err, size_t errlen);
/* Lowest port >= PORT_AUTO_FIRST that no claim holds for protocol and the
 * probe finds free; -1 when there is none. */
int claims_pick_port(const session_claim *claims, size_t n, const char *self_uuid,
                     const char *protocol, port_probe_fn probe, void *ctx);
/* The claim a session makes. */
void claim_from_meta(session_claim *c, const session_meta *m);

#endif
