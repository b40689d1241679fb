/* Provisioning steps for SSH keys on a runner's target: key pairs that are
 * minted once and then kept, public halves, authorized_keys entries and
 * host-key pins that change only when the operator asks (--repin). */
#ifndef CONVOCATE_PROVISION_KEYSTEPS_H
#define CONVOCATE_PROVISION_KEYSTEPS_H

#include <libssh/libssh.h>
#include <stdbool.h>

#include "provision/plan.h"
#include "provision/runner.h"

/* The ed25519 pair at path and path.pub: the existing private key is kept
 * (its mode and owner corrected), a missing one is minted. *out gets the key
 * (caller frees). */
int keystep_pair(plan *p, runner *r, const char *step, const char *path, const char *comment,
                 mode_t mode, uid_t uid, gid_t gid, ssh_key *out);

/* A public key file holding key (one line, with comment). */
int keystep_public(plan *p, runner *r, const char *step, const char *path, ssh_key key,
                   const char *comment, mode_t mode, uid_t uid, gid_t gid);

/* Appends key to an authorized_keys file unless a line already holds it.
 * A new file gets new_mode; an existing one keeps its mode. */
int keystep_authorize(plan *p, runner *r, const char *step, const char *path, ssh_key key,
                      const char *comment, mode_t new_mode);

/* Reads a public key file on the target: 1 with *out, 0 when missing, -1
 * when unreadable or not an ed25519 key (reported under step). */
int keystep_read_public(plan *p, runner *r, const char *step, const char *path, ssh_key *out);

/* Checks a pin before anything is written: 0 when path is missing or pins
 * key, or when repin allows replacing it; -1 (reported with both
 * fingerprints) otherwise. what names the peer for the message. */
int keystep_check_pin(plan *p, runner *r, const char *step, const char *path, ssh_key key,
                      bool repin, const char *what);

/* Writes the pin: pin_text (the peer's .pub file) when path is missing or
 * pins another key; a pin of the same key is left byte for byte. */
int keystep_pin(plan *p, runner *r, const char *step, const char *path, ssh_key key,
                const char *pin_text, mode_t mode, uid_t uid, gid_t gid);

#endif
