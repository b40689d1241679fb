/* Ubuntu confines rsyslogd with an AppArmor profile that knows nothing of
 * convocate's certificate directories: whatever the file modes say, the
 * daemon is refused them and the log channel fails. The profile includes
 * a site-local file for additions; convocate keeps one marked block in it
 * (lines outside the block are the operator's and are kept) and reloads
 * the profile when the block changed. Hosts without the profile (Debian)
 * are left alone. */
#ifndef CONVOCATE_HOST_PKI_RSYSLOG_APPARMOR_H
#define CONVOCATE_HOST_PKI_RSYSLOG_APPARMOR_H

#include <stddef.h>

#include "provision/plan.h"
#include "provision/runner.h"

#define RSYSLOG_APPARMOR_PROFILE "/etc/apparmor.d/usr.sbin.rsyslogd"
#define RSYSLOG_APPARMOR_LOCAL_DIR "/etc/apparmor.d/local"
#define RSYSLOG_APPARMOR_LOCAL RSYSLOG_APPARMOR_LOCAL_DIR "/usr.sbin.rsyslogd"
#define RSYSLOG_APPARMOR_BEGIN "# BEGIN convocate"
#define RSYSLOG_APPARMOR_END "# END convocate"

/* existing (len bytes, may be NULL) with convocate's block replaced, or
 * appended when absent; malloc'd, NUL-terminated, *out_len set. NULL when
 * out of memory or when existing has a BEGIN marker without its END (the
 * file was edited by hand; refusing beats guessing where the block ends). */
char *rsyslog_apparmor_merge(const char *existing, size_t len, size_t *out_len);

/* The step for init-shell and init-agent: nothing when the target has no
 * rsyslogd profile; otherwise the block in the local file, and on a change
 * `apparmor_parser -r` of the profile (real root only). */
int rsyslog_apparmor_step(plan *p, runner *r);

#endif
