#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *log_ident = "convocate";
static bool log_to_syslog;
static bool log_is_verbose;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(const char *ident, bool verbose)
{
    log_ident = ident;
    log_is_verbose = verbose;
    log_to_syslog = getenv("INVOCATION_ID") != NULL || getenv("JOURNAL_STREAM") != NULL;
    if (log_to_syslog)
        openlog(ident, LOG_PID, LOG_DAEMON);
}

bool log_verbose(void)
{
    return log_is_verbose;
}

static const char *prio_word(int prio)
{
    switch (prio) {
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_DEBUG:
        return "debug";
    default:
        return "info";
    }
}

void log_msg(int prio, const char *fmt, ...)
{
    if (prio == LOG_DEBUG && !log_is_verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (log_to_syslog) {
        vsyslog(prio, fmt, ap);
    } else {
        char stamp[32];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
        /* One locked write per line so threads never interleave mid-line. */
        pthread_mutex_lock(&log_lock);
        fprintf(stderr, "%s.%03ld %s %s: ", stamp, now.tv_nsec / 1000000, log_ident,
                prio_word(prio));
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        fflush(stderr);
        pthread_mutex_unlock(&log_lock);
    }
    va_end(ap);
}
