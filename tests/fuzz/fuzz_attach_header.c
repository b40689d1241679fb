/* The convocate-agent-attach header line (proto/attach_header.c): what the
 * agent reads before it joins a channel to a terminal. */
#include <string.h>

#include "common/ids.h"
#include "fuzz.h"
#include "proto/attach_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    attach_header h;
    char err[256] = "";
    if (attach_header_decode((const char *)data, size, &h, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(uuid_v4_is_valid(h.id));
    FUZZ_CHECK(h.cols >= 1 && h.cols <= 1000 && h.rows >= 1 && h.rows <= 1000);
    return 0;
}
