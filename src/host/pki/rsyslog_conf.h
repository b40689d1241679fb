/* The rsyslog drop-ins of the log channel (SPEC 4, 13), rendered as text:
 * the shell's TLS listener that writes one file per agent, and each agent's
 * forwarder of its session containers' logs. Every path is a parameter (as
 * the target itself sees it), so tests render the same files under a
 * temporary root and start real rsyslogd daemons on them. */
#ifndef CONVOCATE_HOST_PKI_RSYSLOG_CONF_H
#define CONVOCATE_HOST_PKI_RSYSLOG_CONF_H

#include <stddef.h>

#include "common/layout.h"
#include "engine/docker.h"

#define RSYSLOG_PORT_DEFAULT 514
#define RSYSLOG_SERVER_DROPIN "/etc/rsyslog.d/10-convocate-server.conf"
#define RSYSLOG_CLIENT_DROPIN "/etc/rsyslog.d/10-convocate-client.conf"
#define RSYSLOG_SPOOL_DIR "/var/spool/rsyslog" /* Debian's rsyslog work directory */
/* Docker's syslog driver tags each line with the container name. */
#define RSYSLOG_SESSION_TAG_PREFIX ENGINE_CONTAINER_PREFIX

typedef struct {
    int port;
    const char *ca_file;   /* rsyslog-ca/ca.crt: client certificates must chain to it */
    const char *cert_file; /* rsyslog-ca/server.crt */
    const char *key_file;  /* rsyslog-ca/server.key */
    const char *log_dir;   /* where <agent-id>.log files are written */
} rsyslog_server_params;

typedef struct {
    const char *agent_id; /* stamped into every forwarded line */
    const char *target;   /* the shell's host name or address */
    int port;
    const char *server_name; /* the CN of the shell's server certificate */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    const char *spool_dir; /* the disk-assisted queue's files */
} rsyslog_client_params;

/* The drop-ins; malloc'd text, or NULL with err when a parameter is not
 * something that may be written into an rsyslog configuration. */
char *rsyslog_server_conf(const rsyslog_server_params *p, char *err, size_t errlen);
char *rsyslog_client_conf(const rsyslog_client_params *p, char *err, size_t errlen);

#endif
