#include "common/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

void rfc3339_format(time_t t, char out[RFC3339_LEN])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool rfc3339_parse(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return false;
    if (*end == '.') {
        end++;
        if (!isdigit((unsigned char)*end))
            return false;
        while (isdigit((unsigned char)*end))
            end++;
    }
    if (strcmp(end, "Z") != 0)
        return false;
    *out = timegm(&tm);
    return true;
}

int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void monotonic_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int monotonic_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
                     pthread_cond_init(cond, &attr) == 0
                 ? 0
                 : -1;
    pthread_condattr_destroy(&attr);
    return rc;
}
