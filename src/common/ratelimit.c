#include "common/ratelimit.h"

bool ratelimit_pass(ratelimit *r, int64_t now_ms, int64_t interval_ms, unsigned long *suppressed)
{
    if (r->started && now_ms < r->next_ms) {
        r->suppressed++;
        return false;
    }
    *suppressed = r->suppressed;
    r->suppressed = 0;
    r->started = true;
    r->next_ms = now_ms + interval_ms;
    return true;
}
