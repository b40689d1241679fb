/* What the files of the SPEC 5 listener share and nobody else sees: the
 * listener, connection and channel objects, and the calls between the files.
 *
 *   listener.c           set-up, accept loop, stop
 *   listener_admission.c connection admission: the cap and the pre-auth budget
 *   listener_auth.c      authentication policy (keys, methods)
 *   listener_requests.c  channel opens and channel requests (subsystem, pty, ...)
 *   listener_channel.c   channel plumbing: input, the output queue, watched fds
 *   listener_jobs.c      slow work on worker threads, handed back to the loop
 *   listener_conn.c      one connection's thread and event loop */
#ifndef CONVOCATE_SSH_LISTENER_INTERNAL_H
#define CONVOCATE_SSH_LISTENER_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "common/ratelimit.h"
#include "ssh/keys.h"
#include "ssh/listener.h"

#define ROUND_IDLE_MS 1000
#define INPUT_CHUNK 16384
#define INPUT_CHUNKS_PER_ROUND 64 /* fairness between channels of one connection */
#define OUTPUT_CHUNK 32768
#define LINGER_MS 1000 /* how long a closing connection waits for the peer to go */

typedef struct lconn lconn;

/* What the pre-auth budget counts for its summary log line. */
enum budget_event {
    BUDGET_SOURCE_FULL,  /* refused: the source holds its share of the pool */
    BUDGET_DROPPED,      /* dropped: the pool was full, oldest went first */
    BUDGET_THREADS_FULL, /* refused: the listener is at its thread cap */
    BUDGET_AUTHED_FULL,  /* authenticated, but every authenticated slot is taken */
    BUDGET_KEX_FAILED,   /* ended in (or by the timeout of) the key exchange */
    BUDGET_TIMED_OUT,    /* no authentication within LISTENER_AUTH_TIMEOUT_MS */
    BUDGET_EVENTS
};

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
    size_t held_input;    /* what lchan_hold_input() recorded for it */
    int watch_fd;
    short watch_events;
    char name[96];
    lchan *next;
};

struct lconn {
    listener *l;
    unsigned id;
    int fd;
    char ip[INET6_ADDRSTRLEN];       /* the source address alone, IPv4 unmapped */
    char peer[INET6_ADDRSTRLEN + 8]; /* "ip:port" for log lines */
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
    /* Budget slots, under the listener's mu: the connection holds one of
     * the pre-auth pool until it authenticates (then one of the
     * authenticated cap) or is dropped. */
    bool holds_preauth;
    bool holds_authed;
    atomic_bool dropped; /* evicted from the pre-auth pool: end quietly */
    atomic_bool stop;
    atomic_bool in_loop;
    bool dying;
    lchan *chans;
    size_t nchans;
    unsigned next_chan_id;
    size_t held_input; /* sum of its channels' held_input */
    job *completed;    /* jobs whose work has finished, newest first */
    int jobs;
    lconn *next; /* in the listener's list */
};

struct listener {
    listener_config cfg;
    ssh_bind bind;
    int listen_fd;
    int stop_pipe[2];
    int summary_pipe[2]; /* wakes the accept loop when a summary line is held */
    pthread_mutex_t mu;
    pthread_cond_t idle;
    lconn *conns;
    size_t nconns;   /* every connection with a thread, whatever its state */
    size_t npreauth; /* connections holding a pre-auth slot */
    size_t nauthed;  /* connections holding an authenticated slot */
    unsigned next_conn_id;
    /* One summary line per interval for what the pre-auth budget refused,
     * dropped or timed out: a flood must not flood the log. */
    ratelimit budget_log;
    unsigned long budget_counts[BUDGET_EVENTS];
    char budget_latest[INET6_ADDRSTRLEN]; /* the source of the latest event */
};

/* listener.c */
void close_fd(int *fd);
void listener_forget(listener *l, lconn *c);

/* listener_admission.c */
/* At accept, before any thread or libssh state is made: false (counted
 * in the summary) when the source holds its share of the pre-auth pool or
 * the listener is at its thread cap; the caller then closes the socket.
 * When the pool is full, its oldest connection from the busiest source is
 * dropped to make room. */
bool admission_accept(listener *l, const char *ip);
/* The accepted connection takes its pre-auth slot (mu held). */
void admission_enter(listener *l, lconn *c);
/* The connection authenticated: it trades its pre-auth slot for one of the
 * LISTENER_MAX_CONNECTIONS authenticated ones. False (logged) when those
 * are all taken or the connection was dropped meanwhile. */
bool admission_authenticated(lconn *c);
/* The connection is going away: its slot is freed (mu held). */
void admission_leave(listener *l, lconn *c);
/* Logs the summary when its interval is over and counts are held; returns
 * how long (ms) until it is due, or -1 when nothing is held. Called by the
 * accept loop, which sleeps no longer than that. */
int admission_flush_summary(listener *l);
/* The key exchange failed: counted in the summary unless it was dropped. */
void admission_key_exchange_failed(lconn *c);
/* The connection's pre-auth clock starts (at accept). */
void admission_start(lconn *c);
/* Bounds libssh's blocking key exchange; before ssh_handle_key_exchange. */
void admission_limit_key_exchange(lconn *c);
/* The poll timeout of the next loop round (at most idle_ms), or -1 once the
 * time to authenticate ran out (logged, disconnect message set). */
int admission_poll_timeout(lconn *c, int idle_ms);
/* A refused authentication attempt: counted and logged. */
void admission_auth_failed(lconn *c, const char *method, const char *detail);
/* True once the refused attempts used up the budget. */
bool admission_auth_spent(const lconn *c);
/* After each round: false (logged, disconnect message set) when an
 * unauthenticated connection spent its budget and must end. */
bool admission_may_continue(lconn *c);

/* listener_auth.c: server callbacks of the authentication policy. */
int on_auth_none(ssh_session s, const char *user, void *userdata);
int on_auth_password(ssh_session s, const char *user, const char *password, void *userdata);
int on_auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *key,
                   char signature_state, void *userdata);
int on_other_message(ssh_session s, ssh_message msg, void *userdata);

/* listener_requests.c */
ssh_channel on_channel_open(ssh_session s, void *userdata);

/* listener_channel.c */
void channel_round(lconn *c, lchan *ch);
void channel_release(lchan *ch);

/* listener_jobs.c */
/* Starts fn(arg) on a thread nobody joins; 0 or the pthread error. */
int start_detached_thread(void *(*fn)(void *), void *arg);
int on_wake(socket_t fd, int revents, void *userdata);
void run_completed_jobs(lconn *c);

/* listener_conn.c */
void *connection_thread(void *arg);
void connection_free(lconn *c);

#endif
