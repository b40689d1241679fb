/* The configuration directories of both hosts (/etc/convocate on the shell,
 * /etc/convocate-agent on an agent) hold rsyslog's TLS directory, so their
 * mode depends on whether rsyslogd drops privileges (RSYSLOG_READER_GROUP
 * in common/layout.h). */
#ifndef CONVOCATE_PROVISION_CONF_DIR_H
#define CONVOCATE_PROVISION_CONF_DIR_H

#include <sys/types.h>

#include "provision/runner.h"

/* The mode of the configuration directory that holds rsyslog's directory
 * (/etc/convocate, /etc/convocate-agent): 0751 where the syslog group
 * exists, so the dropped daemon can pass through it, else 0750. */
mode_t conf_dir_mode(runner *r);

#endif
