#include "ssh/pubkey.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"

#define ED25519_TYPE "ssh-ed25519"
#define BLOB_MAX 512 /* base64 of an ed25519 key blob is 68 characters */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_base64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

/* The key line ends at the first newline; what follows may only be blank. */
static size_t first_line(const char *text, size_t len)
{
    const char *nl = memchr(text, '\n', len);
    return nl ? (size_t)(nl - text) : len;
}

static bool only_blank_after(const char *text, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++)
        if (!is_blank(text[i]) && text[i] != '\n')
            return false;
    return true;
}

/* Finds "ssh-ed25519 BLOB" at the start of the line and copies BLOB out. */
static int take_blob(const char *line, size_t len, char blob[BLOB_MAX + 1], char *err,
                     size_t errlen)
{
    size_t i = 0;
    while (i < len && is_blank(line[i]))
        i++;
    size_t tlen = strlen(ED25519_TYPE);
    if (len - i <= tlen || memcmp(line + i, ED25519_TYPE, tlen) != 0 || !is_blank(line[i + tlen])) {
        snprintf(err, errlen, "not an ssh-ed25519 public key");
        return -1;
    }
    for (i += tlen; i < len && is_blank(line[i]);)
        i++;
    size_t start = i;
    while (i < len && is_base64(line[i]))
        i++;
    size_t blen = i - start;
    if (blen == 0 || blen > BLOB_MAX || (i < len && !is_blank(line[i]))) {
        snprintf(err, errlen, "the key is not a base64 blob of a sane size");
        return -1;
    }
    memcpy(blob, line + start, blen);
    blob[blen] = '\0';
    return 0;
}

int pubkey_parse(const char *text, size_t len, ssh_key *out, char *err, size_t errlen)
{
    char blob[BLOB_MAX + 1];
    if (len > PUBKEY_TEXT_MAX || memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "not a public key file (too long or binary)");
        return -1;
    }
    size_t line = first_line(text, len);
    if (!only_blank_after(text, line, len)) {
        snprintf(err, errlen, "more than one line: one key per file");
        return -1;
    }
    if (take_blob(text, line, blob, err, errlen) < 0)
        return -1;
    ssh_key key = NULL;
    if (ssh_pki_import_pubkey_base64(blob, SSH_KEYTYPE_ED25519, &key) != SSH_OK ||
        ssh_key_type(key) != SSH_KEYTYPE_ED25519) {
        ssh_key_free(key);
        snprintf(err, errlen, "the base64 does not hold an ssh-ed25519 key");
        return -1;
    }
    *out = key;
    return 0;
}

int pubkey_file_load(const char *path, ssh_key *out, char *err, size_t errlen)
{
    char *text = NULL, why[128];
    size_t len = 0;
    if (read_file_bounded(path, PUBKEY_TEXT_MAX, &text, &len) < 0) {
        int saved = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    int rc = pubkey_parse(text, len, out, why, sizeof why);
    free(text);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        errno = EINVAL;
    }
    return rc;
}

int pubkey_file_fingerprint(const char *path, char out[FINGERPRINT_LEN], char *err, size_t errlen)
{
    ssh_key key = NULL;
    if (pubkey_file_load(path, &key, err, errlen) < 0)
        return -1;
    int rc = key_fingerprint_sha256(key, out);
    ssh_key_free(key);
    if (rc < 0) {
        snprintf(err, errlen, "%s: no fingerprint", path);
        errno = EINVAL;
    }
    return rc;
}
