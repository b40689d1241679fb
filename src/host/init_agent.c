/* Pairing one agent with this shell. Two ed25519 pairs are minted once and
 * each half placed where SPEC 4 says:
 *
 *   shell_to_agent: private on the shell (the TUI dials 222 with it), public
 *                   in the agent's authorized_keys;
 *   agent_to_shell: private on the agent (its emitter dials 223 with it),
 *                   public in the shell's status_authorized_keys;
 *
 * and each side pins the other's host key. Pins are checked before anything
 * is written, so a refused run leaves both sides exactly as they were.
 *
 * Then the log channel: the agent gets the CA certificate, a client
 * certificate issued by the CA (CN = agent id) and the rsyslog forwarder
 * pointing at the shell; see rsyslog_conf.c for how the id travels. */
#include "host/init_agent.h"

#include <errno.h>
#include <libssh/libssh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "host/pki/ca.h"
#include "host/init_shell.h"
#include "provision/keysteps.h"
#include "provision/service.h"
#include "host/pki/rsyslog_apparmor.h"
#include "host/pki/rsyslog_conf.h"
#include "host/pki/tlssteps.h"
#include "provision/conf_dir.h"
#include "host/update.h"
#include "common/layout.h"
#include "provision/shell_host.h"
#include "ssh/registry.h"
#include "ssh/keygen.h"

#define DEFAULT_ADDR "127.0.0.1"
#define ADDR_MAX 300
#define INSTALL_OUTPUT_MAX 65536

typedef struct {
    plan *p;
    runner *shell, *agent;
    const init_agent_options *opt;
    char id[AGENT_ID_LEN + 1];
    char dir[64]; /* /etc/convocate/agent-keys/<id> on the shell */
    gid_t claude;
    ssh_key agent_host_key, status_key;
    char *agent_host_text, *status_text; /* the .pub files as they are */
    char agent_addr[ADDR_MAX], shell_host[ADDR_MAX];
    ca_pair log_ca;                    /* issues the agent's log certificate */
    char server_name[CA_NAME_MAX + 1]; /* the CN of the shell's server certificate */
} pairing;

static void pairing_clear(pairing *pr)
{
    ssh_key_free(pr->agent_host_key);
    ssh_key_free(pr->status_key);
    free(pr->agent_host_text);
    free(pr->status_text);
    ca_pair_clear(&pr->log_ca);
}

/* "host", "host:port" or "[v6]:port" with nothing a config line could
 * trip over. */
static bool address_is_valid(const char *s)
{
    char host[256];
    int port;
    return strlen(s) < ADDR_MAX && parse_host_port(s, 222, host, sizeof host, &port) == 0 &&
           strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-") ==
               strlen(host);
}

/* A public key file the other side needs: text and key, or -1 naming the
 * command that makes it. */
static int read_peer_public(pairing *pr, runner *r, const char *step, const char *path,
                            const char *hint, ssh_key *key, char **text)
{
    size_t len;
    int have = plan_read(pr->p, r, step, path, text, &len);
    if (have < 0)
        return -1;
    if (have == 0)
        return plan_fail(pr->p, step, "%s%s is missing; %s", r->root, path, hint);
    char err[256];
    if (keygen_parse_public(*text, key, err, sizeof err) < 0)
        return plan_fail(pr->p, step, "%s%s: %s", r->root, path, err);
    return 0;
}

/* ---- agent id and the agent's own install ------------------------------- */

static int run_agent_install(pairing *pr, const char *step)
{
    char *argv[] = {(char *)pr->opt->agent_bin, "install", "--root",
                    pr->agent->root[0] ? pr->agent->root : "/", NULL};
    if (pr->p->dry_run) {
        printf("  %s: runs %s install --root %s\n", step, argv[0], argv[3]);
        plan_report(pr->p, step, STEP_CREATED);
        return 0;
    }
    char *out = NULL, err[512];
    int status = pr->agent->ops->run(pr->agent, argv, &out, INSTALL_OUTPUT_MAX, err, sizeof err);
    if (status != 0) {
        /* The install's own last line says which of its steps failed. */
        char why[512];
        runner_output_last_line(status < 0 ? err : out, why, sizeof why);
        int rc = plan_fail(pr->p, step, "%s install failed (exit %d): %s", argv[0], status, why);
        free(out);
        return rc;
    }
    free(out);
    plan_report(pr->p, step, STEP_CREATED);
    return 0;
}

/* Returns 1 with pr->id, 0 when a dry run cannot know the id yet. */
static int ensure_agent_id(pairing *pr)
{
    const char *step = "agent install";
    runner_stat st;
    char err[512], *text = NULL;
    size_t len;
    if (pr->agent->ops->stat_path(pr->agent, AGENT_CONF_DIR "/agent-id", &st, err, sizeof err) < 0)
        return plan_fail(pr->p, step, "%s", err);
    if (!st.exists) {
        if (run_agent_install(pr, step) < 0)
            return -1;
        if (pr->p->dry_run)
            return 0;
    } else {
        plan_report(pr->p, step, STEP_UNCHANGED);
    }
    if (plan_read(pr->p, pr->agent, "agent-id", AGENT_CONF_DIR "/agent-id", &text, &len) <= 0)
        return plan_fail(pr->p, "agent-id", "the agent install left no agent-id");
    text[strcspn(text, "\r\n")] = '\0';
    bool ok = agent_id_is_valid(text);
    if (ok)
        snprintf(pr->id, sizeof pr->id, "%s", text);
    free(text);
    if (!ok)
        return plan_fail(pr->p, "agent-id", "%s%s/agent-id does not hold an 8-character id",
                         pr->agent->root, AGENT_CONF_DIR);
    printf("  agent id: %s\n", pr->id);
    snprintf(pr->dir, sizeof pr->dir, SHELL_AGENT_KEYS_DIR "/%s", pr->id);
    return 1;
}

/* ---- the log channel: what preflight reads ------------------------------ */

/* The CA from --ca-cert/--ca-key (files of this machine), else the
 * shell's. */
static int load_log_ca(pairing *pr, ca_pair *ca)
{
    const char *step = "rsyslog CA";
    if (pr->opt->ca_cert == NULL)
        return tlsstep_load_ca(pr->p, pr->shell, step, SHELL_RSYSLOG_CA_CERT, SHELL_RSYSLOG_CA_KEY,
                               "run 'convocate-host init-shell' first", ca);
    *ca = (ca_pair){0};
    if (read_file_bounded(pr->opt->ca_cert, CA_PEM_MAX, &ca->cert, NULL) < 0)
        return plan_fail(pr->p, step, "--ca-cert %s: %s", pr->opt->ca_cert, strerror(errno));
    if (read_file_bounded(pr->opt->ca_key, CA_PEM_MAX, &ca->key, NULL) < 0) {
        int rc = plan_fail(pr->p, step, "--ca-key %s: %s", pr->opt->ca_key, strerror(errno));
        ca_pair_clear(ca);
        return rc;
    }
    if (tlsstep_check_ca(pr->p, step, ca) < 0) {
        ca_pair_clear(ca);
        return -1;
    }
    return 0;
}

/* The name the agent's rsyslog accepts from the shell: the CN of the
 * shell's server certificate. */
static int shell_cert_name(pairing *pr, char *out, size_t size)
{
    const char *step = "rsyslog server name";
    char *pem = NULL, err[512];
    size_t len;
    int have = plan_read(pr->p, pr->shell, step, SHELL_RSYSLOG_SERVER_CERT, &pem, &len);
    if (have <= 0) {
        return have < 0 ? -1
                        : plan_fail(pr->p, step, "%s%s is missing; run 'convocate-host init-shell'",
                                    pr->shell->root, SHELL_RSYSLOG_SERVER_CERT);
    }
    int rc = ca_cert_cn(pem, out, size, err, sizeof err);
    free(pem);
    if (rc < 0)
        return plan_fail(pr->p, step, "%s: %s", SHELL_RSYSLOG_SERVER_CERT, err);
    return 0;
}

/* The spool directory of the forwarder's disk queue: rsyslog's own work
 * directory, which the package makes; only made here when missing (a test
 * root), never re-moded, since rsyslog may run as its own user. */
/* ---- preflight: nothing is written before both pins are known good ------ */

/* An address flag, else the file's current content, else the default. */
static int choose_address(pairing *pr, runner *r, const char *step, const char *path,
                          const char *flag, char out[ADDR_MAX])
{
    if (flag != NULL) {
        if (!address_is_valid(flag))
            return plan_fail(pr->p, step, "\"%s\" is not HOST or HOST:PORT", flag);
        snprintf(out, ADDR_MAX, "%s", flag);
        return 0;
    }
    char *text = NULL;
    size_t len;
    int have = plan_read(pr->p, r, step, path, &text, &len);
    if (have < 0)
        return -1;
    if (have)
        text[strcspn(text, "\r\n")] = '\0';
    snprintf(out, ADDR_MAX, "%s", have && address_is_valid(text) ? text : DEFAULT_ADDR);
    free(text);
    return 0;
}

static int preflight(pairing *pr)
{
    char pin_path[PATH_BUF], what[64];
    if (read_peer_public(pr, pr->shell, "shell status host key", STATUS_HOST_KEY ".pub",
                         "run 'convocate-host init-shell' first", &pr->status_key,
                         &pr->status_text) < 0 ||
        read_peer_public(pr, pr->agent, "agent host key",
                         AGENT_CONF_DIR "/ssh_host_ed25519_key.pub",
                         "run 'convocate-agent install' on the agent", &pr->agent_host_key,
                         &pr->agent_host_text) < 0)
        return -1;
    snprintf(pin_path, sizeof pin_path, "%s/host_key.pub", pr->dir);
    snprintf(what, sizeof what, "agent %s", pr->id);
    if (keystep_check_pin(pr->p, pr->shell, "agent host key pin", pin_path, pr->agent_host_key,
                          pr->opt->repin, what) < 0 ||
        keystep_check_pin(pr->p, pr->agent, "shell host key pin",
                          AGENT_CONF_DIR "/shell_host_key.pub", pr->status_key, pr->opt->repin,
                          "the shell") < 0)
        return -1;
    char agent_host_path[PATH_BUF];
    snprintf(agent_host_path, sizeof agent_host_path, "%s/agent-host", pr->dir);
    if (shell_cert_name(pr, pr->server_name, sizeof pr->server_name) < 0 ||
        load_log_ca(pr, &pr->log_ca) < 0)
        return -1;
    return choose_address(pr, pr->shell, "agent-host", agent_host_path, pr->opt->agent_addr,
                          pr->agent_addr) < 0 ||
                   choose_address(pr, pr->agent, "shell-host", AGENT_CONF_DIR "/shell-host",
                                  pr->opt->shell_host, pr->shell_host) < 0
               ? -1
               : 0;
}

/* ---- the steps ---------------------------------------------------------- */

static int line_file(pairing *pr, runner *r, const char *step, const char *path, const char *value,
                     mode_t mode, gid_t gid)
{
    char line[ADDR_MAX + 2];
    int n = snprintf(line, sizeof line, "%s\n", value);
    return plan_file(pr->p, r, step, path, line, (size_t)n, mode, 0, gid);
}

static int shell_to_agent_steps(pairing *pr)
{
    char path[PATH_BUF], comment[64];
    ssh_key key = NULL;
    snprintf(path, sizeof path, "%s/shell_to_agent_ed25519_key", pr->dir);
    snprintf(comment, sizeof comment, "convocate-shell-to-%s", pr->id);
    /* 0640 root:claude: the TUI runs as claude and dials with this key. */
    if (keystep_pair(pr->p, pr->shell, "shell_to_agent_ed25519_key", path, comment, 0640, 0,
                     pr->claude, &key) < 0)
        return -1;
    int rc = keystep_authorize(pr->p, pr->agent, "agent authorized_keys",
                               AGENT_CONF_DIR "/authorized_keys", key, comment, 0600);
    ssh_key_free(key);
    return rc;
}

static int agent_to_shell_steps(pairing *pr)
{
    char path[PATH_BUF], comment[64];
    ssh_key key = NULL;
    snprintf(comment, sizeof comment, "convocate-agent-%s-to-shell", pr->id);
    if (keystep_pair(pr->p, pr->agent, "agent_to_shell_ed25519_key",
                     AGENT_CONF_DIR "/agent_to_shell_ed25519_key", comment, 0600, 0, 0, &key) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/agent_to_shell_ed25519_key.pub", pr->dir);
    int rc = keystep_public(pr->p, pr->shell, "agent-keys/<id>/agent_to_shell_ed25519_key.pub",
                            path, key, comment, 0644, 0, 0);
    if (rc == 0)
        rc = keystep_authorize(pr->p, pr->shell, "status_authorized_keys", STATUS_AUTH_KEYS, key,
                               comment, 0644);
    ssh_key_free(key);
    return rc;
}

static int pin_steps(pairing *pr)
{
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/host_key.pub", pr->dir);
    if (keystep_pin(pr->p, pr->shell, "agent host key pin", path, pr->agent_host_key,
                    pr->agent_host_text, 0644, 0, 0) < 0)
        return -1;
    return keystep_pin(pr->p, pr->agent, "shell host key pin", AGENT_CONF_DIR "/shell_host_key.pub",
                       pr->status_key, pr->status_text, 0644, 0, 0);
}

static int pairing_steps(pairing *pr)
{
    char path[PATH_BUF];
    if (plan_dir(pr->p, pr->shell, "agent-keys/", SHELL_AGENT_KEYS_DIR, 0750, 0, pr->claude) < 0 ||
        plan_dir(pr->p, pr->shell, "agent-keys/<id>/", pr->dir, 0750, 0, pr->claude) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/agent-host", pr->dir);
    if (line_file(pr, pr->shell, "agent-host", path, pr->agent_addr, 0644, 0) < 0)
        return -1;
    if (shell_to_agent_steps(pr) < 0 || agent_to_shell_steps(pr) < 0 || pin_steps(pr) < 0)
        return -1;
    return line_file(pr, pr->agent, "shell-host", AGENT_CONF_DIR "/shell-host", pr->shell_host,
                     0644, 0);
}

/* ---- the log channel steps ---------------------------------------------- */

static int spool_dir_step(pairing *pr)
{
    runner_stat st;
    char err[512];
    if (pr->agent->ops->stat_path(pr->agent, RSYSLOG_SPOOL_DIR, &st, err, sizeof err) < 0)
        return plan_fail(pr->p, "rsyslog spool", "%s", err);
    if (st.exists && st.is_dir) {
        plan_report(pr->p, "rsyslog spool", STEP_UNCHANGED);
        return 0;
    }
    return plan_dir(pr->p, pr->agent, "rsyslog spool", RSYSLOG_SPOOL_DIR, 0700, 0, 0);
}

static int client_dropin_step(pairing *pr, const char *server_name)
{
    const char *step = "rsyslog client drop-in";
    char host[256], ca[PATH_BUF], cert[PATH_BUF], key[PATH_BUF], spool[PATH_BUF], err[512];
    int port;
    if (parse_host_port(pr->shell_host, RSYSLOG_PORT_DEFAULT, host, sizeof host, &port) < 0)
        return plan_fail(pr->p, step, "\"%s\" is not HOST or HOST:PORT", pr->shell_host);
    if (runner_real_path(pr->agent, AGENT_RSYSLOG_TLS_DIR "/ca.crt", ca, sizeof ca) < 0 ||
        runner_real_path(pr->agent, AGENT_RSYSLOG_TLS_DIR "/client.crt", cert, sizeof cert) < 0 ||
        runner_real_path(pr->agent, AGENT_RSYSLOG_TLS_DIR "/client.key", key, sizeof key) < 0 ||
        runner_real_path(pr->agent, RSYSLOG_SPOOL_DIR, spool, sizeof spool) < 0)
        return plan_fail(pr->p, step, "the root path is too long");
    /* shell-host's port is the status listener's (223); logs go to 514. */
    rsyslog_client_params params = {.agent_id = pr->id,
                                    .target = host,
                                    .port = RSYSLOG_PORT_DEFAULT,
                                    .server_name = server_name,
                                    .ca_file = ca,
                                    .cert_file = cert,
                                    .key_file = key,
                                    .spool_dir = spool};
    char *text = rsyslog_client_conf(&params, err, sizeof err);
    if (text == NULL)
        return plan_fail(pr->p, step, "%s", err);
    int rc =
        plan_file(pr->p, pr->agent, step, RSYSLOG_CLIENT_DROPIN, text, strlen(text), 0644, 0, 0);
    free(text);
    return rc;
}

/* Where rsyslogd drops privileges to the syslog group (Ubuntu), rsyslog-tls/
 * and its three files are readable by that group, else by root alone, and
 * the directory above lets others search it. convocate-agent install makes
 * that directory by the same rule; it is checked here too because the
 * install runs only on a fresh agent, and an agent provisioned before must
 * be corrected by the next init-agent. */
static int log_channel_steps(pairing *pr)
{
    const ca_pair *ca = &pr->log_ca;
    ca_leaf_request req = {.kind = CA_LEAF_CLIENT, .cn = pr->id};
    tls_access access;
    tlsstep_access(pr->agent, &access);
    int rc = plan_dir(pr->p, pr->agent, AGENT_CONF_DIR "/", AGENT_CONF_DIR,
                      conf_dir_mode(pr->agent), 0, 0);
    if (rc == 0)
        rc = plan_dir(pr->p, pr->agent, "rsyslog-tls/", AGENT_RSYSLOG_TLS_DIR, access.dir_mode, 0,
                      access.gid);
    if (rc == 0)
        rc = plan_file(pr->p, pr->agent, "rsyslog-tls/ca.crt", AGENT_RSYSLOG_TLS_DIR "/ca.crt",
                       ca->cert, strlen(ca->cert), access.cert_mode, 0, access.gid);
    if (rc == 0)
        rc = tlsstep_leaf(pr->p, pr->agent, "rsyslog client", ca, &req,
                          AGENT_RSYSLOG_TLS_DIR "/client.crt", AGENT_RSYSLOG_TLS_DIR "/client.key",
                          &access);
    if (rc == 0)
        rc = spool_dir_step(pr);
    if (rc == 0)
        rc = client_dropin_step(pr, pr->server_name);
    if (rc == 0)
        rc = rsyslog_apparmor_step(pr->p, pr->agent);
    return rc;
}

int init_agent_steps(plan *p, runner *shell, runner *agent, const init_agent_options *opt)
{
    pairing pr = {.p = p, .shell = shell, .agent = agent, .opt = opt};
    pr.claude = shell_claude_gid(shell);
    int rc = ensure_agent_id(&pr);
    if (rc == 0 && p->dry_run)
        printf("  (the remaining steps need the agent id that the install will mint)\n");
    if (rc == 1)
        rc = preflight(&pr) < 0 || pairing_steps(&pr) < 0 || log_channel_steps(&pr) < 0 ? -1 : 0;
    /* The image last, as update does: current-image is stamped only once
     * the agent's engine holds it. */
    if (rc == 0 && opt->image != NULL)
        rc = update_image_steps(p, agent, opt->image);
    /* The agent reads its keys, pins and shell-host at start. */
    bool changed = p->changes > 0;
    if (rc == 0)
        rc = service_step(p, agent, "convocate-agent", changed, changed, "convocate-agent serve");
    if (rc == 0)
        rc = service_step(p, agent, "rsyslog", false, changed, "rsyslogd");
    pairing_clear(&pr);
    return rc;
}
