#include "provision/logrotate.h"

static const char logrotate_conf[] =
    "# Installed by convocate: session container logs, one file per agent.\n"
    "/var/log/convocate-agent/*.log {\n"
    "    daily\n"
    "    rotate 14\n"
    "    maxsize 100M\n"
    "    compress\n"
    "    delaycompress\n"
    "    missingok\n"
    "    notifempty\n"
    "    sharedscripts\n"
    "    postrotate\n"
    "        /usr/lib/rsyslog/rsyslog-rotate >/dev/null 2>&1 || true\n"
    "    endscript\n"
    "}\n";

const char *logrotate_agent_logs_conf(void)
{
    return logrotate_conf;
}
