/* The narrow libssh server of SPEC 5: accept loop, per-connection threads,
 * the authentication and channel policy, and the channel plumbing
 * (input, output queue, watched fds, jobs) that subsystem handlers use. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ssh/keys.h"
#include "ssh/listener.h"

#define ED25519_ONLY "ssh-ed25519"
#define ROUND_IDLE_MS 1000
#define INPUT_CHUNK 16384
#define INPUT_CHUNKS_PER_ROUND 64 /* fairness between channels of one connection */
#define OUTPUT_CHUNK 32768
#define LINGER_MS 1000 /* how long a closing connection waits for the peer to go */

typedef struct lconn lconn;

/* A slow piece of work for a channel, run on its own thread. */
typedef struct job {
    lconn *conn;
    lchan *ch;
    void (*work)(void *arg);
    void (*done)(lchan *ch, void *arg, void *state);
    void *arg;
    struct job *next; /* in the connection's completed list */
} job;

struct lchan {
    lconn *conn;
    unsigned id;
    ssh_channel chan;
    struct ssh_channel_callbacks_struct cb;
    const listener_subsystem *sub; /* NULL until a subsystem is granted */
    void *state;
    char *out; /* queued output: out[out_off .. out_len) */
    size_t out_off, out_len, out_cap;
    bool peer_closed;     /* the client closed the channel (or it broke) */
    bool eof_delivered;   /* handler->eof has run */
    bool want_close;      /* the handler asked to close after the queue drains */
    bool sent_close;      /* we sent EOF and CLOSE */
    bool closed_notified; /* handler->closed has run */
    int jobs;             /* jobs started and not yet done */
    int watch_fd;
    short watch_events;
    char name[96];
    lchan *next;
};

struct lconn {
    listener *l;
    unsigned id;
    int fd;
    char peer[INET6_ADDRSTRLEN + 8];
    ssh_session session;
    ssh_event event;
    struct ssh_server_callbacks_struct server_cb;
    int wake[2]; /* workers and listener_stop() write job pointers (NULL = stop) */
    authorized_keys keys;
    char key_fp[FINGERPRINT_LEN];
    bool authenticated;
    int auth_requests;
    int auth_failures;
    int64_t started_ms;
    atomic_bool stop;
    atomic_bool in_loop;
    bool dying;
    lchan *chans;
    size_t nchans;
    unsigned next_chan_id;
    job *completed; /* jobs whose work has finished, newest first */
    int jobs;
    lconn *next; /* in the listener's list */
};

struct listener {
    listener_config cfg;
    ssh_bind bind;
    int listen_fd;
    int stop_pipe[2];
    pthread_mutex_t mu;
    pthread_cond_t idle;
    lconn *conns;
    size_t nconns;
    unsigned next_conn_id;
};

/* ---------- small helpers ---------- */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

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

/* ---------- authentication policy ---------- */

static void auth_failed(lconn *c, const char *method, const char *detail)
{
    c->auth_failures++;
    log_info("conn %u from %s: %s auth refused%s%s (%d of %d)", c->id, c->peer, method,
             detail ? ": " : "", detail ? detail : "", c->auth_failures, LISTENER_MAX_AUTH_TRIES);
}

static bool auth_exhausted(const lconn *c)
{
    return c->auth_failures >= LISTENER_MAX_AUTH_TRIES;
}

static int on_auth_none(ssh_session s, const char *user, void *userdata)
{
    lconn *c = userdata;
    (void)s;
    (void)user;
    /* Clients open with "none" to learn the methods; like sshd, that first
     * probe is not held against them. */
    if (++c->auth_requests > 1)
        auth_failed(c, "none", NULL);
    return SSH_AUTH_DENIED;
}

static int on_auth_password(ssh_session s, const char *user, const char *password, void *userdata)
{
    lconn *c = userdata;
    (void)s;
    (void)user;
    (void)password;
    c->auth_requests++;
    auth_failed(c, "password", NULL);
    return SSH_AUTH_DENIED;
}

static int on_auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *key,
                          char signature_state, void *userdata)
{
    lconn *c = userdata;
    char fp[FINGERPRINT_LEN];
    (void)s;
    (void)user;

    c->auth_requests++;
    if (auth_exhausted(c))
        return SSH_AUTH_DENIED;
    key_fingerprint(key, fp);
    if (!authorized_keys_match(&c->keys, key)) {
        auth_failed(c, "publickey", fp);
        return SSH_AUTH_DENIED;
    }
    if (signature_state == SSH_PUBLICKEY_STATE_NONE)
        return SSH_AUTH_SUCCESS; /* a probe: tell the client this key would do */
    if (signature_state != SSH_PUBLICKEY_STATE_VALID) {
        auth_failed(c, "publickey", "bad signature");
        return SSH_AUTH_DENIED;
    }
    c->authenticated = true;
    snprintf(c->key_fp, sizeof c->key_fp, "%s", fp);
    log_info("conn %u from %s: authenticated with %s", c->id, c->peer, fp);
    return SSH_AUTH_SUCCESS;
}

/* Everything the server callbacks do not take lands here and is refused
 * with libssh's default reply (auth failure listing only publickey, channel
 * open failure, request failure). Failed auth methods count as attempts. */
static int on_other_message(ssh_session s, ssh_message msg, void *userdata)
{
    lconn *c = userdata;
    (void)s;
    switch (ssh_message_type(msg)) {
    case SSH_REQUEST_AUTH:
        c->auth_requests++;
        auth_failed(c, method_name(ssh_message_subtype(msg)), NULL);
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

/* ---------- channel requests ---------- */

static const listener_subsystem *find_subsystem(const listener *l, const char *name)
{
    for (size_t i = 0; i < l->cfg.n_subsystems; i++)
        if (strcmp(l->cfg.subsystems[i].name, name) == 0)
            return &l->cfg.subsystems[i];
    return NULL;
}

static int on_subsystem(ssh_session s, ssh_channel chan, const char *name, void *userdata)
{
    lchan *ch = userdata;
    (void)s;
    (void)chan;
    const listener_subsystem *sub = find_subsystem(ch->conn->l, name);
    if (sub == NULL || ch->sub != NULL || ch->want_close || ch->conn->dying) {
        log_info("%s: subsystem \"%.64s\" refused", ch->name, name);
        return 1;
    }
    void *state = sub->handler.open(ch, ch->conn->l->cfg.app);
    if (state == NULL) {
        log_warn("%s: subsystem \"%s\" could not start", ch->name, name);
        return 1;
    }
    ch->sub = sub;
    ch->state = state;
    log_debug("%s: subsystem %s", ch->name, name);
    return 0;
}

static int refuse_pty(ssh_session s, ssh_channel chan, const char *term, int w, int h, int pw,
                      int ph, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan, (void)term, (void)w, (void)h, (void)pw, (void)ph;
    log_info("%s: pty-req refused", ch->name);
    return -1;
}

static int refuse_shell(ssh_session s, ssh_channel chan, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan;
    log_info("%s: shell refused", ch->name);
    return 1;
}

static int refuse_exec(ssh_session s, ssh_channel chan, const char *command, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan, (void)command;
    log_info("%s: exec refused", ch->name);
    return 1;
}

static int refuse_env(ssh_session s, ssh_channel chan, const char *name, const char *value,
                      void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan, (void)value;
    log_debug("%s: env %.64s refused", ch->name, name);
    return 1;
}

static int on_window_change(ssh_session s, ssh_channel chan, int cols, int rows, int pw, int ph,
                            void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan, (void)pw, (void)ph;
    if (ch->sub == NULL || ch->sub->handler.window_change == NULL || ch->closed_notified) {
        /* RFC 4254 window-change wants no reply, so refusing is ignoring it. */
        log_debug("%s: window-change ignored (not an attach channel)", ch->name);
        return -1;
    }
    return ch->sub->handler.window_change(ch, cols, rows, ch->state);
}

static void on_channel_close(ssh_session s, ssh_channel chan, void *userdata)
{
    lchan *ch = userdata;
    (void)s, (void)chan;
    ch->peer_closed = true;
}

/* x11-req and auth-agent-req get no callback on purpose: libssh answers
 * success when one is set, failure when none is. */
static void channel_callbacks_init(lchan *ch)
{
    memset(&ch->cb, 0, sizeof ch->cb);
    ch->cb.userdata = ch;
    ch->cb.channel_subsystem_request_function = on_subsystem;
    ch->cb.channel_pty_request_function = refuse_pty;
    ch->cb.channel_shell_request_function = refuse_shell;
    ch->cb.channel_exec_request_function = refuse_exec;
    ch->cb.channel_env_request_function = refuse_env;
    ch->cb.channel_pty_window_change_function = on_window_change;
    ch->cb.channel_close_function = on_channel_close;
    ssh_callbacks_init(&ch->cb);
}

static ssh_channel on_channel_open(ssh_session s, void *userdata)
{
    lconn *c = userdata;
    if (!c->authenticated || c->dying)
        return NULL;
    if (c->nchans >= LISTENER_MAX_CHANNELS) {
        log_warn("conn %u: channel refused: %d channels already open", c->id,
                 LISTENER_MAX_CHANNELS);
        return NULL;
    }
    lchan *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return NULL;
    ch->chan = ssh_channel_new(s);
    if (ch->chan == NULL) {
        free(ch);
        return NULL;
    }
    ch->conn = c;
    ch->id = c->next_chan_id++;
    ch->watch_fd = -1;
    snprintf(ch->name, sizeof ch->name, "conn %u chan %u", c->id, ch->id);
    channel_callbacks_init(ch);
    if (ssh_set_channel_callbacks(ch->chan, &ch->cb) != SSH_OK) {
        ssh_channel_free(ch->chan);
        free(ch);
        return NULL;
    }
    /* Newest first: a channel opened while the list is being walked is
     * simply seen on the next round. */
    ch->next = c->chans;
    c->chans = ch;
    c->nchans++;
    return ch->chan;
}

/* ---------- channel helpers for handlers ---------- */

int lchan_write(lchan *ch, const void *buf, size_t len)
{
    if (len == 0 || ch->peer_closed || ch->sent_close)
        return 0;
    if (ch->out_off > 0 && ch->out_off == ch->out_len)
        ch->out_off = ch->out_len = 0;
    if (ch->out_len + len > ch->out_cap) {
        size_t cap = ch->out_cap ? ch->out_cap : 4096;
        while (cap < ch->out_len + len)
            cap *= 2;
        char *grown = realloc(ch->out, cap);
        if (grown == NULL)
            return -1;
        ch->out = grown;
        ch->out_cap = cap;
    }
    memcpy(ch->out + ch->out_len, buf, len);
    ch->out_len += len;
    return 0;
}

size_t lchan_pending(const lchan *ch)
{
    return ch->out_len - ch->out_off;
}

size_t lchan_writable(const lchan *ch)
{
    if (ch->peer_closed || ch->sent_close)
        return 0;
    size_t window = ssh_channel_window_size(ch->chan);
    size_t pending = lchan_pending(ch);
    return window > pending ? window - pending : 0;
}

void lchan_close(lchan *ch)
{
    ch->want_close = true;
}

bool lchan_is_closing(const lchan *ch)
{
    return ch->want_close || ch->peer_closed || ch->closed_notified;
}

const char *lchan_name(const lchan *ch)
{
    return ch->name;
}

/* Set once by the pubkey callback before any channel can open, never
 * changed afterwards: safe to read from the connection thread. */
const char *lchan_key_fingerprint(const lchan *ch)
{
    return ch->conn->key_fp;
}

static int on_watched_fd(socket_t fd, int revents, void *userdata)
{
    (void)fd, (void)revents, (void)userdata;
    return 0; /* readiness only ends the poll; the handler's pump does the I/O */
}

int lchan_watch_fd(lchan *ch, int fd, short events)
{
    lconn *c = ch->conn;
    if (ch->watch_fd == fd && ch->watch_events == events)
        return 0;
    if (ch->watch_fd >= 0 && ch->watch_events != 0)
        ssh_event_remove_fd(c->event, ch->watch_fd);
    ch->watch_fd = fd;
    ch->watch_events = 0;
    if (events == 0 || fd < 0)
        return 0;
    if (ssh_event_add_fd(c->event, fd, events, on_watched_fd, ch) != SSH_OK)
        return -1;
    ch->watch_events = events;
    return 0;
}

static void *job_thread(void *arg)
{
    job *j = arg;
    j->work(j->arg);
    /* Hand the job back; a pointer is far below PIPE_BUF, so it is atomic. */
    ssize_t n;
    do
        n = write(j->conn->wake[1], &j, sizeof j);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof j)
        log_error("job completion lost: %s", strerror(errno));
    return NULL;
}

int lchan_run_job(lchan *ch, void (*work)(void *arg),
                  void (*done)(lchan *ch, void *arg, void *state), void *arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return -1;
    *j = (job){.conn = ch->conn, .ch = ch, .work = work, .done = done, .arg = arg};
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&tid, &attr, job_thread, j);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        log_error("%s: cannot start a worker thread: %s", ch->name, strerror(rc));
        free(j);
        return -1;
    }
    ch->jobs++;
    ch->conn->jobs++;
    return 0;
}

/* ---------- the connection loop ---------- */

static int on_wake(socket_t fd, int revents, void *userdata)
{
    lconn *c = userdata;
    job *j;
    (void)revents;
    for (;;) {
        ssize_t n = read(fd, &j, sizeof j);
        if (n != (ssize_t)sizeof j)
            break;
        if (j == NULL) {
            atomic_store(&c->stop, true);
            continue;
        }
        j->next = c->completed;
        c->completed = j;
    }
    return 0;
}

/* Runs the done callbacks of finished jobs, oldest first. */
static void run_completed_jobs(lconn *c)
{
    job *list = NULL;
    while (c->completed != NULL) { /* reverse into completion order */
        job *j = c->completed;
        c->completed = j->next;
        j->next = list;
        list = j;
    }
    while (list != NULL) {
        job *j = list;
        list = j->next;
        lchan *ch = j->ch;
        if (j->done)
            j->done(ch, j->arg, ch->state);
        ch->jobs--;
        c->jobs--;
        free(j);
    }
}

static void deliver_input(lchan *ch)
{
    const lchan_handler *h = &ch->sub->handler;
    char buf[INPUT_CHUNK];

    /* A peer that closed may still have data buffered in libssh (a last
     * status line sent right before the close): it is delivered in this
     * round, before the handler hears of the close. */
    if (h->room == NULL || h->input == NULL || ch->eof_delivered)
        return;
    for (int i = 0; i < INPUT_CHUNKS_PER_ROUND; i++) {
        size_t room = h->room(ch->state);
        if (room == 0 || ch->closed_notified)
            return;
        if (room > sizeof buf)
            room = sizeof buf;
        int n = ssh_channel_read_nonblocking(ch->chan, buf, (uint32_t)room, 0);
        if (n > 0) {
            h->input(ch, buf, (size_t)n, ch->state);
            continue;
        }
        if (n == SSH_EOF) {
            ch->eof_delivered = true;
            if (h->eof)
                h->eof(ch, ch->state);
        } else if (n == SSH_ERROR) {
            ch->peer_closed = true;
        }
        return;
    }
}

static void flush_output(lchan *ch)
{
    while (lchan_pending(ch) > 0 && !ch->peer_closed && !ch->sent_close) {
        size_t n = ssh_channel_window_size(ch->chan);
        if (n == 0)
            return;
        if (n > lchan_pending(ch))
            n = lchan_pending(ch);
        if (n > OUTPUT_CHUNK)
            n = OUTPUT_CHUNK;
        int w = ssh_channel_write(ch->chan, ch->out + ch->out_off, (uint32_t)n);
        if (w < 0) {
            log_info("%s: write failed: %s", ch->name, ssh_get_error(ch->conn->session));
            ch->peer_closed = true;
            return;
        }
        if (w == 0)
            return;
        ch->out_off += (size_t)w;
    }
    if (ch->out_off == ch->out_len)
        ch->out_off = ch->out_len = 0;
}

static void close_if_drained(lchan *ch)
{
    if (!ch->want_close || ch->sent_close || lchan_pending(ch) > 0)
        return;
    if (!ch->peer_closed && ssh_channel_is_open(ch->chan)) {
        /* Like sshd after a subsystem ends; OpenSSH's client exits 255
         * when a session channel closes without one. */
        ssh_channel_request_send_exit_status(ch->chan, 0);
        ssh_channel_send_eof(ch->chan);
        ssh_channel_close(ch->chan);
    }
    ch->sent_close = true;
}

static void channel_round(lconn *c, lchan *ch)
{
    if (ch->sub != NULL && !ch->closed_notified && !c->dying) {
        deliver_input(ch);
        if (ch->sub->handler.pump && !ch->closed_notified)
            ch->sub->handler.pump(ch, ch->state);
    }
    if (!c->dying)
        flush_output(ch);
    close_if_drained(ch);
    if (!ch->closed_notified && (ch->peer_closed || ch->sent_close || c->dying)) {
        ch->closed_notified = true;
        if (ch->sub != NULL && ch->sub->handler.closed)
            ch->sub->handler.closed(ch, ch->state);
        lchan_watch_fd(ch, -1, 0);
    }
}

static void channel_release(lchan *ch)
{
    if (ch->sub != NULL)
        ch->sub->handler.release(ch->state);
    lchan_watch_fd(ch, -1, 0);
    ssh_remove_channel_callbacks(ch->chan, &ch->cb);
    ssh_channel_free(ch->chan);
    free(ch->out);
    free(ch);
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
        int timeout = ROUND_IDLE_MS;
        if (!c->authenticated) {
            int64_t left = c->started_ms + LISTENER_AUTH_TIMEOUT_MS - monotonic_ms();
            if (left <= 0) {
                log_info("conn %u from %s: no authentication within %d s", c->id, c->peer,
                         LISTENER_AUTH_TIMEOUT_MS / 1000);
                ssh_session_set_disconnect_message(c->session, "Authentication timeout");
                return;
            }
            if (left < timeout)
                timeout = (int)left;
        }
        int rc = ssh_event_dopoll(c->event, timeout);
        ack_now(c->fd);
        if (session_gone(c) || (rc == SSH_ERROR && errno != EINTR))
            return;
        if (auth_exhausted(c) && !c->authenticated) {
            log_info("conn %u from %s: too many authentication failures", c->id, c->peer);
            ssh_session_set_disconnect_message(c->session, "Too many authentication failures");
            return;
        }
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
    long timeout_s = LISTENER_AUTH_TIMEOUT_MS / 1000;

    if (authorized_keys_load(c->l->cfg.auth_keys_path, &c->keys, err, sizeof err) < 0) {
        log_error("conn %u: %s", c->id, err);
        return -1;
    }
    ssh_options_set(c->session, SSH_OPTIONS_TIMEOUT, &timeout_s);
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
        log_info("conn %u from %s: key exchange failed: %s", c->id, c->peer,
                 ssh_get_error(c->session));
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

static void connection_free(lconn *c)
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

static void listener_forget(listener *l, lconn *c)
{
    pthread_mutex_lock(&l->mu);
    for (lconn **link = &l->conns; *link != NULL; link = &(*link)->next) {
        if (*link == c) {
            *link = c->next;
            break;
        }
    }
    l->nconns--;
    pthread_cond_broadcast(&l->idle);
    pthread_mutex_unlock(&l->mu);
}

static void *connection_thread(void *arg)
{
    lconn *c = arg;
    listener *l = c->l;

    if (connection_setup(c) == 0) {
        atomic_store(&c->in_loop, true);
        connection_loop(c);
        connection_drain(c);
        log_debug("conn %u from %s: closed", c->id, c->peer);
    }
    listener_forget(l, c);
    connection_free(c);
    return NULL;
}

/* ---------- accepting ---------- */

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
    }
    snprintf(out, size, "%s:%d", host, port);
}

static lconn *connection_new(listener *l, int fd, const struct sockaddr_storage *peer)
{
    lconn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->l = l;
    c->fd = fd;
    c->wake[0] = c->wake[1] = -1;
    c->started_ms = monotonic_ms();
    format_peer(peer, c->peer, sizeof c->peer);
    if (pipe2(c->wake, O_CLOEXEC) < 0 || fcntl(c->wake[0], F_SETFL, O_NONBLOCK) < 0)
        goto fail;
    c->session = ssh_new();
    if (c->session == NULL)
        goto fail;
    if (ssh_bind_accept_fd(l->bind, c->session, fd) != SSH_OK) {
        log_error("cannot hand %s to libssh: %s", c->peer, ssh_get_error(l->bind));
        goto fail;
    }
    return c;
fail:
    if (c->session != NULL) {
        ssh_free(c->session);
        c->session = NULL;
    }
    close_fd(&c->wake[0]);
    close_fd(&c->wake[1]);
    free(c);
    return NULL;
}

static void accept_one(listener *l)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = accept4(l->listen_fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
            log_error("accept: %s", strerror(errno));
            struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
            nanosleep(&pause, NULL); /* do not spin while out of descriptors */
        }
        return;
    }
    pthread_mutex_lock(&l->mu);
    bool full = l->nconns >= LISTENER_MAX_CONNECTIONS;
    pthread_mutex_unlock(&l->mu);
    if (full) {
        char who[INET6_ADDRSTRLEN + 8];
        format_peer(&peer, who, sizeof who);
        log_warn("connection from %s refused: %d connections already open", who,
                 LISTENER_MAX_CONNECTIONS);
        close(fd);
        return;
    }
    /* Interactive traffic of small packets: without this, Nagle holds a
     * response's last packet for the client's delayed ACK (~40 ms a call). */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        log_debug("TCP_NODELAY: %s", strerror(errno));
    lconn *c = connection_new(l, fd, &peer);
    if (c == NULL) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&l->mu);
    c->id = ++l->next_conn_id;
    c->next = l->conns;
    l->conns = c;
    l->nconns++;
    pthread_mutex_unlock(&l->mu);

    pthread_attr_t attr;
    pthread_t tid;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&tid, &attr, connection_thread, c);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        log_error("cannot start a thread for %s: %s", c->peer, strerror(rc));
        listener_forget(l, c);
        connection_free(c);
    }
}

/* Asks every connection to wind down and waits until all are gone. */
static void stop_connections(listener *l)
{
    job *stop = NULL;
    pthread_mutex_lock(&l->mu);
    for (lconn *c = l->conns; c != NULL; c = c->next) {
        atomic_store(&c->stop, true);
        if (write(c->wake[1], &stop, sizeof stop) < 0)
            log_debug("conn %u: wake: %s", c->id, strerror(errno));
        /* One still in its key exchange is not polling the pipe yet. */
        if (!atomic_load(&c->in_loop))
            shutdown(c->fd, SHUT_RDWR);
    }
    while (l->nconns > 0)
        pthread_cond_wait(&l->idle, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

int listener_run(listener *l)
{
    int rc = 0;
    struct pollfd p[2] = {{.fd = l->listen_fd, .events = POLLIN},
                          {.fd = l->stop_pipe[0], .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("poll: %s", strerror(errno));
            rc = -1;
            break;
        }
        if (p[1].revents != 0)
            break;
        if (p[0].revents & POLLIN)
            accept_one(l);
    }
    if (l->cfg.stopping != NULL)
        l->cfg.stopping(l->cfg.app);
    close_fd(&l->listen_fd);
    stop_connections(l);
    return rc;
}

void listener_stop(listener *l)
{
    char byte = 1;
    ssize_t n = write(l->stop_pipe[1], &byte, 1);
    (void)n; /* a full pipe already holds a stop request */
}

/* ---------- setting up ---------- */

static int bind_socket(const char *addr, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[16];
    int fd = -1;
    int saved = 0;

    snprintf(service, sizeof service, "%d", port);
    int gai = getaddrinfo(addr, service, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, gai_strerror(gai));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(saved));
    return fd;
}

static int bind_policy(listener *l, ssh_key host_key, char *err, size_t errlen)
{
    bool no = false;
    l->bind = ssh_bind_new();
    if (l->bind == NULL) {
        snprintf(err, errlen, "out of memory");
        ssh_key_free(host_key);
        return -1;
    }
    /* No system-wide libssh server config may widen the policy. */
    if (ssh_bind_options_set(l->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
        ssh_bind_options_set(l->bind, SSH_BIND_OPTIONS_IMPORT_KEY, host_key) != SSH_OK) {
        snprintf(err, errlen, "libssh refused the host key: %s", ssh_get_error(l->bind));
        ssh_key_free(host_key);
        return -1;
    }
    /* The bind owns host_key from here on. */
    if (ssh_bind_options_set(l->bind, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, ED25519_ONLY) !=
            SSH_OK ||
        ssh_bind_options_set(l->bind, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, ED25519_ONLY) !=
            SSH_OK) {
        snprintf(err, errlen, "libssh refused the key policy: %s", ssh_get_error(l->bind));
        return -1;
    }
    return 0;
}

enum listener_error listener_open(listener **out, const listener_config *cfg, char *err,
                                  size_t errlen)
{
    ssh_key host_key = NULL;
    enum listener_error rc = LISTENER_ERR_INTERNAL;
    listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    l->cfg = *cfg;
    l->listen_fd = l->stop_pipe[0] = l->stop_pipe[1] = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->idle, NULL);
    ssh_init();
    if (host_key_load(cfg->host_key_path, &host_key, err, errlen) < 0) {
        rc = errno == ENOENT ? LISTENER_ERR_HOST_KEY_MISSING : LISTENER_ERR_HOST_KEY;
        goto fail;
    }
    if (bind_policy(l, host_key, err, errlen) < 0)
        goto fail;
    if (pipe2(l->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    l->listen_fd = bind_socket(cfg->bind_addr, cfg->port, err, errlen);
    if (l->listen_fd < 0) {
        rc = LISTENER_ERR_BIND;
        goto fail;
    }
    *out = l;
    return LISTENER_OK;
fail:
    listener_free(l);
    return rc;
}

void listener_free(listener *l)
{
    if (l == NULL)
        return;
    close_fd(&l->listen_fd);
    close_fd(&l->stop_pipe[0]);
    close_fd(&l->stop_pipe[1]);
    if (l->bind != NULL)
        ssh_bind_free(l->bind);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->idle);
    free(l);
}
