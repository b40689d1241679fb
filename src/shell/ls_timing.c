/* See ls_timing.h. */
#include "shell/ls_timing.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static struct {
    bool on;
    double start_ms;
    double at_ms[LS_PHASES];
} timing;

static double now_ms(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

void ls_timing_begin(void)
{
    const char *path = getenv("CONVOCATE_LS_TIMING");
    timing.on = path != NULL && path[0] != '\0';
    if (timing.on)
        timing.start_ms = now_ms(CLOCK_MONOTONIC);
}

void ls_timing_mark(enum ls_phase phase)
{
    if (timing.on)
        timing.at_ms[phase] = now_ms(CLOCK_MONOTONIC) - timing.start_ms;
}

void ls_timing_end(size_t agents, size_t sessions, const char *via)
{
    if (!timing.on)
        return;
    FILE *f = fopen(getenv("CONVOCATE_LS_TIMING"), "ae");
    if (f == NULL)
        return;
    fprintf(f,
            "ls answers %.1f merged %.1f printed %.1f freed %.1f cpu %.1f agents %zu sessions %zu "
            "via %s\n",
            timing.at_ms[LS_ANSWERS], timing.at_ms[LS_MERGED], timing.at_ms[LS_PRINTED],
            timing.at_ms[LS_FREED], now_ms(CLOCK_PROCESS_CPUTIME_ID), agents, sessions, via);
    fclose(f);
}
