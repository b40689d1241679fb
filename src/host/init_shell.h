/* `convocate-host init-shell`: the shell side of SPEC 4 on a runner's target. */
#ifndef CONVOCATE_HOST_INIT_SHELL_H
#define CONVOCATE_HOST_INIT_SHELL_H

#include "provision/plan.h"
#include "provision/runner.h"
#include "shell/install.h"

#define STATUS_HOST_KEY SHELL_CONF_DIR "/status_host_ed25519_key"
#define STATUS_AUTH_KEYS SHELL_CONF_DIR "/status_authorized_keys"
#define SHELL_AGENT_KEYS_DIR SHELL_CONF_DIR "/agent-keys"
#define SHELL_DEFAULT_DOMAIN "convocate.internal"
#define SHELL_RSYSLOG_CA_DIR SHELL_CONF_DIR "/rsyslog-ca"
#define SHELL_RSYSLOG_CA_CERT SHELL_RSYSLOG_CA_DIR "/ca.crt"
#define SHELL_RSYSLOG_CA_KEY SHELL_RSYSLOG_CA_DIR "/ca.key"
#define SHELL_RSYSLOG_SERVER_CERT SHELL_RSYSLOG_CA_DIR "/server.crt"
#define SHELL_RSYSLOG_SERVER_KEY SHELL_RSYSLOG_CA_DIR "/server.key"

/* A remote shell host only, before init_shell_steps: deploys convocate,
 * convocate-host and convocate-agent to /usr/local/bin and runs
 * `convocate install` there. 0, or -1 after one line naming the step. */
int init_shell_program_steps(plan *p, runner *shell);

/* Runs every step; 0, or -1 after one line on stderr naming the step. */
int init_shell_steps(plan *p, runner *shell);

#endif
