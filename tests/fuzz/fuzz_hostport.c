/* "host[:port]" (common/hostport.c), as the agent-host and shell-host
 * files and --listen hold it. */
#include <stdlib.h>
#include <string.h>

#include "common/hostport.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    char host[256];
    int port = -1;
    memset(host, 'X', sizeof host);
    if (parse_host_port(s, 222, host, sizeof host, &port) == 0) {
        FUZZ_CHECK(memchr(host, '\0', sizeof host) != NULL);
        FUZZ_CHECK(port >= 1 && port <= 65535);
        FUZZ_CHECK(strlen(host) <= strlen(s));
    }
    /* a buffer too small must be refused, never overrun */
    char tiny[4];
    if (parse_host_port(s, 222, tiny, sizeof tiny, &port) == 0)
        FUZZ_CHECK(memchr(tiny, '\0', sizeof tiny) != NULL);
    free(s);
    return 0;
}
