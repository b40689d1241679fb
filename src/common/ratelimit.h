/* A log line rate limit: at most one line per interval, and the line that
 * passes says how many were held back since the previous one. A peer that
 * repeats a refused request thousands of times must not flood the log, yet
 * the operator still learns how often it happened. */
#ifndef CONVOCATE_COMMON_RATELIMIT_H
#define CONVOCATE_COMMON_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_DEFAULT_MS 10000

typedef struct {
    int64_t next_ms;          /* monotonic time from which a line may pass again */
    unsigned long suppressed; /* lines held back since the last that passed */
    bool started;             /* false: the first line always passes */
} ratelimit;

/* Counts one occurrence at now_ms (monotonic). True when it may be logged
 * now; *suppressed then holds how many were held back before it (and the
 * count restarts). */
bool ratelimit_pass(ratelimit *r, int64_t now_ms, int64_t interval_ms, unsigned long *suppressed);

#endif
