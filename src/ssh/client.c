#include "ssh/client.h"

#include <errno.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ssh/keys.h"
#include "ssh/pubkey.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 30000
#define DEAD_PEER_MS 30000

struct pinned_peer {
    pinned_peer_config cfg;
    pthread_mutex_t lock; /* one libssh session is never used by two threads */
    ssh_session session;  /* NULL while disconnected */
    long backoff_ms;      /* delay applied after the next failure */
    int64_t next_dial_ms; /* monotonic time before which we do not redial */
    char last_error[256];
};

pinned_peer *pinned_peer_new(const pinned_peer_config *cfg)
{
    pinned_peer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->cfg = *cfg;
    if (p->cfg.call_timeout_s <= 0)
        p->cfg.call_timeout_s = 60;
    p->backoff_ms = BACKOFF_FIRST_MS;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void disconnect(pinned_peer *p)
{
    if (p->session) {
        ssh_disconnect(p->session);
        ssh_free(p->session);
        p->session = NULL;
    }
}

void pinned_peer_free(pinned_peer *p)
{
    if (p == NULL)
        return;
    disconnect(p);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Compares the key the server offered with the pinned one; on mismatch the
 * error names both fingerprints so the operator can tell which is right. */
static int verify_pinned_host_key(pinned_peer *p, char *err, size_t errlen)
{
    ssh_key offered = NULL, pinned = NULL;
    int rc = -1;
    if (ssh_get_server_publickey(p->session, &offered) < 0) {
        snprintf(err, errlen, "%s:%d sent no host key", p->cfg.host, p->cfg.port);
        goto out;
    }
    char why[PATH_BUF + 128];
    if (pubkey_file_load(p->cfg.pinned_key_path, &pinned, why, sizeof why) < 0) {
        snprintf(err, errlen, "cannot read pinned host key %s", why);
        goto out;
    }
    if (ssh_key_cmp(offered, pinned, SSH_KEY_CMP_PUBLIC) != 0) {
        char want[FINGERPRINT_LEN], got[FINGERPRINT_LEN];
        key_fingerprint_sha256(pinned, want);
        key_fingerprint_sha256(offered, got);
        snprintf(err, errlen,
                 "host key mismatch for %s:%d: expected %s (pinned in %s), offered %s; "
                 "refusing to talk to it",
                 p->cfg.host, p->cfg.port, want, p->cfg.pinned_key_path, got);
        goto out;
    }
    rc = 0;
out:
    ssh_key_free(offered);
    ssh_key_free(pinned);
    return rc;
}

static int authenticate(pinned_peer *p, char *err, size_t errlen)
{
    ssh_key key = NULL;
    if (ssh_pki_import_privkey_file(p->cfg.key_path, NULL, NULL, NULL, &key) != SSH_OK) {
        snprintf(err, errlen, "cannot read client key %s", p->cfg.key_path);
        return -1;
    }
    int rc = ssh_userauth_publickey(p->session, NULL, key);
    ssh_key_free(key);
    if (rc != SSH_AUTH_SUCCESS) {
        snprintf(err, errlen, "%s:%d refused our key %s (is it in the peer's authorized keys?)",
                 p->cfg.host, p->cfg.port, p->cfg.key_path);
        return -1;
    }
    return 0;
}

/* A peer that vanishes (power loss, a cut link) sends no FIN: without these
 * a persistent connection would look healthy for the kernel's ~15 minutes of
 * retransmissions. Idle connections probe after 15 s; unacknowledged data
 * fails the connection after DEAD_PEER_MS. Best effort: failures are logged. */
static void notice_dead_peers(int fd)
{
    int on = 1, idle = 15, interval = 5, count = 3;
    unsigned int user_timeout = DEAD_PEER_MS;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout) < 0)
        log_debug("keepalive options not set: %s", strerror(errno));
}

/* The pin is our only trust: no known_hosts file may reorder or widen the
 * host key algorithms libssh offers (it reads both files to order them),
 * and naming the SSH directory (our key's) spares libssh a passwd lookup
 * for ~ on every connection. */
static int keep_out_openssh_files(pinned_peer *p, char *err, size_t errlen)
{
    char dir[PATH_BUF];
    snprintf(dir, sizeof dir, "%s", p->cfg.key_path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, "%s", slash == dir ? "/" : ".");
    if (ssh_options_set(p->session, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") < 0 ||
        ssh_options_set(p->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0 ||
        ssh_options_set(p->session, SSH_OPTIONS_SSH_DIR, dir) < 0) {
        snprintf(err, errlen, "cannot configure the SSH session: %s", ssh_get_error(p->session));
        return -1;
    }
    return 0;
}

static int dial(pinned_peer *p, char *err, size_t errlen)
{
    long timeout = 10;
    p->session = ssh_new();
    if (p->session == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    unsigned port = (unsigned)p->cfg.port;
    if (ssh_options_set(p->session, SSH_OPTIONS_HOST, p->cfg.host) < 0 ||
        ssh_options_set(p->session, SSH_OPTIONS_PORT, &port) < 0 ||
        ssh_options_set(p->session, SSH_OPTIONS_USER, p->cfg.user) < 0 ||
        ssh_options_set(p->session, SSH_OPTIONS_TIMEOUT, &timeout) < 0 ||
        ssh_options_set(p->session, SSH_OPTIONS_HOSTKEYS, "ssh-ed25519") < 0 ||
        ssh_options_set(p->session, SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES, "ssh-ed25519") < 0) {
        snprintf(err, errlen, "cannot configure the SSH session: %s", ssh_get_error(p->session));
        goto fail;
    }
    /* Never read ~/.ssh/config: the peer and the keys are exactly ours. */
    int no = 0;
    ssh_options_set(p->session, SSH_OPTIONS_PROCESS_CONFIG, &no);
    if (keep_out_openssh_files(p, err, errlen) < 0)
        goto fail;
    /* Requests are small and each waits for its answer: Nagle would hold
     * one behind the peer's delayed ACK of the one before. */
    int yes = 1;
    ssh_options_set(p->session, SSH_OPTIONS_NODELAY, &yes);
    if (ssh_connect(p->session) != SSH_OK) {
        snprintf(err, errlen, "cannot reach %s:%d: %s", p->cfg.host, p->cfg.port,
                 ssh_get_error(p->session));
        goto fail;
    }
    if (verify_pinned_host_key(p, err, errlen) < 0 || authenticate(p, err, errlen) < 0)
        goto fail;
    notice_dead_peers(ssh_get_fd(p->session));
    return 0;
fail:
    disconnect(p);
    return -1;
}

static int ensure_connected(pinned_peer *p, char *err, size_t errlen)
{
    if (p->session && ssh_is_connected(p->session))
        return 0;
    disconnect(p);
    int64_t now = monotonic_ms();
    if (now < p->next_dial_ms) {
        snprintf(err, errlen, "%s (next retry in %llds)", p->last_error,
                 (long long)((p->next_dial_ms - now + 999) / 1000));
        return -1;
    }
    if (dial(p, err, errlen) < 0) {
        snprintf(p->last_error, sizeof p->last_error, "%s", err);
        p->next_dial_ms = now + p->backoff_ms;
        p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
        log_debug("dial %s:%d failed: %s", p->cfg.host, p->cfg.port, err);
        return -1;
    }
    p->backoff_ms = BACKOFF_FIRST_MS;
    p->next_dial_ms = 0;
    return 0;
}

/* Room for the next read: the buffer doubles from ANSWER_FIRST_CAP up to
 * resp_max + 1 (a NUL), so a small answer costs a small buffer and a
 * hundred agents' answers no 16 MiB mapping each. */
#define ANSWER_FIRST_CAP (64 * 1024)
static int make_room(char **buf, size_t *cap, size_t got, size_t resp_max)
{
    if (*cap - got > 1)
        return 0;
    size_t grown = *cap ? *cap * 2 : ANSWER_FIRST_CAP;
    if (grown > resp_max + 1)
        grown = resp_max + 1;
    if (grown <= *cap)
        return 0; /* at resp_max already: the next read tells if there is more */
    char *bigger = realloc(*buf, grown);
    if (bigger == NULL)
        return -1;
    *buf = bigger;
    *cap = grown;
    return 0;
}

/* Reads the answer until EOF: at most resp_max bytes, within the call's
 * budget. -2 for a broken connection, -1 for a limit or no memory. */
static int read_answer(pinned_peer *p, ssh_channel ch, char **out, size_t resp_max, char *err,
                       size_t errlen)
{
    char *buf = NULL;
    size_t cap = 0, got = 0;
    int64_t deadline = monotonic_ms() + (int64_t)p->cfg.call_timeout_s * 1000;
    for (;;) {
        int64_t left = deadline - monotonic_ms();
        if (left <= 0) {
            snprintf(err, errlen, "%s:%d did not answer within %ds", p->cfg.host, p->cfg.port,
                     p->cfg.call_timeout_s);
            free(buf);
            return -2;
        }
        if (make_room(&buf, &cap, got, resp_max) < 0) {
            snprintf(err, errlen, "out of memory");
            free(buf);
            return -1;
        }
        /* Room before the NUL's place; none only once resp_max bytes are
         * in, and then one byte read into that place tells an answer over
         * the limit (the NUL is not needed for an error). */
        size_t room = cap - 1 - got;
        int n = ssh_channel_read_timeout(ch, buf + got, (uint32_t)(room ? room : 1), 0,
                                         (int)(left > 1000 ? 1000 : left));
        if (n == SSH_ERROR) {
            snprintf(err, errlen, "read from %s:%d failed: %s", p->cfg.host, p->cfg.port,
                     ssh_get_error(p->session));
            free(buf);
            return -2;
        }
        if (n == 0 && ssh_channel_is_eof(ch))
            break;
        got += (size_t)n;
        if (got > resp_max) {
            snprintf(err, errlen, "answer from %s:%d exceeds %zu bytes", p->cfg.host, p->cfg.port,
                     resp_max);
            free(buf);
            return -1;
        }
    }
    if (buf == NULL && (buf = malloc(1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    buf[got] = '\0';
    *out = buf;
    return 0;
}

/* One request/response exchange on a new channel; -2 means the connection
 * itself failed (worth one redial), -1 an error from the peer or a limit. */
static int exchange(pinned_peer *p, const char *subsystem, const void *req, size_t req_len,
                    char **resp, size_t resp_max, char *err, size_t errlen)
{
    int rc = -2;
    ssh_channel ch = ssh_channel_new(p->session);
    if (ch == NULL || ssh_channel_open_session(ch) != SSH_OK) {
        snprintf(err, errlen, "cannot open a channel to %s:%d: %s", p->cfg.host, p->cfg.port,
                 ssh_get_error(p->session));
        goto out;
    }
    if (ssh_channel_request_subsystem(ch, subsystem) != SSH_OK) {
        snprintf(err, errlen, "%s:%d refused subsystem %s", p->cfg.host, p->cfg.port, subsystem);
        rc = -1;
        goto out;
    }
    if (req_len && ssh_channel_write(ch, req, (uint32_t)req_len) != (int)req_len) {
        snprintf(err, errlen, "write to %s:%d failed: %s", p->cfg.host, p->cfg.port,
                 ssh_get_error(p->session));
        goto out;
    }
    ssh_channel_send_eof(ch);
    rc = read_answer(p, ch, resp, resp_max, err, errlen);
out:
    if (ch) {
        ssh_channel_close(ch);
        ssh_channel_free(ch);
    }
    return rc;
}

int pinned_peer_request(pinned_peer *p, const char *subsystem, const void *req, size_t req_len,
                        char **resp, size_t resp_max, char *err, size_t errlen)
{
    pthread_mutex_lock(&p->lock);
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_connected = p->session != NULL;
        if (ensure_connected(p, err, errlen) < 0)
            break;
        rc = exchange(p, subsystem, req, req_len, resp, resp_max, err, errlen);
        if (rc != -2)
            break;
        /* The connection broke under us: drop it and, if it was an old one,
         * dial once more now (the peer may simply have restarted). */
        disconnect(p);
        rc = -1;
        if (!was_connected)
            break;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void pinned_peer_hang_up(pinned_peer *p)
{
    pthread_mutex_lock(&p->lock);
    disconnect(p);
    pthread_mutex_unlock(&p->lock);
}

void pinned_peer_allow_dial(pinned_peer *p)
{
    pthread_mutex_lock(&p->lock);
    p->next_dial_ms = 0;
    pthread_mutex_unlock(&p->lock);
}

long pinned_peer_backoff_ms(pinned_peer *p)
{
    pthread_mutex_lock(&p->lock);
    int64_t left = p->session ? 0 : p->next_dial_ms - monotonic_ms();
    pthread_mutex_unlock(&p->lock);
    return left > 0 ? (long)left : 0;
}

int pinned_peer_with_channel(pinned_peer *p, const char *subsystem, peer_channel_fn fn, void *ctx,
                             char *err, size_t errlen)
{
    pthread_mutex_lock(&p->lock);
    int rc = -1;
    ssh_channel ch = NULL;
    for (int attempt = 0; attempt < 2 && ch == NULL; attempt++) {
        bool was_connected = p->session != NULL;
        if (ensure_connected(p, err, errlen) < 0)
            break;
        ch = ssh_channel_new(p->session);
        if (ch && ssh_channel_open_session(ch) == SSH_OK)
            break;
        snprintf(err, errlen, "cannot open a channel to %s:%d: %s", p->cfg.host, p->cfg.port,
                 ssh_get_error(p->session));
        if (ch)
            ssh_channel_free(ch);
        ch = NULL;
        disconnect(p);
        if (!was_connected)
            break;
    }
    if (ch == NULL)
        goto out;
    if (ssh_channel_request_subsystem(ch, subsystem) != SSH_OK) {
        snprintf(err, errlen, "%s:%d refused subsystem %s", p->cfg.host, p->cfg.port, subsystem);
    } else {
        rc = fn(p->session, ch, ctx);
    }
    ssh_channel_close(ch);
    ssh_channel_free(ch);
    if (rc == PINNED_PEER_BROKEN)
        disconnect(p); /* the next call redials */
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}
