/* SSH key helpers for the narrow listeners of SPEC 5: ed25519 host keys,
 * OpenSSH authorized_keys files (ed25519 entries only; of the options only
 * from="pattern-list" is honoured, any other refuses its key) and SHA256
 * fingerprints formatted like OpenSSH's. */
#ifndef CONVOCATE_SSH_KEYS_H
#define CONVOCATE_SSH_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include <libssh/libssh.h>

#define AUTH_KEYS_MAX_BYTES (1024 * 1024) /* an authorized_keys file is at most 1 MiB */
#define AUTH_KEYS_MAX_ENTRIES 1024
#define FINGERPRINT_LEN 64 /* "SHA256:" + 43 base64 characters + NUL fits */

typedef struct {
    ssh_key *keys; /* ed25519 public keys, in file order */
    char **from;   /* per key: its from= pattern list, or NULL (any source) */
    size_t count;
} authorized_keys;

/* Loads an OpenSSH authorized_keys file. Blank lines, comments and trailing
 * comments are tolerated; entries of any type other than ssh-ed25519 are
 * skipped with a log line. Options before the key type: from="..." (see
 * common/addr_pattern.h) binds the key to those sources; any other option
 * (command=, restrict, no-pty, ...), a malformed options field or a bad
 * from= list refuses that line's key, with a log line naming the option and
 * the line number: an option is never ignored silently. A missing file
 * loads as an empty set (nobody is allowed). Returns 0, or -1 with err
 * filled when the file cannot be read. */
int authorized_keys_load(const char *path, authorized_keys *out, char *err, size_t errlen);
void authorized_keys_clear(authorized_keys *ak);

enum auth_keys_verdict {
    AUTH_KEYS_ALLOWED,      /* listed, and allowed from this source */
    AUTH_KEYS_NOT_LISTED,   /* not an ed25519 key of the file */
    AUTH_KEYS_WRONG_SOURCE, /* listed, but every from= of it refuses this source */
};

/* Whether the offered public key may log in from source address ip (numeric,
 * as the listener formats it). */
enum auth_keys_verdict authorized_keys_check(const authorized_keys *ak, const ssh_key offered,
                                             const char *ip);

/* Formats "SHA256:<base64 without padding>" of a public key, as OpenSSH
 * prints it. Returns 0 or -1 (out is then "SHA256:?"). */
int key_fingerprint_sha256(const ssh_key key, char out[FINGERPRINT_LEN]);

/* Loads an ed25519 private host key. Any other key type is refused.
 * Returns 0 with *out owned by the caller (ssh_key_free), or -1 with err
 * filled; errno is ENOENT when the file does not exist. */
int host_key_load(const char *path, ssh_key *out, char *err, size_t errlen);

#endif
