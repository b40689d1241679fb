/* One connection: its thread, its libssh event loop (authentication
 * deadline, rounds over its channels), and its orderly end. */
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ssh/listener_internal.h"

/* Closing a TCP socket that still has unread input makes the kernel send a
 * reset, and the peer may then lose the last bytes we sent. So: half-close,
 * read and discard until the peer closes or a short deadline, then close. */
static void close_gracefully(int fd)
{
    if (fd < 0)
        return;
    shutdown(fd, SHUT_WR);
    int64_t deadline = monotonic_ms() + LINGER_MS;
    char sink[4096];
    for (;;) {
        int64_t left = deadline - monotonic_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
    }
    close(fd);
}

static void reap_channels(lconn *c)
{
    lchan **link = &c->chans;
    while (*link != NULL) {
        lchan *ch = *link;
        if (ch->closed_notified && ch->jobs == 0) {
            *link = ch->next;
            c->nchans--;
            channel_release(ch);
        } else {
            link = &ch->next;
        }
    }
}

static void connection_round(lconn *c)
{
    run_completed_jobs(c);
    for (lchan *ch = c->chans; ch != NULL; ch = ch->next)
        channel_round(c, ch);
    reap_channels(c);
}

static bool session_gone(const lconn *c)
{
    return (ssh_get_status(c->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
           !ssh_is_connected(c->session);
}

/* A client that leaves Nagle on (OpenSSH's `ssh -s`, paramiko) holds its
 * next request until our ACK of its last packet (say a channel close, to
 * which nothing is answered) arrives, and the kernel delays that ACK by up
 * to 40 ms on a connection it sees as interactive. Asking for a quick ACK
 * after each round sends any pending one at once; the kernel clears the
 * flag by itself, hence every round. */
static void ack_now(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

static void connection_loop(lconn *c)
{
    while (!atomic_load(&c->stop)) {
        int timeout = admission_poll_timeout(c, ROUND_IDLE_MS);
        if (timeout < 0)
            return;
        int rc = ssh_event_dopoll(c->event, timeout);
        ack_now(c->fd);
        if (session_gone(c) || (rc == SSH_ERROR && errno != EINTR))
            return;
        if (!admission_may_continue(c))
            return;
        connection_round(c);
    }
}

/* Closes every channel, then waits for their jobs (a kill in flight still
 * finishes) so nothing outlives the connection. */
static void connection_drain(lconn *c)
{
    c->dying = true;
    for (;;) {
        connection_round(c);
        if (c->chans == NULL && c->jobs == 0)
            return;
        if (c->jobs == 0) {
            log_error("conn %u: channels left without jobs; leaking them", c->id);
            return;
        }
        struct pollfd p = {.fd = c->wake[0], .events = POLLIN};
        if (poll(&p, 1, ROUND_IDLE_MS) > 0)
            on_wake(c->wake[0], p.revents, c);
    }
}

static int connection_setup(lconn *c)
{
    char err[256];

    if (authorized_keys_load(c->l->cfg.auth_keys_path, &c->keys, err, sizeof err) < 0) {
        log_error("conn %u: %s", c->id, err);
        return -1;
    }
    admission_limit_key_exchange(c);
    memset(&c->server_cb, 0, sizeof c->server_cb);
    c->server_cb.userdata = c;
    c->server_cb.auth_none_function = on_auth_none;
    c->server_cb.auth_password_function = on_auth_password;
    c->server_cb.auth_pubkey_function = on_auth_pubkey;
    c->server_cb.channel_open_request_session_function = on_channel_open;
    ssh_callbacks_init(&c->server_cb);
    if (ssh_set_server_callbacks(c->session, &c->server_cb) != SSH_OK)
        return -1;
    ssh_set_message_callback(c->session, on_other_message, c);
    ssh_set_auth_methods(c->session, SSH_AUTH_METHOD_PUBLICKEY);
    if (ssh_handle_key_exchange(c->session) != SSH_OK) {
        /* Counted, not logged one by one (not even verbosely): a flood
         * of silent connections ends here, and must not flood the log. */
        admission_key_exchange_failed(c);
        return -1;
    }
    /* From here on libssh must never block the loop: writes queue and go
     * out when the socket is writable. */
    ssh_set_blocking(c->session, 0);
    c->event = ssh_event_new();
    if (c->event == NULL || ssh_event_add_session(c->event, c->session) != SSH_OK ||
        ssh_event_add_fd(c->event, c->wake[0], POLLIN, on_wake, c) != SSH_OK) {
        log_error("conn %u: cannot set up its event loop", c->id);
        return -1;
    }
    return 0;
}

void connection_free(lconn *c)
{
    if (c->event != NULL) {
        ssh_event_remove_fd(c->event, c->wake[0]);
        ssh_event_remove_session(c->event, c->session);
        ssh_event_free(c->event);
    }
    if (c->session != NULL) {
        /* A copy of the socket outlives libssh's close so the goodbye is
         * not lost to a reset (see close_gracefully). */
        int keep = ssh_is_connected(c->session) ? dup(ssh_get_fd(c->session)) : -1;
        if (ssh_is_connected(c->session))
            ssh_disconnect(c->session);
        ssh_free(c->session); /* closes its socket; keep still holds it open */
        close_gracefully(keep);
    } else {
        close_fd(&c->fd);
    }
    authorized_keys_clear(&c->keys);
    close_fd(&c->wake[0]);
    close_fd(&c->wake[1]);
    free(c);
}

void *connection_thread(void *arg)
{
    lconn *c = arg;
    listener *l = c->l;

    if (connection_setup(c) == 0) {
        atomic_store(&c->in_loop, true);
        connection_loop(c);
        connection_drain(c);
        if (!atomic_load(&c->dropped))
            log_debug("conn %u from %s: closed", c->id, c->peer);
    }
    listener_forget(l, c);
    connection_free(c);
    return NULL;
}
