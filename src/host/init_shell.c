/* The shell side: its configuration directory, the tcp/223 host key, the
 * list of agent keys allowed to report, the DNS domain and hosts file, and
 * the status service unit. The keys and the operator-editable files are
 * created once and then left alone. */
#include "host/init_shell.h"

#include <libssh/libssh.h>

#include "host/keysteps.h"
#include "shell/install.h"

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

int init_shell_steps(plan *p, runner *shell)
{
    gid_t claude = shell_claude_gid(shell);
    ssh_key host_key = NULL;
    if (plan_dir(p, shell, SHELL_CONF_DIR "/", SHELL_CONF_DIR, 0750, 0, claude) < 0)
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
    return plan_file(p, shell, "convocate-status.service",
                     "/etc/systemd/system/convocate-status.service", status_unit,
                     sizeof status_unit - 1, 0644, 0, 0);
}
