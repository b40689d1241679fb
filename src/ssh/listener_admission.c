/* Connection admission (SPEC 5): whether a new connection is taken at all,
 * and what a connection may spend before it has authenticated: time (the
 * key exchange, then LISTENER_AUTH_TIMEOUT_MS from accept) and refused
 * attempts (LISTENER_MAX_AUTH_TRIES). Every pre-auth limit is decided here,
 * so a change of that budget is a change of this file. */
#include <stdio.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ssh/listener_internal.h"

bool admission_accept(listener *l, const char *peer)
{
    pthread_mutex_lock(&l->mu);
    bool full = l->nconns >= LISTENER_MAX_CONNECTIONS;
    pthread_mutex_unlock(&l->mu);
    if (full)
        log_warn("connection from %s refused: %d connections already open", peer,
                 LISTENER_MAX_CONNECTIONS);
    return !full;
}

void admission_start(lconn *c)
{
    c->started_ms = monotonic_ms();
}

void admission_limit_key_exchange(lconn *c)
{
    /* libssh's key exchange blocks; its own timeout bounds it. */
    long timeout_s = LISTENER_AUTH_TIMEOUT_MS / 1000;
    ssh_options_set(c->session, SSH_OPTIONS_TIMEOUT, &timeout_s);
}

int admission_poll_timeout(lconn *c, int idle_ms)
{
    if (c->authenticated)
        return idle_ms;
    int64_t left = c->started_ms + LISTENER_AUTH_TIMEOUT_MS - monotonic_ms();
    if (left <= 0) {
        log_info("conn %u from %s: no authentication within %d s", c->id, c->peer,
                 LISTENER_AUTH_TIMEOUT_MS / 1000);
        ssh_session_set_disconnect_message(c->session, "Authentication timeout");
        return -1;
    }
    return left < idle_ms ? (int)left : idle_ms;
}

void admission_auth_failed(lconn *c, const char *method, const char *detail)
{
    c->auth_failures++;
    log_info("conn %u from %s: %s auth refused%s%s (%d of %d)", c->id, c->peer, method,
             detail ? ": " : "", detail ? detail : "", c->auth_failures, LISTENER_MAX_AUTH_TRIES);
}

bool admission_auth_spent(const lconn *c)
{
    return c->auth_failures >= LISTENER_MAX_AUTH_TRIES;
}

bool admission_may_continue(lconn *c)
{
    if (c->authenticated || !admission_auth_spent(c))
        return true;
    log_info("conn %u from %s: too many authentication failures", c->id, c->peer);
    ssh_session_set_disconnect_message(c->session, "Too many authentication failures");
    return false;
}
