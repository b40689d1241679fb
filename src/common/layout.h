/* Where things live on a shell host and on an agent host (SPEC 4), as the
 * host itself sees them: every path here is taken under --root by
 * root_path() or a runner before use. One home for these names, so the
 * programs that write a file and the ones that read it cannot disagree. */
#ifndef CONVOCATE_COMMON_LAYOUT_H
#define CONVOCATE_COMMON_LAYOUT_H

/* The claude user and group that own session homes (SPEC 4). */
#define CLAUDE_UID_DEFAULT 1337
#define CLAUDE_GID_DEFAULT 1337

/* Shell host. */
#define SHELL_CONF_DIR "/etc/convocate"
#define STATUS_HOST_KEY SHELL_CONF_DIR "/status_host_ed25519_key"
#define STATUS_AUTH_KEYS SHELL_CONF_DIR "/status_authorized_keys"
#define SHELL_AGENT_KEYS_DIR SHELL_CONF_DIR "/agent-keys"
#define SHELL_DEFAULT_DOMAIN "convocate.internal"
#define SHELL_RSYSLOG_CA_DIR SHELL_CONF_DIR "/rsyslog-ca"
#define SHELL_RSYSLOG_CA_CERT SHELL_RSYSLOG_CA_DIR "/ca.crt"
#define SHELL_RSYSLOG_CA_KEY SHELL_RSYSLOG_CA_DIR "/ca.key"
#define SHELL_RSYSLOG_SERVER_CERT SHELL_RSYSLOG_CA_DIR "/server.crt"
#define SHELL_RSYSLOG_SERVER_KEY SHELL_RSYSLOG_CA_DIR "/server.key"
#define SHELL_DNSMASQ_HOSTS "/var/lib/convocate/dnsmasq-hosts"
#define SHELL_DNSMASQ_DROPIN "/etc/dnsmasq.d/10-convocate.conf"
#define SHELL_LOGIN_SHELL "/usr/local/bin/convocate"

/* Agent host. */
#define AGENT_CONF_DIR "/etc/convocate-agent"
#define AGENT_CURRENT_IMAGE AGENT_CONF_DIR "/current-image"
#define AGENT_RSYSLOG_TLS_DIR AGENT_CONF_DIR "/rsyslog-tls"
/* Session metadata, <uuid>.json (root 0600 in a root 0700 directory, SPEC
 * 6.1): out of the homes, which the sessions' containers can write. */
#define AGENT_STATE_DIR "/var/lib/convocate-agent"
#define AGENT_SESSIONS_DIR AGENT_STATE_DIR "/sessions"
/* What agents before SPEC 6.1 kept in each home; read once, to move it. */
#define LEGACY_SESSION_FILE "session.json"
/* A session home is built as <home>/.new-<uuid> and renamed into place, by
 * the agent's store and by migrate-session alike; whatever a crash leaves
 * under the prefix is removed when the agent next starts (store.c). */
#define AGENT_STAGING_PREFIX ".new-"

/* Both: container logs, one file per agent on the shell. */
#define RSYSLOG_AGENT_LOG_DIR "/var/log/convocate-agent"
#define LOGROTATE_AGENT_LOGS "/etc/logrotate.d/convocate-agent-logs"
/* Ubuntu's rsyslogd drops privileges to this user and group after start
 * ($PrivDropToUser syslog in /etc/rsyslog.conf); Debian's keeps running as
 * root. Where the group exists, the TLS files rsyslog reads are readable
 * by it (host/pki/tlssteps.c) and the configuration directory holding them
 * lets others search, not list, it (RSYSLOG_SHARED_PARENT_MODE, chosen by
 * provision/conf_dir.c), or the dropped daemon cannot open them and the log
 * channel fails silently. */
#define RSYSLOG_READER_GROUP "syslog"
#define RSYSLOG_SHARED_PARENT_MODE 0751

#endif
