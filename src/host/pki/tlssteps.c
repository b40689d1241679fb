#include "host/pki/tlssteps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/pki/rsyslog_conf.h"

#define ERR_LEN 512
#define CERT_MODE 0644
#define KEY_MODE 0600
#define SHARED_MODE 0640
#define TLS_DIR_MODE 0750

void tlsstep_access(runner *r, tls_access *a)
{
    gid_t gid;
    *a = (tls_access){
        .gid = 0, .dir_mode = TLS_DIR_MODE, .cert_mode = CERT_MODE, .key_mode = KEY_MODE};
    if (r->ops->lookup_group(r, RSYSLOG_READER_GROUP, &gid) == 0) {
        a->gid = gid;
        a->cert_mode = SHARED_MODE;
        a->key_mode = SHARED_MODE;
    }
}

/* Reads a PEM file on the target: 1 with *out, 0 when missing, -1 when
 * unreadable or not text (reported under step). */
static int read_pem(plan *p, runner *r, const char *step, const char *path, char **out)
{
    size_t len = 0;
    int have = plan_read(p, r, step, path, out, &len);
    if (have <= 0)
        return have;
    if (len > CA_PEM_MAX || strlen(*out) != len) {
        explicit_bzero(*out, len);
        free(*out);
        *out = NULL;
        return plan_fail(p, step, "%s is not a PEM file of at most %d bytes", path, CA_PEM_MAX);
    }
    return 1;
}

static int read_pair(plan *p, runner *r, const char *step, const char *cert_path,
                     const char *key_path, ca_pair *out, int *have_cert, int *have_key)
{
    *out = (ca_pair){0};
    *have_key = read_pem(p, r, step, key_path, &out->key);
    if (*have_key < 0)
        return -1;
    *have_cert = read_pem(p, r, step, cert_path, &out->cert);
    if (*have_cert < 0) {
        ca_pair_clear(out);
        return -1;
    }
    return 0;
}

/* The key first: a run cut short between the two writes leaves a key
 * without its certificate, which the next run completes. */
static int write_pair(plan *p, runner *r, const char *step, const ca_pair *pair,
                      const char *cert_path, const char *key_path, const tls_access *cert_access,
                      const tls_access *key_access)
{
    char key_step[128], cert_step[128];
    snprintf(key_step, sizeof key_step, "%s key", step);
    snprintf(cert_step, sizeof cert_step, "%s certificate", step);
    if (plan_file(p, r, key_step, key_path, pair->key, strlen(pair->key), key_access->key_mode, 0,
                  key_access->gid) < 0)
        return -1;
    return plan_file(p, r, cert_step, cert_path, pair->cert, strlen(pair->cert),
                     cert_access->cert_mode, 0, cert_access->gid);
}

int tlsstep_check_ca(plan *p, const char *step, const ca_pair *ca)
{
    char err[ERR_LEN];
    if (ca_check_ca_cert(ca->cert, err, sizeof err) < 0 ||
        ca_key_matches(ca->cert, ca->key, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    return 0;
}

/* Fills in what is missing of a CA, or refuses; 0 with a usable *ca. */
static int complete_ca(plan *p, const char *step, const char *cert_path, const char *key_path,
                       int have_cert, int have_key, ca_pair *ca)
{
    char err[ERR_LEN];
    if (!have_key && !have_cert) {
        if (ca_mint(TLS_CA_NAME, ca, err, sizeof err) < 0)
            return plan_fail(p, step, "%s", err);
        return 0;
    }
    if (!have_key)
        return plan_fail(p, step,
                         "%s exists but %s is missing; restore the key, or move the "
                         "certificate away to mint a new CA (every agent must then be "
                         "initialised again)",
                         cert_path, key_path);
    if (!have_cert) {
        if (ca_remint_cert(TLS_CA_NAME, ca->key, &ca->cert, err, sizeof err) < 0)
            return plan_fail(p, step, "%s: %s", key_path, err);
        return 0;
    }
    if (ca_check_ca_cert(ca->cert, err, sizeof err) < 0 ||
        ca_key_matches(ca->cert, ca->key, err, sizeof err) < 0)
        return plan_fail(p, step, "%s and %s are unusable (%s); move them away to mint a new CA",
                         cert_path, key_path, err);
    return 0;
}

int tlsstep_ca(plan *p, runner *r, const char *cert_path, const char *key_path, const tls_access *a,
               ca_pair *ca)
{
    const char *step = "rsyslog CA";
    /* The CA's key signs every agent's certificate: root's alone, even
     * where rsyslog may read the rest of the directory. */
    const tls_access root_only = {.key_mode = KEY_MODE};
    int have_cert, have_key;
    if (read_pair(p, r, step, cert_path, key_path, ca, &have_cert, &have_key) < 0)
        return -1;
    if (complete_ca(p, step, cert_path, key_path, have_cert, have_key, ca) < 0 ||
        write_pair(p, r, step, ca, cert_path, key_path, a, &root_only) < 0) {
        ca_pair_clear(ca);
        return -1;
    }
    return 0;
}

int tlsstep_load_ca(plan *p, runner *r, const char *step, const char *cert_path,
                    const char *key_path, const char *hint, ca_pair *ca)
{
    int have_cert, have_key;
    if (read_pair(p, r, step, cert_path, key_path, ca, &have_cert, &have_key) < 0)
        return -1;
    int rc = 0;
    if (!have_cert || !have_key)
        rc = plan_fail(p, step, "%s%s is missing; %s", r->root, have_cert ? key_path : cert_path,
                       hint);
    else
        rc = tlsstep_check_ca(p, step, ca);
    if (rc < 0)
        ca_pair_clear(ca);
    return rc;
}

int tlsstep_leaf(plan *p, runner *r, const char *step, const ca_pair *ca,
                 const ca_leaf_request *req, const char *cert_path, const char *key_path,
                 const tls_access *a)
{
    char err[ERR_LEN];
    ca_pair leaf;
    int have_cert, have_key;
    if (read_pair(p, r, step, cert_path, key_path, &leaf, &have_cert, &have_key) < 0)
        return -1;
    bool keep = have_cert && have_key &&
                ca_leaf_is_current(ca->cert, &leaf, req->kind, req->cn, err, sizeof err) == 0;
    if (!keep && have_cert && have_key)
        printf("  %s: re-issuing: %s\n", step, err);
    if (!keep) {
        ca_pair_clear(&leaf);
        if (ca_issue(ca, req, &leaf, err, sizeof err) < 0)
            return plan_fail(p, step, "%s", err);
    }
    int rc = write_pair(p, r, step, &leaf, cert_path, key_path, a, a);
    ca_pair_clear(&leaf);
    return rc;
}
