/* /etc/logrotate.d/convocate-agent-logs: the same text on the shell (which
 * writes the files) and on every agent (a single-box host gets it from both
 * installs), so neither install owns it. */
#ifndef CONVOCATE_PROVISION_LOGROTATE_H
#define CONVOCATE_PROVISION_LOGROTATE_H

#include "common/layout.h"

const char *logrotate_agent_logs_conf(void);

#endif
