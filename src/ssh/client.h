/* A persistent, pinned SSH client to one peer (SPEC 5): ed25519 only, the
 * peer's host key compared with a pinned public key file before anything is
 * sent, one connection reused with a fresh channel per call, and redial with
 * exponential backoff (1 s doubling to 30 s, reset after a success). */
#ifndef CONVOCATE_SSH_CLIENT_H
#define CONVOCATE_SSH_CLIENT_H

#include <libssh/libssh.h>
#include <stddef.h>

#include "common/paths.h"

typedef struct {
    char host[256];
    int port;
    char user[64];                  /* "claude": keys authorize, not names */
    char key_path[PATH_BUF];        /* our ed25519 private key */
    char pinned_key_path[PATH_BUF]; /* the peer's expected host key (.pub format) */
    int call_timeout_s;             /* whole-call budget for one request */
} pinned_peer_config;

typedef struct pinned_peer pinned_peer;

pinned_peer *pinned_peer_new(const pinned_peer_config *cfg);
void pinned_peer_free(pinned_peer *p);

/* Sends req on a fresh channel of subsystem, half-closes, and collects the
 * answer until EOF (at most resp_max bytes; more is an error). Dials first when
 * the connection is down and the backoff allows; a broken persistent
 * connection is redialled once within the same call. *resp is malloc'd and
 * NUL-terminated. Returns 0, or -1 with err saying what failed. Calls on one
 * peer are serialised; different peers are independent. */
int pinned_peer_request(pinned_peer *p, const char *subsystem, const void *req, size_t req_len,
                        char **resp, size_t resp_max, char *err, size_t errlen);

/* Opens a channel of subsystem on the persistent connection (dialling if
 * needed) and hands it to fn, keeping the peer to this caller until fn
 * returns: for interactive relays such as attach. fn's return is returned;
 * -1 with err filled when the channel could not be opened. */
typedef int (*peer_channel_fn)(ssh_session session, ssh_channel channel, void *ctx);
/* What fn returns when the connection itself failed: it is dropped. */
#define PINNED_PEER_BROKEN (-2)
int pinned_peer_with_channel(pinned_peer *p, const char *subsystem, peer_channel_fn fn, void *ctx,
                             char *err, size_t errlen);

/* Closes the connection now, if one is open; the next call dials again
 * (without backoff). For a caller that is done with the peer and would
 * rather pay for the teardown here than in pinned_peer_free. */
void pinned_peer_hang_up(pinned_peer *p);

/* Lets the next call dial at once, even within the backoff of a failed
 * dial: for a long-lived caller whose answer must say how the peer is now,
 * as a fresh process would find it (the ls service). */
void pinned_peer_allow_dial(pinned_peer *p);

/* The delay before the next dial is allowed, in ms (0 when connected). */
long pinned_peer_backoff_ms(pinned_peer *p);

#endif
