/* RFC 3339 UTC timestamps and monotonic clocks. */
#ifndef CONVOCATE_COMMON_TIMEUTIL_H
#define CONVOCATE_COMMON_TIMEUTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define RFC3339_LEN 21 /* "2026-11-24T10:00:00Z" and the NUL */

void rfc3339_format(time_t t, char out[RFC3339_LEN]);
/* Accepts exactly YYYY-MM-DDTHH:MM:SSZ (optionally with .fraction before Z). */
bool rfc3339_parse(const char *s, time_t *out);
/* Milliseconds on the monotonic clock. */
int64_t monotonic_ms(void);
/* Sleeps ms milliseconds, resuming after a signal. */
void sleep_ms(long ms);
/* The CLOCK_MONOTONIC time ms from now, for a timed wait on a condition
 * made by monotonic_cond_init (so a wall-clock step never stretches it). */
void monotonic_deadline(struct timespec *ts, int64_t ms);
int monotonic_cond_init(pthread_cond_t *cond);

#endif
