/* OpenSSH public key files ("ssh-ed25519 <base64> [comment]"): the agent
 * keys the shell keeps under agent-keys/<id>/ and the pinned host keys. A
 * file a peer could have influenced is parsed here, bounded, before libssh
 * sees the base64. */
#ifndef CONVOCATE_SSH_PUBKEY_H
#define CONVOCATE_SSH_PUBKEY_H

#include <stddef.h>

#include <libssh/libssh.h>

#include "ssh/keys.h" /* FINGERPRINT_LEN */

#define PUBKEY_TEXT_MAX 8192 /* an ed25519 .pub line is ~100 bytes */

/* Parses the text of a .pub file: one line "ssh-ed25519 BASE64 [comment]",
 * optionally followed by blank lines. Any other key type, a second key or a
 * NUL byte is refused. Returns 0 with *out owned by the caller
 * (ssh_key_free), or -1 with err filled. */
int pubkey_parse(const char *text, size_t len, ssh_key *out, char *err, size_t errlen);

/* Reads a .pub file (at most PUBKEY_TEXT_MAX bytes, no symlink) and parses
 * it as above. The loader for pinned host keys: libssh's own file loader
 * (ssh_pki_import_pubkey_file, 0.10.6) reads past the end of its buffer
 * when the file holds a key type and nothing after it (found by
 * tests/fuzz/fuzz_pubkey). Returns 0 with *out, or -1 with err filled
 * (errno is ENOENT when the file does not exist). */
int pubkey_file_load(const char *path, ssh_key *out, char *err, size_t errlen);

/* The same, and formats the key's SHA256 fingerprint. Returns 0, or -1 with err filled (errno is
 * ENOENT when the file does not exist). */
int pubkey_file_fingerprint(const char *path, char out[FINGERPRINT_LEN], char *err, size_t errlen);

#endif
