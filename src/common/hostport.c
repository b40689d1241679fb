#include "common/hostport.h"

#include <stdlib.h>
#include <string.h>

int parse_host_port(const char *s, int default_port, char *host, size_t hostlen, int *port)
{
    const char *end = NULL, *port_str = NULL;
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return -1;
        port_str = end[1] == ':' ? end + 2 : NULL;
        s++;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL; /* a bare IPv6 address: no port */
        end = colon ? colon : s + strlen(s);
        port_str = colon ? colon + 1 : NULL;
    }
    size_t len = (size_t)(end - s);
    if (len == 0 || len >= hostlen)
        return -1;
    memcpy(host, s, len);
    host[len] = '\0';
    *port = default_port;
    if (port_str) {
        char *stop;
        long v = strtol(port_str, &stop, 10);
        if (*port_str == '\0' || *stop != '\0' || v < 1 || v > 65535)
            return -1;
        *port = (int)v;
    }
    return 0;
}
