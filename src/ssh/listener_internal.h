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

#include "ssh/keys.h"
#include "ssh/listener.h"

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

/* listener.c */
void close_fd(int *fd);
void listener_forget(listener *l, lconn *c);

/* listener_admission.c */
/* At accept, before any thread or libssh state is made: false (logged)
 * when the listener is full; the caller then closes the socket. */
bool admission_accept(listener *l, const char *peer);
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
