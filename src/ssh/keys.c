/* authorized_keys parsing, key matching, fingerprints and host key loading. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/addr_pattern.h"
#include "common/fileio.h"
#include "common/log.h"
#include "ssh/auth_options.h"
#include "ssh/keys.h"

#define ED25519_TYPE "ssh-ed25519"
#define KEY_TOKEN_MAX 8192 /* an ed25519 base64 blob is 68 bytes; be generous */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_spaces(const char *p)
{
    while (is_space(*p))
        p++;
    return p;
}

/* Copies the whitespace-delimited token at p into out (bounded) and returns
 * the position after it, or NULL when it does not fit. */
static const char *take_token(const char *p, char *out, size_t size)
{
    size_t n = 0;
    while (*p != '\0' && !is_space(*p)) {
        if (n + 1 >= size)
            return NULL;
        out[n++] = *p++;
    }
    out[n] = '\0';
    return p;
}

/* Key types OpenSSH knows; anything else in first position is options. */
static bool looks_like_key_type(const char *tok)
{
    static const char *const prefixes[] = {"ssh-", "ecdsa-", "sk-", "rsa-", NULL};
    for (size_t i = 0; prefixes[i] != NULL; i++)
        if (strncmp(tok, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* Skips an options field ("restrict,from=\"a b\"") honouring double quotes
 * and backslash escapes inside them, as sshd does. Returns NULL when a quote
 * is left open. */
static const char *skip_options(const char *p)
{
    bool quoted = false;
    for (; *p != '\0'; p++) {
        if (quoted && *p == '\\' && p[1] != '\0') {
            p++;
            continue;
        }
        if (*p == '"')
            quoted = !quoted;
        else if (!quoted && is_space(*p))
            return p;
    }
    return quoted ? NULL : p;
}

static int append_key(authorized_keys *ak, ssh_key key, char *from)
{
    ssh_key *grown = realloc(ak->keys, (ak->count + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    ak->keys = grown;
    char **grown_from = realloc(ak->from, (ak->count + 1) * sizeof *grown_from);
    if (grown_from == NULL)
        return -1;
    ak->from = grown_from;
    ak->keys[ak->count] = key;
    ak->from[ak->count] = from;
    ak->count++;
    return 0;
}

/* The options field [opts, end): 0 with *from set (or NULL), 1 when the
 * line's key is refused (logged), -1 when out of memory. */
static int line_options(const char *path, int lineno, const char *opts, const char *end,
                        char **from)
{
    char why[256];
    *from = NULL;
    if (opts == NULL)
        return 0;
    switch (auth_options_parse(opts, (size_t)(end - opts), from, why, sizeof why)) {
    case AUTH_OPTIONS_OK:
        return 0;
    case AUTH_OPTIONS_REFUSED:
        log_warn("%s:%d: %s; key refused", path, lineno, why);
        return 1;
    default:
        return -1;
    }
}

/* Parses one line; adds its key when it is a valid ed25519 entry whose
 * options we honour. Returns -1 only on allocation failure; malformed,
 * foreign or refused lines are logged. */
static int parse_line(const char *path, int lineno, const char *line, authorized_keys *ak)
{
    char type[128];
    char *blob = NULL, *from = NULL;
    ssh_key key = NULL;
    int rc = 0;

    const char *p = skip_spaces(line), *opts = NULL, *opts_end = NULL;
    if (*p == '\0' || *p == '#')
        return 0;
    const char *after = take_token(p, type, sizeof type);
    if (after == NULL || !looks_like_key_type(type)) {
        opts = p;
        opts_end = skip_options(p);
        if (opts_end == NULL ||
            (after = take_token(skip_spaces(opts_end), type, sizeof type)) == NULL) {
            log_warn("%s:%d: malformed entry ignored", path, lineno);
            return 0;
        }
    }
    if (strcmp(type, ED25519_TYPE) != 0) {
        log_info("%s:%d: %s key ignored (only ssh-ed25519 is accepted)", path, lineno, type);
        return 0;
    }
    int opt = line_options(path, lineno, opts, opts_end, &from);
    if (opt != 0)
        return opt < 0 ? -1 : 0;
    blob = malloc(KEY_TOKEN_MAX);
    if (blob == NULL) {
        rc = -1;
        goto out;
    }
    if (take_token(skip_spaces(after), blob, KEY_TOKEN_MAX) == NULL || blob[0] == '\0' ||
        ssh_pki_import_pubkey_base64(blob, SSH_KEYTYPE_ED25519, &key) != SSH_OK ||
        ssh_key_type(key) != SSH_KEYTYPE_ED25519) {
        log_warn("%s:%d: unreadable ssh-ed25519 key ignored", path, lineno);
        goto out;
    }
    if (ak->count >= AUTH_KEYS_MAX_ENTRIES) {
        log_warn("%s:%d: more than %d keys; the rest are ignored", path, lineno,
                 AUTH_KEYS_MAX_ENTRIES);
        goto out;
    }
    if (append_key(ak, key, from) < 0) {
        rc = -1;
        goto out;
    }
    key = NULL; /* now owned by ak, and from with it */
    from = NULL;
out:
    ssh_key_free(key);
    free(from);
    free(blob);
    return rc;
}

int authorized_keys_load(const char *path, authorized_keys *out, char *err, size_t errlen)
{
    char *text = NULL;
    authorized_keys ak = {0};

    if (read_file_bounded(path, AUTH_KEYS_MAX_BYTES, &text, NULL) < 0) {
        if (errno == ENOENT) {
            log_warn("%s does not exist: no key is allowed", path);
            *out = ak;
            return 0;
        }
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int lineno = 0;
    char *line = text;
    while (line != NULL) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[len - 1] = '\0';
        if (parse_line(path, lineno, line, &ak) < 0) {
            snprintf(err, errlen, "out of memory reading %s", path);
            authorized_keys_clear(&ak);
            free(text);
            return -1;
        }
        line = next;
    }
    free(text);
    *out = ak;
    return 0;
}

void authorized_keys_clear(authorized_keys *ak)
{
    for (size_t i = 0; i < ak->count; i++) {
        ssh_key_free(ak->keys[i]);
        free(ak->from[i]);
    }
    free(ak->keys);
    free(ak->from);
    ak->keys = NULL;
    ak->from = NULL;
    ak->count = 0;
}

enum auth_keys_verdict authorized_keys_check(const authorized_keys *ak, const ssh_key offered,
                                             const char *ip)
{
    enum auth_keys_verdict verdict = AUTH_KEYS_NOT_LISTED;
    if (offered == NULL || ssh_key_type(offered) != SSH_KEYTYPE_ED25519)
        return verdict;
    /* A key may be listed more than once: any entry that allows the
     * source lets it in. */
    for (size_t i = 0; i < ak->count; i++) {
        if (ssh_key_cmp(ak->keys[i], offered, SSH_KEY_CMP_PUBLIC) != 0)
            continue;
        if (ak->from[i] == NULL || (ip != NULL && addr_pattern_match(ak->from[i], ip)))
            return AUTH_KEYS_ALLOWED;
        verdict = AUTH_KEYS_WRONG_SOURCE;
    }
    return verdict;
}

int key_fingerprint_sha256(const ssh_key key, char out[FINGERPRINT_LEN])
{
    unsigned char *hash = NULL;
    size_t hlen = 0;
    char *text = NULL;
    int rc = -1;

    snprintf(out, FINGERPRINT_LEN, "SHA256:?");
    if (key == NULL ||
        ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != SSH_OK)
        goto out;
    /* libssh formats it the OpenSSH way: "SHA256:" and unpadded base64. */
    text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    if (text == NULL || strlen(text) >= FINGERPRINT_LEN)
        goto out;
    snprintf(out, FINGERPRINT_LEN, "%s", text);
    rc = 0;
out:
    ssh_string_free_char(text);
    ssh_clean_pubkey_hash(&hash);
    return rc;
}

int host_key_load(const char *path, ssh_key *out, char *err, size_t errlen)
{
    ssh_key key = NULL;
    struct stat st;

    if (stat(path, &st) < 0) {
        int saved = errno;
        snprintf(err, errlen, "host key %s: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
        snprintf(err, errlen, "host key %s cannot be read (not an OpenSSH private key?)", path);
        errno = EINVAL;
        return -1;
    }
    if (ssh_key_type(key) != SSH_KEYTYPE_ED25519) {
        snprintf(err, errlen, "host key %s is %s; only ssh-ed25519 is accepted", path,
                 ssh_key_type_to_char(ssh_key_type(key)));
        ssh_key_free(key);
        errno = EINVAL;
        return -1;
    }
    *out = key;
    return 0;
}
