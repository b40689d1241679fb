/* Session metadata (agent/session.c session_decode): a file the agent
 * validates on every read. What decodes must encode, and the encoding must
 * decode to the same session. */
#include <stdlib.h>
#include <string.h>

#include "agent/session.h"
#include "fuzz.h"

static void check_valid(const session_meta *m)
{
    FUZZ_CHECK(uuid_v4_is_valid(m->uuid));
    FUZZ_CHECK(session_name_is_valid(m->name));
    FUZZ_CHECK(m->port == PORT_NONE || (m->port >= 1 && m->port <= PORT_MAX));
    FUZZ_CHECK(protocol_is_valid(m->protocol));
    FUZZ_CHECK(m->dns_name[0] == '\0' || dns_label_is_valid(m->dns_name));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    session_meta m = {0}, back = {0};
    char err[256] = "";
    if (session_decode((const char *)data, size, NULL, &m, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        session_meta_clear(&m);
        return 0;
    }
    check_valid(&m);
    size_t len = 0;
    char *text = session_encode(&m, &len);
    FUZZ_CHECK(text != NULL);
    if (session_decode(text, len, m.uuid, &back, err, sizeof err) < 0)
        fuzz_fail(err, __FILE__, __LINE__);
    FUZZ_CHECK(strcmp(back.name, m.name) == 0 && back.port == m.port &&
               strcmp(back.protocol, m.protocol) == 0 && strcmp(back.dns_name, m.dns_name) == 0 &&
               back.created_at == m.created_at && back.last_accessed == m.last_accessed);
    session_meta copy = {0};
    FUZZ_CHECK(session_meta_copy(&copy, &m) == 0);
    session_meta_clear(&copy);
    session_meta_clear(&back);
    free(text);
    session_meta_clear(&m);
    return 0;
}
