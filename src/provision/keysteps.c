#include "provision/keysteps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssh/keygen.h"
#include "ssh/keys.h"

#define ERR_LEN 512

/* Loads the private key at path: 1 with *key and *text (the file as it is),
 * 0 when missing, -1 on error. */
static int load_private(plan *p, runner *r, const char *step, const char *path, ssh_key *key,
                        char **text)
{
    size_t len;
    int rc = plan_read(p, r, step, path, text, &len);
    if (rc <= 0)
        return rc;
    char err[ERR_LEN];
    if (strlen(*text) != len)
        snprintf(err, sizeof err, "not a text file");
    if (strlen(*text) != len || keygen_parse_private(*text, key, err, sizeof err) < 0) {
        keygen_free_secret(*text);
        *text = NULL;
        return plan_fail(p, step, "%s exists but is unusable (%s); move it away to mint a new one",
                         path, err);
    }
    return 1;
}

int keystep_pair(plan *p, runner *r, const char *step, const char *path, const char *comment,
                 mode_t mode, uid_t uid, gid_t gid, ssh_key *out)
{
    ssh_key key = NULL;
    char *text = NULL;
    int have = load_private(p, r, step, path, &key, &text);
    if (have < 0)
        return -1;
    if (have == 0) {
        key = keygen_ed25519();
        text = key ? keygen_private_text(key) : NULL;
        if (text == NULL) {
            ssh_key_free(key);
            return plan_fail(p, step, "ed25519 key generation failed");
        }
    }
    int rc = plan_file(p, r, step, path, text, strlen(text), mode, uid, gid);
    keygen_free_secret(text);
    char pub_path[PATH_BUF], pub_step[128];
    snprintf(pub_step, sizeof pub_step, "%s.pub", step);
    if (rc == 0 && snprintf(pub_path, sizeof pub_path, "%s.pub", path) >= (int)sizeof pub_path)
        rc = plan_fail(p, step, "path %s is too long", path);
    if (rc == 0)
        rc = keystep_public(p, r, pub_step, pub_path, key, comment, 0644, uid, gid);
    if (rc < 0) {
        ssh_key_free(key);
        return -1;
    }
    *out = key;
    return 0;
}

int keystep_public(plan *p, runner *r, const char *step, const char *path, ssh_key key,
                   const char *comment, mode_t mode, uid_t uid, gid_t gid)
{
    char *line = keygen_public_line(key, comment);
    if (line == NULL)
        return plan_fail(p, step, "cannot export a public key");
    int rc = plan_file(p, r, step, path, line, strlen(line), mode, uid, gid);
    free(line);
    return rc;
}

int keystep_authorize(plan *p, runner *r, const char *step, const char *path, ssh_key key,
                      const char *comment, mode_t new_mode)
{
    char *old = NULL, err[ERR_LEN];
    size_t old_len = 0;
    int have = plan_read(p, r, step, path, &old, &old_len);
    if (have < 0)
        return -1;
    runner_stat st;
    if (r->ops->stat_path(r, path, &st, err, sizeof err) < 0) {
        free(old);
        return plan_fail(p, step, "%s", err);
    }
    if (have && keygen_text_has_key(old, key)) {
        free(old);
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    char *line = keygen_public_line(key, comment), *text = NULL;
    bool needs_newline = old_len > 0 && old[old_len - 1] != '\n';
    int n = line ? asprintf(&text, "%s%s%s", have ? old : "", needs_newline ? "\n" : "", line) : -1;
    free(old);
    free(line);
    if (n < 0)
        return plan_fail(p, step, "out of memory");
    /* The owner of an existing file is left alone; a new one belongs to root. */
    int rc = plan_file(p, r, step, path, text, (size_t)n, have ? st.mode : new_mode,
                       have ? KEEP_OWNER : 0, 0);
    free(text);
    return rc;
}

int keystep_read_public(plan *p, runner *r, const char *step, const char *path, ssh_key *out)
{
    char *text = NULL, err[ERR_LEN];
    size_t len;
    int have = plan_read(p, r, step, path, &text, &len);
    if (have <= 0)
        return have;
    int rc = keygen_parse_public(text, out, err, sizeof err);
    free(text);
    if (rc < 0)
        return plan_fail(p, step, "%s: %s", path, err);
    return 1;
}

int keystep_check_pin(plan *p, runner *r, const char *step, const char *path, ssh_key key,
                      bool repin, const char *what)
{
    ssh_key pinned = NULL;
    int have = keystep_read_public(p, r, step, path, &pinned);
    if (have <= 0)
        return have;
    bool same = keygen_same_public(pinned, key);
    char want[FINGERPRINT_LEN], got[FINGERPRINT_LEN];
    key_fingerprint_sha256(pinned, want);
    key_fingerprint_sha256(key, got);
    ssh_key_free(pinned);
    if (same)
        return 0;
    if (repin) {
        printf("  %s: re-pinning %s: %s -> %s\n", step, what, want, got);
        return 0;
    }
    return plan_fail(p, step,
                     "the host key of %s changed: pinned %s, now %s; if the change is "
                     "expected, re-run with --repin",
                     what, want, got);
}

int keystep_pin(plan *p, runner *r, const char *step, const char *path, ssh_key key,
                const char *pin_text, mode_t mode, uid_t uid, gid_t gid)
{
    ssh_key pinned = NULL;
    int have = keystep_read_public(p, r, step, path, &pinned);
    if (have < 0)
        return -1;
    bool same = have == 1 && keygen_same_public(pinned, key);
    ssh_key_free(pinned);
    if (same) {
        /* Same key: only mode and owner may need correcting. */
        char *text = NULL;
        size_t len;
        if (plan_read(p, r, step, path, &text, &len) < 0)
            return -1;
        int rc = plan_file(p, r, step, path, text ? text : "", text ? len : 0, mode, uid, gid);
        free(text);
        return rc;
    }
    return plan_file(p, r, step, path, pin_text, strlen(pin_text), mode, uid, gid);
}
