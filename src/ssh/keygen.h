/* Minting and handling the ed25519 key pairs that pair a shell with its
 * agents (SPEC 4, 5): OpenSSH-format private keys, one-line public keys and
 * comparison by key material (fingerprints: key_fingerprint_sha256, keys.h). */
#ifndef CONVOCATE_SSH_KEYGEN_H
#define CONVOCATE_SSH_KEYGEN_H

#include <libssh/libssh.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define KEYGEN_MAX_KEY_FILE (64 * 1024)

/* A fresh ed25519 key from the CSPRNG; NULL on failure. */
ssh_key keygen_ed25519(void);

/* The private key in OpenSSH format ("-----BEGIN OPENSSH PRIVATE KEY-----"),
 * malloc'd; free with keygen_free_secret(), which wipes it first. */
char *keygen_private_text(ssh_key key);
void keygen_free_secret(char *text);

/* "ssh-ed25519 <base64> <comment>\n", malloc'd; comment may be NULL. */
char *keygen_public_line(ssh_key key, const char *comment);

/* Writes the private key (mode, owner; KEEP_OWNER keeps ours) and
 * path + ".pub" (0644, same owner), each atomically: a temporary file in the
 * same directory, fsync, rename, fsync of the directory. 0, or -1 with err. */
int keygen_write_pair(ssh_key key, const char *path, const char *comment, mode_t mode, uid_t uid,
                      gid_t gid, char *err, size_t errlen);

/* Parses an ed25519 private key in OpenSSH format; 0 or -1 with err. */
int keygen_parse_private(const char *text, ssh_key *out, char *err, size_t errlen);
/* Parses the first key line of a .pub or authorized_keys text
 * ("ssh-ed25519 <base64> [comment]"); only ed25519 is accepted. */
int keygen_parse_public(const char *text, ssh_key *out, char *err, size_t errlen);
/* Reads a public key file (bounded); errno ENOENT when it is missing. */
int keygen_read_public(const char *path, ssh_key *out, char *err, size_t errlen);

/* True when both keys hold the same public key material. */
bool keygen_same_public(ssh_key a, ssh_key b);

/* True when text (an authorized_keys file) has a line holding key. Lines
 * that do not parse are ignored, so a comment or a foreign key type never
 * makes a match. */
bool keygen_text_has_key(const char *text, ssh_key key);

#endif
