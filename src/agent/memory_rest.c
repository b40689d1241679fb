/* See memory_rest.h: trimming the malloc arenas once the agent is quiet. */
#include "agent/memory_rest.h"

#include <malloc.h>
#include <time.h>

#include "common/log.h"

static long long elapsed_us(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - since->tv_sec) * 1000000LL +
           (now.tv_nsec - since->tv_nsec) / 1000;
}

void memory_rest_init(memory_rest *r)
{
    atomic_init(&r->activity, 0);
    atomic_init(&r->trims, 0);
    r->seen = 0;
    r->owed = false;
}

void memory_rest_note(memory_rest *r)
{
    atomic_fetch_add_explicit(&r->activity, 1, memory_order_relaxed);
}

bool memory_rest_tick(memory_rest *r)
{
    unsigned long now = atomic_load_explicit(&r->activity, memory_order_relaxed);
    if (now != r->seen) { /* busy during the last period: wait for a quiet one */
        r->seen = now;
        r->owed = true;
        return false;
    }
    if (!r->owed)
        return false; /* still the same quiet spell: nothing new was freed */
    r->owed = false;
    struct timespec began;
    clock_gettime(CLOCK_MONOTONIC, &began);
    int released = malloc_trim(0);
    atomic_fetch_add_explicit(&r->trims, 1, memory_order_relaxed);
    log_debug("memory: trimmed the heap at rest in %lld us (%s)", elapsed_us(&began),
              released ? "pages released" : "none free");
    return true;
}

void memory_rest_tick_hook(void *r)
{
    memory_rest_tick(r);
}
