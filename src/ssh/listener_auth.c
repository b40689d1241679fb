/* The authentication policy of SPEC 5: public-key auth only, against the
 * authorized_keys loaded for this connection; every other method is refused
 * and counted against the pre-auth budget (listener_admission.c). */
#include <stdio.h>

#include "common/log.h"
#include "ssh/listener_internal.h"

static const char *method_name(int method)
{
    switch (method) {
    case SSH_AUTH_METHOD_NONE:
        return "none";
    case SSH_AUTH_METHOD_PASSWORD:
        return "password";
    case SSH_AUTH_METHOD_PUBLICKEY:
        return "publickey";
    case SSH_AUTH_METHOD_HOSTBASED:
        return "hostbased";
    case SSH_AUTH_METHOD_INTERACTIVE:
        return "keyboard-interactive";
    case SSH_AUTH_METHOD_GSSAPI_MIC:
        return "gssapi-with-mic";
    default:
        return "unknown";
    }
}

int on_auth_none(ssh_session s, const char *user, void *userdata)
{
    lconn *c = userdata;
    (void)s;
    (void)user;
    /* Clients open with "none" to learn the methods; like sshd, that first
     * probe is not held against them. */
    if (++c->auth_requests > 1)
        admission_auth_failed(c, "none", NULL);
    return SSH_AUTH_DENIED;
}

int on_auth_password(ssh_session s, const char *user, const char *password, void *userdata)
{
    lconn *c = userdata;
    (void)s;
    (void)user;
    (void)password;
    c->auth_requests++;
    admission_auth_failed(c, "password", NULL);
    return SSH_AUTH_DENIED;
}

int on_auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *key,
                   char signature_state, void *userdata)
{
    lconn *c = userdata;
    char fp[FINGERPRINT_LEN];
    (void)s;
    (void)user;

    c->auth_requests++;
    if (admission_auth_spent(c))
        return SSH_AUTH_DENIED;
    key_fingerprint_sha256(key, fp);
    switch (authorized_keys_check(&c->keys, key, c->ip)) {
    case AUTH_KEYS_ALLOWED:
        break;
    case AUTH_KEYS_WRONG_SOURCE: {
        char detail[FINGERPRINT_LEN + INET6_ADDRSTRLEN + 64];
        snprintf(detail, sizeof detail, "%s is not allowed from %s (its from= option)", fp, c->ip);
        admission_auth_failed(c, "publickey", detail);
        return SSH_AUTH_DENIED;
    }
    default:
        admission_auth_failed(c, "publickey", fp);
        return SSH_AUTH_DENIED;
    }
    if (signature_state == SSH_PUBLICKEY_STATE_NONE)
        return SSH_AUTH_SUCCESS; /* a probe: tell the client this key would do */
    if (signature_state != SSH_PUBLICKEY_STATE_VALID) {
        admission_auth_failed(c, "publickey", "bad signature");
        return SSH_AUTH_DENIED;
    }
    if (!admission_authenticated(c))
        return SSH_AUTH_DENIED;
    c->authenticated = true;
    snprintf(c->key_fp, sizeof c->key_fp, "%s", fp);
    log_info("conn %u from %s: authenticated with %s", c->id, c->peer, fp);
    return SSH_AUTH_SUCCESS;
}

/* Everything the server callbacks do not take lands here and is refused
 * with libssh's default reply (auth failure listing only publickey, channel
 * open failure, request failure). Failed auth methods count as attempts. */
int on_other_message(ssh_session s, ssh_message msg, void *userdata)
{
    lconn *c = userdata;
    (void)s;
    switch (ssh_message_type(msg)) {
    case SSH_REQUEST_AUTH:
        c->auth_requests++;
        admission_auth_failed(c, method_name(ssh_message_subtype(msg)), NULL);
        break;
    case SSH_REQUEST_CHANNEL_OPEN:
        log_info("conn %u: channel open of type %d refused", c->id, ssh_message_subtype(msg));
        break;
    case SSH_REQUEST_CHANNEL:
        log_info("conn %u: channel request of type %d refused", c->id, ssh_message_subtype(msg));
        break;
    case SSH_REQUEST_GLOBAL:
        log_info("conn %u: global request of type %d refused", c->id, ssh_message_subtype(msg));
        break;
    default:
        break;
    }
    return 1; /* 1: let libssh send its default (refusing) reply */
}
