#include "ssh/target.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ssh/registry.h"
#include "ssh/keys.h"

#define DEFAULT_SSH_PORT 22

/* Host names and addresses only: the name reaches libssh, known_hosts and
 * our messages, so nothing else is let through. */
static bool host_is_valid(const char *h)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-_%";
    return h[0] != '\0' && h[0] != '-' && strspn(h, ok) == strlen(h);
}

/* POSIX portable user names (what useradd accepts by default). */
static bool user_is_valid(const char *u)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    size_t n = strlen(u);
    return n > 0 && n < DIAL_TARGET_USER_MAX && u[0] != '-' && strspn(u, ok) == n;
}

static const char *home_dir(void)
{
    const char *home = getenv("HOME");
    if (home != NULL && home[0] == '/')
        return home;
    struct passwd *pw = getpwuid(getuid());
    return pw != NULL ? pw->pw_dir : "/";
}

int dial_target_init(dial_target *t, const char *host, int port, const char *user,
                     const char *known_hosts, const char *identity, bool accept_new,
                     long connect_timeout, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    int host_port = DEFAULT_SSH_PORT;
    if (host == NULL ||
        parse_host_port(host, DEFAULT_SSH_PORT, t->host, sizeof t->host, &host_port) < 0 ||
        !host_is_valid(t->host)) {
        snprintf(err, errlen, "--host \"%s\" is not HOST or HOST:PORT", host ? host : "");
        return -1;
    }
    if (port != 0 && (port < 1 || port > 65535)) {
        snprintf(err, errlen, "--port %d is not a port number", port);
        return -1;
    }
    t->port = port != 0 ? port : host_port;
    if (user == NULL || user[0] == '\0')
        user = getenv("USER");
    if (user == NULL || user[0] == '\0')
        user = "root";
    if (!user_is_valid(user)) {
        snprintf(err, errlen, "--user \"%s\" is not a user name", user);
        return -1;
    }
    snprintf(t->user, sizeof t->user, "%s", user);
    int n =
        known_hosts != NULL && known_hosts[0] != '\0'
            ? snprintf(t->known_hosts, sizeof t->known_hosts, "%s", known_hosts)
            : snprintf(t->known_hosts, sizeof t->known_hosts, "%s/.ssh/known_hosts", home_dir());
    if (n < 0 || (size_t)n >= sizeof t->known_hosts ||
        (identity != NULL &&
         snprintf(t->identity, sizeof t->identity, "%s", identity) >= (int)sizeof t->identity)) {
        snprintf(err, errlen, "a --known-hosts or --identity path is too long");
        return -1;
    }
    t->accept_new_host_key = accept_new;
    t->connect_timeout = connect_timeout > 0 ? connect_timeout : 15;
    return 0;
}

void dial_target_name(const dial_target *t, char *out, size_t size)
{
    if (t->port == DEFAULT_SSH_PORT)
        snprintf(out, size, "%s", t->host);
    else
        snprintf(out, size, "[%s]:%d", t->host, t->port);
}

static void server_fingerprint(ssh_session s, char out[FINGERPRINT_LEN])
{
    ssh_key key = NULL;
    snprintf(out, FINGERPRINT_LEN, "(unknown)");
    if (ssh_get_server_publickey(s, &key) == SSH_OK && key_fingerprint_sha256(key, out) < 0)
        snprintf(out, FINGERPRINT_LEN, "(unknown)");
    ssh_key_free(key);
}

/* Strict checking, as OpenSSH's StrictHostKeyChecking=accept-new at most:
 * a changed key is never accepted, whatever the flags say. */
static int verify_host_key(const dial_target *t, ssh_session s, char *err, size_t errlen)
{
    char fp[FINGERPRINT_LEN], name[DIAL_TARGET_HOST_MAX + 16];
    server_fingerprint(s, fp);
    dial_target_name(t, name, sizeof name);
    switch (ssh_session_is_known_server(s)) {
    case SSH_KNOWN_HOSTS_OK:
        return 0;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
        snprintf(err, errlen,
                 "the host key of %s has CHANGED: it offers %s, which %s does not hold for it; "
                 "refused (the host may have been reinstalled, or someone is in the middle). "
                 "Check the key with the host's owner; if it is right, remove the old entry "
                 "with 'ssh-keygen -R \"%s\" -f %s' and run again with --accept-new-host-key",
                 name, fp, t->known_hosts, name, t->known_hosts);
        return -1;
    case SSH_KNOWN_HOSTS_NOT_FOUND:
    case SSH_KNOWN_HOSTS_UNKNOWN:
        if (!t->accept_new_host_key) {
            snprintf(err, errlen,
                     "the host key of %s is unknown (%s, not in %s); refused. Compare it with "
                     "'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' on the host and run "
                     "again with --accept-new-host-key to trust it",
                     name, fp, t->known_hosts);
            return -1;
        }
        if (ssh_session_update_known_hosts(s) != SSH_OK) {
            snprintf(err, errlen, "cannot add the host key of %s to %s: %s", name, t->known_hosts,
                     ssh_get_error(s));
            return -1;
        }
        fprintf(stderr, "convocate-host: added the host key of %s (%s) to %s\n", name, fp,
                t->known_hosts);
        return 0;
    case SSH_KNOWN_HOSTS_ERROR:
    default:
        snprintf(err, errlen, "cannot check the host key of %s against %s: %s", name,
                 t->known_hosts, ssh_get_error(s));
        return -1;
    }
}

static int authenticate(const dial_target *t, ssh_session s, char *err, size_t errlen)
{
    int rc;
    if (t->identity[0] != '\0') {
        ssh_key key = NULL;
        if (ssh_pki_import_privkey_file(t->identity, NULL, NULL, NULL, &key) != SSH_OK) {
            snprintf(err, errlen,
                     "cannot load the key %s (missing, unreadable or passphrase-protected; "
                     "load it into ssh-agent and leave out --identity)",
                     t->identity);
            return -1;
        }
        rc = ssh_userauth_publickey(s, NULL, key);
        ssh_key_free(key);
    } else {
        rc = ssh_userauth_publickey_auto(s, NULL, NULL);
    }
    if (rc == SSH_AUTH_SUCCESS)
        return 0;
    snprintf(err, errlen,
             "%s@%s did not accept your SSH key (tried %s); add your public key to "
             "~%s/.ssh/authorized_keys there, or pass --user/--identity",
             t->user, t->host,
             t->identity[0] ? t->identity : "ssh-agent, ~/.ssh/id_ed25519, id_ecdsa, id_rsa",
             t->user);
    return -1;
}

ssh_session dial_target_connect(const dial_target *t, char *err, size_t errlen)
{
    ssh_session s = ssh_new();
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    unsigned int port = (unsigned int)t->port;
    long timeout = t->connect_timeout;
    /* The flags say everything: a stray ~/.ssh/config must not change
     * which host, key or known_hosts file is used. */
    bool no = false;
    if (ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_HOST, t->host) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_PORT, &port) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_USER, t->user) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, t->known_hosts) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout) < 0) {
        snprintf(err, errlen, "ssh options: %s", ssh_get_error(s));
        ssh_free(s);
        return NULL;
    }
    if (ssh_connect(s) != SSH_OK) {
        snprintf(err, errlen, "cannot connect to %s port %d: %s", t->host, t->port,
                 ssh_get_error(s));
        ssh_free(s);
        return NULL;
    }
    if (verify_host_key(t, s, err, errlen) < 0 || authenticate(t, s, err, errlen) < 0) {
        ssh_disconnect(s);
        ssh_free(s);
        return NULL;
    }
    return s;
}
