/* One status event line as status-serve receives it from an agent
 * (proto/status_event.c), and the DNS name check its DNS name goes to. */
#include <string.h>

#include "common/ids.h"
#include "fuzz.h"
#include "proto/status_event.h"
#include "provision/dnsmasq_hosts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    status_event ev;
    char err[256] = "";
    if (status_event_parse((const char *)data, size, &ev, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0] != '\0' && ev.root == NULL);
        return 0;
    }
    FUZZ_CHECK(ev.type != NULL && strlen(ev.type) <= STATUS_EVENT_TYPE_MAX);
    FUZZ_CHECK(agent_id_is_valid(ev.agent_id));
    FUZZ_CHECK(ev.session_id == NULL || uuid_v4_is_valid(ev.session_id));
    int hb = status_event_heartbeat(&ev);
    FUZZ_CHECK(hb == 0 || (hb >= STATUS_EVENT_HEARTBEAT_MIN && hb <= STATUS_EVENT_HEARTBEAT_MAX));
    const char *name = status_event_dns_name(&ev);
    if (dns_name_is_valid(name))
        FUZZ_CHECK(strlen(name) <= DNS_NAME_MAX_LEN && strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                                                    "0123456789-") == strlen(name));
    status_event_clear(&ev);
    return 0;
}
