/* The shell side: its configuration directory, the tcp/223 host key, the
 * list of agent keys allowed to report, the DNS domain and hosts file, the
 * status service unit, and the log channel's CA, server certificate and
 * rsyslog listener. The keys and the operator-editable files are created
 * once and then left alone. */
#include "host/init_shell.h"

#include <libssh/libssh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/pki/ca.h"
#include "provision/deploy.h"
#include "host/install_host.h"
#include "provision/keysteps.h"
#include "provision/packaging.h"
#include "provision/service.h"
#include "host/pki/rsyslog_apparmor.h"
#include "host/pki/rsyslog_conf.h"
#include "host/pki/tlssteps.h"
#include "provision/conf_dir.h"

#define SHELL_NAME_FALLBACK "convocate-shell"
#define UNAME_OUTPUT_MAX 512

/* The first line names who wrote the file (packaging_unit_step reads it). */
#define STATUS_UNIT_HEADER "# Installed by convocate-host init-shell"
static const char status_unit[] =
    "# Installed by convocate-host init-shell; rewritten on each run.\n"
    "[Unit]\n"
    "Description=convocate status listener (tcp/223: agent status events)\n"
    "Documentation=man:convocate(1)\n"
    "After=network-online.target\n"
    "Wants=network-online.target\n"
    "\n"
    "[Service]\n"
    "Type=simple\n"
    "ExecStart=/usr/local/bin/convocate status-serve\n"
    "Restart=on-failure\n"
    "RestartSec=2s\n"
    "RuntimeDirectory=convocate\n"
    "RuntimeDirectoryMode=0750\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

static const char default_domain[] = SHELL_DEFAULT_DOMAIN "\n";

/* The name the server certificate carries and every agent's rsyslog
 * checks (x509/name): the target's node name. It identifies the shell; it
 * need not be what agents dial, since the check compares names, not
 * addresses. A node name that cannot be a DNS name falls back to a fixed
 * one. */
static void shell_name(runner *r, char *out, size_t size)
{
    char *argv[] = {"uname", "-n", NULL}, *text = NULL, err[256];
    snprintf(out, size, "%s", SHELL_NAME_FALLBACK);
    if (r->ops->run(r, argv, &text, UNAME_OUTPUT_MAX, err, sizeof err) == 0 && text != NULL) {
        text[strcspn(text, "\r\n")] = '\0';
        size_t n = strlen(text);
        bool ok =
            n > 0 && n < size && n <= 63 && text[0] != '-' &&
            strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
        if (ok)
            snprintf(out, size, "%s", text);
    }
    free(text);
}

static int server_dropin_step(plan *p, runner *shell)
{
    char ca[PATH_BUF], cert[PATH_BUF], key[PATH_BUF], logs[PATH_BUF], err[512];
    if (runner_real_path(shell, SHELL_RSYSLOG_CA_CERT, ca, sizeof ca) < 0 ||
        runner_real_path(shell, SHELL_RSYSLOG_SERVER_CERT, cert, sizeof cert) < 0 ||
        runner_real_path(shell, SHELL_RSYSLOG_SERVER_KEY, key, sizeof key) < 0 ||
        runner_real_path(shell, RSYSLOG_AGENT_LOG_DIR, logs, sizeof logs) < 0)
        return plan_fail(p, "rsyslog server drop-in", "the root path is too long");
    rsyslog_server_params params = {.port = RSYSLOG_PORT_DEFAULT,
                                    .ca_file = ca,
                                    .cert_file = cert,
                                    .key_file = key,
                                    .log_dir = logs};
    char *text = rsyslog_server_conf(&params, err, sizeof err);
    if (text == NULL)
        return plan_fail(p, "rsyslog server drop-in", "%s", err);
    int rc = plan_file(p, shell, "rsyslog server drop-in", RSYSLOG_SERVER_DROPIN, text,
                       strlen(text), 0644, 0, 0);
    free(text);
    return rc;
}

/* The CA (minted once), the listener's certificate, the listener itself and
 * the rotation of the files it writes. Where rsyslogd drops privileges to
 * the syslog group (Ubuntu), the directory, the CA certificate and the
 * server pair are readable by that group, else by root alone; the CA key is
 * root's alone either way. */
static int log_channel_steps(plan *p, runner *shell)
{
    ca_pair ca = {0};
    tls_access access;
    char name[64];
    tlsstep_access(shell, &access);
    shell_name(shell, name, sizeof name);
    ca_leaf_request req = {.kind = CA_LEAF_SERVER, .cn = name};
    if (ca_is_ip_literal(name))
        req.san_ip = name;
    else
        req.san_dns = name;
    int rc =
        plan_dir(p, shell, "rsyslog-ca/", SHELL_RSYSLOG_CA_DIR, access.dir_mode, 0, access.gid);
    if (rc == 0)
        rc = tlsstep_ca(p, shell, SHELL_RSYSLOG_CA_CERT, SHELL_RSYSLOG_CA_KEY, &access, &ca);
    if (rc == 0)
        rc = tlsstep_leaf(p, shell, "rsyslog server", &ca, &req, SHELL_RSYSLOG_SERVER_CERT,
                          SHELL_RSYSLOG_SERVER_KEY, &access);
    ca_pair_clear(&ca);
    if (rc == 0)
        rc = server_dropin_step(p, shell);
    if (rc == 0)
        rc = rsyslog_apparmor_step(p, shell);
    if (rc == 0)
        rc = plan_file(p, shell, "logrotate", LOGROTATE_AGENT_LOGS, logrotate_agent_logs_conf(),
                       strlen(logrotate_agent_logs_conf()), 0644, 0, 0);
    return rc;
}

int init_shell_program_steps(plan *p, runner *shell)
{
    /* convocate runs the TUI and status-serve there; convocate-host
     * provisions agents from there and deploys the convocate-agent that
     * lies next to it. */
    static const char *const programs[] = {"convocate", "convocate-host", "convocate-agent"};
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++)
        if (deploy_binary_step(p, shell, programs[i]) < 0)
            return -1;
    step_outcome outcome;
    return deploy_install_step(p, shell, "convocate install", SHELL_BIN_PATH, &outcome);
}

int init_shell_package_steps(plan *p, runner *shell, const deb_file *debs, size_t n)
{
    step_outcome outcome;
    if (deploy_debs_step(p, shell, debs, n) < 0)
        return -1;
    return deploy_install_step(p, shell, "convocate install", PACKAGE_BIN_DIR "/convocate",
                               &outcome);
}

/* 223 (status) and 514 (logs) open where ufw is installed; a host without
 * it gets one line, since its firewall (if any) is the operator's. Never
 * under a --root directory: ufw acts on this whole machine. */
static void firewall_steps(plan *p, runner *shell)
{
    if (!shell->remote && !runner_is_real_root(shell))
        return;
    if (!shell->ops->has_program(shell, "ufw")) {
        printf("  ufw: not installed on %s; 223/tcp and 514/tcp not opened by us\n", shell->where);
        fflush(stdout);
        return;
    }
    host_ufw_allow(p, shell, "223", false);
    host_ufw_allow(p, shell, "514", false);
}

int init_shell_steps(plan *p, runner *shell)
{
    gid_t claude = shell_claude_gid(shell);
    ssh_key host_key = NULL;
    if (plan_dir(p, shell, SHELL_CONF_DIR "/", SHELL_CONF_DIR, conf_dir_mode(shell), 0, claude) < 0)
        return -1;
    if (keystep_pair(p, shell, "status_host_ed25519_key", STATUS_HOST_KEY, "convocate-status", 0600,
                     0, 0, &host_key) < 0)
        return -1;
    ssh_key_free(host_key);
    if (plan_file_once(p, shell, "status_authorized_keys", STATUS_AUTH_KEYS, "", 0, 0644, 0, 0) <
            0 ||
        plan_file_once(p, shell, "domain", SHELL_CONF_DIR "/domain", default_domain,
                       sizeof default_domain - 1, 0644, 0, 0) < 0 ||
        plan_dir(p, shell, "agent-keys/", SHELL_AGENT_KEYS_DIR, 0750, 0, claude) < 0)
        return -1;
    if (shell_dns_steps(p, shell) < 0)
        return -1;
    int before_logs = p->changes;
    if (log_channel_steps(p, shell) < 0)
        return -1;
    bool logs_changed = p->changes > before_logs;
    int before_unit = p->changes;
    /* The convocate package ships the unit; else it is ours to write. */
    int packaged = packaging_unit_step(p, shell, "convocate-status.service", STATUS_UNIT_HEADER);
    if (packaged < 0 ||
        (packaged == 0 && plan_file(p, shell, "convocate-status.service",
                                    "/etc/systemd/system/convocate-status.service", status_unit,
                                    sizeof status_unit - 1, 0644, 0, 0) < 0))
        return -1;
    bool unit_changed = p->changes > before_unit;
    /* The listener reads its keys at start: restart it after any change. */
    bool changed = p->changes > 0;
    firewall_steps(p, shell); /* rules need no restart */
    if (service_step(p, shell, "convocate-status", unit_changed, changed,
                     "convocate status-serve") < 0)
        return -1;
    return service_step(p, shell, "rsyslog", false, logs_changed, "rsyslogd");
}
