/* Claims on (port, protocol) and DNS names: the collision rules and the
 * lowest free port, as pure functions over a list of claims (the store
 * gathers the list and holds its mutex around their use). */
#include "agent/claims.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- collision rules ---- */

bool host_port_is_free(int port, const char *protocol, void *ctx)
{
    (void)ctx;
    int udp = strcmp(protocol, "udp") == 0;
    int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    /* SO_REUSEADDR: a TCP port in TIME_WAIT is not in use by anyone. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    bool free_now = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return free_now;
}

int claims_check(const session_claim *claims, size_t n, const char *self_uuid, int port,
                 const char *protocol, const char *dns_name, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const session_claim *c = &claims[i];
        if (self_uuid && strcmp(c->uuid, self_uuid) == 0)
            continue;
        if (port > 0 && c->port == port && strcmp(c->protocol, protocol) == 0) {
            snprintf(err, errlen, "port %d/%s already in use by session \"%s\"", port, protocol,
                     c->name);
            return -1;
        }
        if (dns_name && dns_name[0] && strcmp(c->dns_name, dns_name) == 0) {
            snprintf(err, errlen, "dns name \"%s\" already in use", dns_name);
            return -1;
        }
    }
    return 0;
}

static bool claimed(const session_claim *claims, size_t n, const char *self_uuid, int port,
                    const char *protocol)
{
    for (size_t i = 0; i < n; i++)
        if ((!self_uuid || strcmp(claims[i].uuid, self_uuid) != 0) && claims[i].port == port &&
            strcmp(claims[i].protocol, protocol) == 0)
            return true;
    return false;
}

int claims_pick_port(const session_claim *claims, size_t n, const char *self_uuid,
                     const char *protocol, port_probe_fn probe, void *ctx)
{
    for (int port = PORT_AUTO_FIRST; port <= PORT_MAX; port++) {
        if (claimed(claims, n, self_uuid, port, protocol))
            continue;
        if (probe == NULL || probe(port, protocol, ctx))
            return port;
    }
    return -1;
}

void claim_from_meta(session_claim *c, const session_meta *m)
{
    memset(c, 0, sizeof *c);
    memcpy(c->uuid, m->uuid, sizeof c->uuid);
    memcpy(c->name, m->name, sizeof c->name);
    c->port = m->port;
    memcpy(c->protocol, m->protocol, sizeof c->protocol);
    memcpy(c->dns_name, m->dns_name, sizeof c->dns_name);
}
