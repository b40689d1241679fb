/* Dialling a remote target as the operator does with OpenSSH: their own
 * keys (ssh-agent, ~/.ssh/id_*), their own known_hosts, strict host-key
 * checking. */
#ifndef CONVOCATE_SSH_TARGET_H
#define CONVOCATE_SSH_TARGET_H

#include <libssh/libssh.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/paths.h"

#define DIAL_TARGET_HOST_MAX 256
#define DIAL_TARGET_USER_MAX 64

typedef struct {
    char host[DIAL_TARGET_HOST_MAX]; /* bare name or address, no brackets */
    int port;
    char user[DIAL_TARGET_USER_MAX];
    char known_hosts[PATH_BUF];
    char identity[PATH_BUF]; /* "" for ssh-agent and the default files */
    bool accept_new_host_key;
    long connect_timeout; /* seconds */
} dial_target;

/* Fills t from the operator's flags: validates the host, port and user
 * names and resolves the defaults ($USER or root, ~/.ssh/known_hosts). */
int dial_target_init(dial_target *t, const char *host, int port, const char *user,
                     const char *known_hosts, const char *identity, bool accept_new,
                     long connect_timeout, char *err, size_t errlen);

/* "H" or "[H]:PORT", as known_hosts and messages name the target. */
void dial_target_name(const dial_target *t, char *out, size_t size);

/* A connected, verified, authenticated session; NULL with err. */
ssh_session dial_target_connect(const dial_target *t, char *err, size_t errlen);

#endif
