#include "ssh/keygen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/paths.h"

#define B64_MAX 256 /* an ed25519 public blob is 68 base64 characters */

ssh_key keygen_ed25519(void)
{
    ssh_key key = NULL;
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK)
        return NULL;
    return key;
}

char *keygen_private_text(ssh_key key)
{
    char *b64 = NULL;
    if (ssh_pki_export_privkey_base64(key, NULL, NULL, NULL, &b64) != SSH_OK)
        return NULL;
    /* Copy into our own allocation so every secret has one free path. */
    char *text = strdup(b64);
    explicit_bzero(b64, strlen(b64));
    ssh_string_free_char(b64);
    return text;
}

void keygen_free_secret(char *text)
{
    if (text == NULL)
        return;
    explicit_bzero(text, strlen(text));
    free(text);
}

char *keygen_public_line(ssh_key key, const char *comment)
{
    char *b64 = NULL, *line = NULL;
    if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
        return NULL;
    const char *type = ssh_key_type_to_char(ssh_key_type(key));
    int n = comment && *comment ? asprintf(&line, "%s %s %s\n", type, b64, comment)
                                : asprintf(&line, "%s %s\n", type, b64);
    if (n < 0)
        line = NULL;
    ssh_string_free_char(b64);
    return line;
}

int keygen_write_pair(ssh_key key, const char *path, const char *comment, mode_t mode, uid_t uid,
                      gid_t gid, char *err, size_t errlen)
{
    char pub_path[PATH_BUF];
    if (snprintf(pub_path, sizeof pub_path, "%s.pub", path) >= (int)sizeof pub_path) {
        snprintf(err, errlen, "path %s is too long", path);
        return -1;
    }
    char *priv = keygen_private_text(key);
    char *pub = keygen_public_line(key, comment);
    int rc = -1;
    if (priv == NULL || pub == NULL) {
        snprintf(err, errlen, "cannot export the key for %s", path);
        goto out;
    }
    if (atomic_write_file(path, priv, strlen(priv), mode, uid, gid) < 0) {
        snprintf(err, errlen, "write %s: %s", path, strerror(errno));
        goto out;
    }
    if (atomic_write_file(pub_path, pub, strlen(pub), 0644, uid, gid) < 0) {
        snprintf(err, errlen, "write %s: %s", pub_path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    keygen_free_secret(priv);
    free(pub);
    return rc;
}

int keygen_parse_private(const char *text, ssh_key *out, char *err, size_t errlen)
{
    ssh_key key = NULL;
    if (ssh_pki_import_privkey_base64(text, NULL, NULL, NULL, &key) != SSH_OK) {
        snprintf(err, errlen, "not a readable unencrypted private key");
        return -1;
    }
    if (ssh_key_type(key) != SSH_KEYTYPE_ED25519) {
        ssh_key_free(key);
        snprintf(err, errlen, "not an ed25519 key");
        return -1;
    }
    *out = key;
    return 0;
}

/* Finds "ssh-ed25519 <b64>" in one line, tolerating authorized_keys options
 * before it. Copies the base64 token into b64; false when there is none. */
static bool find_ed25519_blob(const char *line, size_t len, char b64[B64_MAX])
{
    static const char type[] = "ssh-ed25519 ";
    for (size_t i = 0; i + sizeof type - 1 < len; i++) {
        if (memcmp(line + i, type, sizeof type - 1) != 0 || (i > 0 && line[i - 1] != ' '))
            continue;
        size_t start = i + sizeof type - 1;
        while (start < len && line[start] == ' ')
            start++;
        size_t n = 0;
        while (start + n < len && line[start + n] != ' ' && line[start + n] != '\t' &&
               line[start + n] != '\r')
            n++;
        if (n == 0 || n >= B64_MAX)
            return false;
        memcpy(b64, line + start, n);
        b64[n] = '\0';
        return true;
    }
    return false;
}

static int parse_line(const char *line, size_t len, ssh_key *out)
{
    char b64[B64_MAX];
    if (line[0] == '#' || !find_ed25519_blob(line, len, b64))
        return -1;
    return ssh_pki_import_pubkey_base64(b64, SSH_KEYTYPE_ED25519, out) == SSH_OK ? 0 : -1;
}

int keygen_parse_public(const char *text, ssh_key *out, char *err, size_t errlen)
{
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, "\n");
        if (parse_line(p, len, out) == 0)
            return 0;
        p += len;
        if (*p == '\n')
            p++;
    }
    snprintf(err, errlen, "no ssh-ed25519 public key found");
    return -1;
}

int keygen_read_public(const char *path, ssh_key *out, char *err, size_t errlen)
{
    char *text = NULL;
    if (read_file_bounded(path, KEYGEN_MAX_KEY_FILE, &text, NULL) < 0) {
        int saved = errno;
        snprintf(err, errlen, "read %s: %s", path, strerror(errno));
        errno = saved;
        return -1;
    }
    char why[128];
    int rc = keygen_parse_public(text, out, why, sizeof why);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        errno = EINVAL;
    }
    free(text);
    return rc;
}

bool keygen_same_public(ssh_key a, ssh_key b)
{
    return a != NULL && b != NULL && ssh_key_cmp(a, b, SSH_KEY_CMP_PUBLIC) == 0;
}

bool keygen_text_has_key(const char *text, ssh_key key)
{
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, "\n");
        ssh_key candidate = NULL;
        if (parse_line(p, len, &candidate) == 0) {
            bool same = keygen_same_public(candidate, key);
            ssh_key_free(candidate);
            if (same)
                return true;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return false;
}
