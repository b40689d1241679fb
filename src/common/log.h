/* Logging: stderr for interactive or hand-started runs, syslog under systemd. */
#ifndef CONVOCATE_COMMON_LOG_H
#define CONVOCATE_COMMON_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Chooses the sink once: syslog (facility daemon, ident = program name) when
 * started by systemd (INVOCATION_ID or JOURNAL_STREAM set), stderr otherwise. */
void log_init(const char *ident, bool verbose);
bool log_verbose(void);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
