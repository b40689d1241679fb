/* One line of the engine's event stream (engine/events.c): what the agent's
 * engine watcher reads from dockerd, a peer it trusts but bounds. */
#include <string.h>

#include "common/ids.h"
#include "engine/events.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    docker_event ev;
    if (docker_event_parse((const char *)data, size, &ev) < 0)
        return 0;
    FUZZ_CHECK(uuid_v4_is_valid(ev.uuid));
    FUZZ_CHECK(ev.action >= DOCKER_EV_START && ev.action <= DOCKER_EV_STOP);
    FUZZ_CHECK(ev.exit_code >= -1 && ev.exit_code <= 999999);
    FUZZ_CHECK(ev.signal >= 0 && ev.signal <= 999999);
    return 0;
}
