/* Connection admission (SPEC 5, 14): whether a new connection is taken at
 * all, and what a connection may spend before it has authenticated.
 *
 * Unauthenticated connections live in their own small pool
 * (LISTENER_MAX_PREAUTH, at most LISTENER_MAX_PREAUTH_PER_SOURCE per source
 * address); authenticated ones are counted apart against
 * LISTENER_MAX_CONNECTIONS. When the pool is full a newcomer is still let
 * in: the oldest connection of the source holding the most slots is
 * dropped. Every client that speaks SSH authenticates within a handshake,
 * so an operator's connection stays the newest of the pool for as long as
 * it needs, and a flooding source always has more (and older) slots to lose
 * than the operator's own.
 *
 * A connection may spend time (the key exchange, then LISTENER_AUTH_TIMEOUT_MS
 * from accept) and refused attempts (LISTENER_MAX_AUTH_TRIES). What the
 * budget refuses, drops or times out is logged as one summary line per
 * interval with its counts. Every pre-auth limit is decided here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ssh/listener_internal.h"

/* ---------- the summary line ---------- */

/* Each with the one limit it names. */
static const struct {
    const char *format;
    int limit;
} budget_words[BUDGET_EVENTS] = {
    [BUDGET_SOURCE_FULL] = {"refused (source holds %d unauthenticated connections)",
                            LISTENER_MAX_PREAUTH_PER_SOURCE},
    [BUDGET_DROPPED] = {"dropped, oldest first (pre-auth pool of %d full)", LISTENER_MAX_PREAUTH},
    [BUDGET_THREADS_FULL] = {"refused (%d connections in all)", LISTENER_MAX_THREADS},
    [BUDGET_AUTHED_FULL] = {"refused after authentication (%d authenticated connections "
                            "already open)",
                            LISTENER_MAX_CONNECTIONS},
    [BUDGET_KEX_FAILED] = {"failed or abandoned the key exchange (limit %d s)",
                           LISTENER_AUTH_TIMEOUT_MS / 1000},
    [BUDGET_TIMED_OUT] = {"timed out (no authentication within %d s)",
                          LISTENER_AUTH_TIMEOUT_MS / 1000},
};

static int append_count(char *out, size_t size, unsigned long count, int i)
{
    char what[160];
    snprintf(what, sizeof what, budget_words[i].format, budget_words[i].limit);
    return snprintf(out, size, " %lu %s;", count, what);
}

static bool budget_pending(const listener *l)
{
    for (int i = 0; i < BUDGET_EVENTS; i++)
        if (l->budget_counts[i] != 0)
            return true;
    return false;
}

/* Writes the summary of the counts held (mu held) and restarts them. */
static void budget_summary(listener *l, char *line, size_t size)
{
    int n = snprintf(line, size, "pre-auth budget (latest from %s):", l->budget_latest);
    for (int i = 0; i < BUDGET_EVENTS && n > 0 && (size_t)n < size; i++) {
        if (l->budget_counts[i] == 0)
            continue;
        n += append_count(line + n, size - (size_t)n, l->budget_counts[i], i);
        l->budget_counts[i] = 0;
    }
}

/* Counts one event. The first of an interval is logged at once; the rest
 * wait for admission_flush_summary() at the interval's end. The accept loop
 * may be asleep without a deadline when the first of them comes (nothing
 * was held), so it is woken to take one. */
static void budget_note(listener *l, enum budget_event ev, const char *ip)
{
    char line[768];
    unsigned long held;
    pthread_mutex_lock(&l->mu);
    bool was_idle = !budget_pending(l);
    l->budget_counts[ev]++;
    snprintf(l->budget_latest, sizeof l->budget_latest, "%s", ip);
    bool due = ratelimit_pass(&l->budget_log, monotonic_ms(), RATELIMIT_DEFAULT_MS, &held);
    if (due)
        budget_summary(l, line, sizeof line);
    pthread_mutex_unlock(&l->mu);
    if (due)
        log_warn("%s", line);
    else if (was_idle && write(l->summary_pipe[1], "", 1) < 0)
        log_debug("pre-auth summary: wake: %s", strerror(errno)); /* full: already woken */
}

int admission_flush_summary(listener *l)
{
    char line[768];
    unsigned long held;
    int wait_ms = -1;
    bool due = false;
    pthread_mutex_lock(&l->mu);
    if (budget_pending(l)) {
        int64_t left = l->budget_log.next_ms - monotonic_ms();
        if (left <= 0) {
            due = ratelimit_pass(&l->budget_log, monotonic_ms(), RATELIMIT_DEFAULT_MS, &held);
            budget_summary(l, line, sizeof line);
        } else {
            wait_ms = (int)left;
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (due)
        log_warn("%s", line);
    return wait_ms;
}

/* ---------- the pre-auth pool ---------- */

static size_t preauth_from(const listener *l, const char *ip)
{
    size_t n = 0;
    for (const lconn *c = l->conns; c != NULL; c = c->next)
        if (c->holds_preauth && strcmp(c->ip, ip) == 0)
            n++;
    return n;
}

/* The oldest connection of the source holding the most pre-auth slots
 * (ties: the oldest of them all). */
static lconn *drop_candidate(listener *l)
{
    lconn *best = NULL;
    size_t best_n = 0;
    for (lconn *c = l->conns; c != NULL; c = c->next) {
        if (!c->holds_preauth)
            continue;
        size_t n = preauth_from(l, c->ip);
        if (best == NULL || n > best_n || (n == best_n && c->id < best->id)) {
            best = c;
            best_n = n;
        }
    }
    return best;
}

/* Ends a pre-auth connection from outside its thread (mu held): the
 * socket is shut down, which ends a key exchange in progress, and the
 * loop is woken. The thread then exits without logging. */
static void drop_connection(listener *l, lconn *c)
{
    job *stop = NULL;
    c->holds_preauth = false;
    l->npreauth--;
    atomic_store(&c->dropped, true);
    atomic_store(&c->stop, true);
    shutdown(c->fd, SHUT_RDWR);
    if (write(c->wake[1], &stop, sizeof stop) < 0)
        log_debug("conn %u: wake: %s", c->id, strerror(errno));
}

bool admission_accept(listener *l, const char *ip)
{
    enum budget_event refused = BUDGET_EVENTS;
    pthread_mutex_lock(&l->mu);
    if (l->nconns >= LISTENER_MAX_THREADS)
        refused = BUDGET_THREADS_FULL;
    else if (preauth_from(l, ip) >= LISTENER_MAX_PREAUTH_PER_SOURCE)
        refused = BUDGET_SOURCE_FULL;
    lconn *victim = NULL;
    if (refused == BUDGET_EVENTS && l->npreauth >= LISTENER_MAX_PREAUTH) {
        victim = drop_candidate(l);
        if (victim != NULL)
            drop_connection(l, victim);
    }
    char victim_ip[INET6_ADDRSTRLEN] = "";
    if (victim != NULL)
        snprintf(victim_ip, sizeof victim_ip, "%s", victim->ip);
    pthread_mutex_unlock(&l->mu);
    if (victim_ip[0] != '\0')
        budget_note(l, BUDGET_DROPPED, victim_ip);
    if (refused != BUDGET_EVENTS)
        budget_note(l, refused, ip);
    return refused == BUDGET_EVENTS;
}

void admission_enter(listener *l, lconn *c)
{
    c->holds_preauth = true;
    l->npreauth++;
}

void admission_leave(listener *l, lconn *c)
{
    if (c->holds_preauth)
        l->npreauth--;
    if (c->holds_authed)
        l->nauthed--;
    c->holds_preauth = c->holds_authed = false;
}

bool admission_authenticated(lconn *c)
{
    listener *l = c->l;
    bool ok = false;
    pthread_mutex_lock(&l->mu);
    if (c->holds_preauth && l->nauthed < LISTENER_MAX_CONNECTIONS) {
        c->holds_preauth = false;
        l->npreauth--;
        c->holds_authed = true;
        l->nauthed++;
        ok = true;
    }
    bool dropped = atomic_load(&c->dropped);
    pthread_mutex_unlock(&l->mu);
    if (!ok && !dropped)
        budget_note(l, BUDGET_AUTHED_FULL, c->ip);
    return ok;
}

void admission_key_exchange_failed(lconn *c)
{
    if (!atomic_load(&c->dropped))
        budget_note(c->l, BUDGET_KEX_FAILED, c->ip);
}

/* ---------- what one connection may spend ---------- */

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
        budget_note(c->l, BUDGET_TIMED_OUT, c->ip);
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
