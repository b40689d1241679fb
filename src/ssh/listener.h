/* A narrow SSH server on libssh with the policy of SPEC 5, shared by the
 * agent's tcp/222 listener and the shell's tcp/223 listener.
 *
 * Policy, enforced at the protocol level: ed25519 host key and client keys
 * only; public-key auth only, against an authorized_keys file re-read on
 * every connection; auth within 10 s and at most 3 failed attempts; only
 * `session` channels, at most 64 per connection; on them only a `subsystem`
 * request naming one of the configured subsystems; every other channel type,
 * channel request and global request is refused; at most 256 authenticated
 * connections. Connections that have not authenticated yet live in a
 * separate pool of 32, at most 8 per source address; when it is full the
 * oldest connection of the source holding the most slots is dropped, so a
 * flood of silent connections never locks an operator out.
 *
 * Threads: each connection runs its own libssh event loop on its own thread
 * and never shares its session. Subsystem handlers run on that thread and
 * must not block: slow work goes to lchan_run_job(), whose completion comes
 * back to the connection thread. */
#ifndef CONVOCATE_SSH_LISTENER_H
#define CONVOCATE_SSH_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#define LISTENER_MAX_CONNECTIONS 256 /* authenticated connections */
#define LISTENER_MAX_PREAUTH 32      /* connections not yet authenticated */
#define LISTENER_MAX_PREAUTH_PER_SOURCE 8
/* Threads of connections on their way out (dropped, closing) are bounded
 * too: past this many in all, new connections are refused. */
#define LISTENER_MAX_THREADS (LISTENER_MAX_CONNECTIONS + 2 * LISTENER_MAX_PREAUTH)
#define LISTENER_MAX_CHANNELS 64
/* Client input the handlers of one connection may hold at once, across its
 * channels (a request line being read, a relay's buffer): without it,
 * 64 channels x 1 MiB lines x 256 connections is 16 GiB. */
#define LISTENER_MAX_HELD_INPUT (4 * 1024 * 1024)
#define LISTENER_MAX_AUTH_TRIES 3
#define LISTENER_AUTH_TIMEOUT_MS 10000

typedef struct listener listener;
typedef struct lchan lchan; /* one channel that was granted a subsystem */

/* Callbacks of one subsystem. All run on the connection's thread; state is
 * what open() returned. Only open and release are required. */
typedef struct {
    /* The client was granted this subsystem on ch. Returns the handler's
     * state, or NULL to refuse the request. No I/O here. */
    void *(*open)(lchan *ch, void *app);
    /* How many input bytes the handler can take now (0: not now; the rest
     * waits in the SSH window, which is how the client is slowed down). */
    size_t (*room)(void *state);
    /* Input from the client, len <= the last room(). */
    void (*input)(lchan *ch, const void *buf, size_t len, void *state);
    /* The client sent EOF; every byte before it has been delivered. */
    void (*eof)(lchan *ch, void *state);
    /* A window-change request; NULL refuses it. Called from inside libssh:
     * no channel writes and no lchan_watch_fd() here. */
    int (*window_change)(lchan *ch, int cols, int rows, void *state);
    /* Called once per loop round: do non-blocking I/O (watched fds) here. */
    void (*pump)(lchan *ch, void *state);
    /* The channel is going away (client closed it, the handler closed it, or
     * the connection dropped): stop I/O. Jobs may still be started. */
    void (*closed)(lchan *ch, void *state);
    /* Last call, once no job is pending: free the state. */
    void (*release)(void *state);
} lchan_handler;

typedef struct {
    const char *name; /* e.g. "convocate-agent-rpc" */
    lchan_handler handler;
} listener_subsystem;

typedef struct {
    const char *bind_addr; /* numeric address or host name */
    int port;
    const char *host_key_path;  /* ed25519 private key */
    const char *auth_keys_path; /* OpenSSH authorized_keys */
    const listener_subsystem *subsystems;
    size_t n_subsystems;
    void *app; /* passed to every handler's open() */
    /* Optional: called by listener_run() once a stop was requested, before
     * connections are closed. */
    void (*stopping)(void *app);
} listener_config;

enum listener_error {
    LISTENER_OK = 0,
    LISTENER_ERR_HOST_KEY_MISSING, /* err names the path */
    LISTENER_ERR_HOST_KEY,         /* unreadable or not ed25519 */
    LISTENER_ERR_BIND,             /* err is "cannot listen on ADDR:PORT: reason" */
    LISTENER_ERR_INTERNAL,
};

/* Loads the host key, sets the protocol policy and binds the socket. The
 * config (and the strings and subsystem array it points to) must outlive the
 * listener. On failure returns an error code with err filled. */
enum listener_error listener_open(listener **out, const listener_config *cfg, char *err,
                                  size_t errlen);
/* Accepts connections until listener_stop(); then stops accepting, closes
 * every connection, waits for their threads and pending jobs, and returns 0
 * (-1 when the accept loop failed). */
int listener_run(listener *l);
/* Async-signal-safe: makes listener_run() wind down. */
void listener_stop(listener *l);
void listener_free(listener *l);

/* Channel helpers: connection thread only, never from inside window_change. */

/* Queues bytes for the client; they go out as the SSH window allows.
 * Returns 0 or -1 when out of memory. */
int lchan_write(lchan *ch, const void *buf, size_t len);
/* Bytes queued and not yet sent. */
size_t lchan_pending(const lchan *ch);
/* Bytes the client's window accepts now beyond what is queued. */
size_t lchan_writable(const lchan *ch);
/* Declares that ch's handler now holds `bytes` of client input in all (an
 * absolute figure: call it again as the buffer grows or shrinks). Returns 0,
 * or -1 (nothing recorded) when the connection's channels would then hold
 * more than LISTENER_MAX_HELD_INPUT: the handler then answers with an error
 * and closes the channel, and the connection goes on. Released with the
 * channel. */
int lchan_hold_input(lchan *ch, size_t bytes);
/* Sends EOF and closes the channel once the queue has drained. */
void lchan_close(lchan *ch);
/* Queues line (malloc'd; taken over and freed; NULL queues nothing), then
 * closes as lchan_close(): a subsystem's last answer. */
void lchan_reply_and_close(lchan *ch, char *line);
bool lchan_is_closing(const lchan *ch);
/* Watches fd in the connection loop (POLLIN/POLLOUT bits; 0 stops watching;
 * one fd per channel). Readiness only wakes the loop: handlers do their
 * non-blocking I/O in pump(). Stop watching before closing the fd. */
int lchan_watch_fd(lchan *ch, int fd, short events);
/* Runs work(arg) on a worker thread, then done(ch, arg, state) on the
 * connection thread. The channel and its state stay alive until done has
 * run. Returns 0, or -1 when no thread could be started. */
int lchan_run_job(lchan *ch, void (*work)(void *arg),
                  void (*done)(lchan *ch, void *arg, void *state), void *arg);
/* A short description for log lines: "conn 12 chan 3 (SHA256:...)". */
const char *lchan_name(const lchan *ch);
/* The SHA256 fingerprint ("SHA256:...") of the key that authenticated the
 * channel's connection: the identity a handler may bind the peer to (the
 * shell's 223 listener maps it to one agent id). */
const char *lchan_key_fingerprint(const lchan *ch);

#endif
