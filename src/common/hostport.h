/* "host[:port]" as the files of SPEC 4 hold it (agent-host, shell-host). */
#ifndef CONVOCATE_COMMON_HOSTPORT_H
#define CONVOCATE_COMMON_HOSTPORT_H

#include <stddef.h>

/* Parses "host", "host:port", a bare IPv6 address or "[v6]:port"; the port
 * is default_port when absent. 0, or -1 when s does not fit that shape. */
int parse_host_port(const char *s, int default_port, char *host, size_t hostlen, int *port);

#endif
