/* The cluster CA with OpenSSL 3's libcrypto. Every key is ECDSA P-256 and
 * every signature SHA-256 (SPEC 13); serials are 128 random bits so two
 * certificates of one CA never share one, even across re-issues. Each
 * function owns its OpenSSL objects and frees them on one path at its end. */
#include "host/pki/ca.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CURVE_NAME "prime256v1" /* OpenSSL's name for P-256 */
#define SERIAL_BYTES 16
#define CN_MAX 64 /* RFC 5280 ub-common-name */
#define ORG_NAME "convocate"
/* notBefore is set a little in the past so that a target whose clock runs
 * slightly behind ours accepts a certificate minted a moment ago. */
#define BACKDATE_SECONDS (60 * 60)

/* ---- errors -------------------------------------------------------------- */

/* Formats the message and, when OpenSSL queued a reason, appends it; the
 * queue is emptied either way so that a later message is not blamed on an
 * old failure. Returns -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    unsigned long code = ERR_peek_last_error();
    if (code != 0 && n >= 0 && (size_t)n < errlen) {
        char why[256];
        ERR_error_string_n(code, why, sizeof why);
        snprintf(err + n, errlen - (size_t)n, " (%s)", why);
    }
    ERR_clear_error();
    return -1;
}

/* ---- input validation ---------------------------------------------------- */

static bool pem_is_bounded(const char *pem)
{
    return pem != NULL && strnlen(pem, CA_PEM_MAX + 1) <= CA_PEM_MAX;
}

bool ca_is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return s != NULL && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

/* A host name as it may appear in a subjectAltName: letters, digits, dots
 * and hyphens only, so that nothing can splice another entry into the
 * extension's text form. */
static bool dns_name_is_valid(const char *s)
{
    size_t n = strnlen(s, CA_NAME_MAX + 1);
    if (n == 0 || n > CA_NAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

/* A CN is an agent id, a host name, an address or the CA's label. */
static bool cn_is_valid(const char *s)
{
    size_t n = strnlen(s, CN_MAX + 1);
    if (n == 0 || n > CN_MAX)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-_ ") == n;
}

/* ---- PEM in and out ------------------------------------------------------- */

static X509 *cert_from_pem(const char *pem, char *err, size_t errlen)
{
    if (!pem_is_bounded(pem)) {
        fail(err, errlen, "certificate is missing or larger than %d bytes", CA_PEM_MAX);
        return NULL;
    }
    X509 *x = NULL;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL || (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
        fail(err, errlen, "not a PEM certificate");
    BIO_free(bio);
    return x;
}

/* Refuses to prompt: our keys are never encrypted, and a provisioning run
 * must not stop at a passphrase prompt. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static EVP_PKEY *key_from_pem(const char *pem, char *err, size_t errlen)
{
    if (!pem_is_bounded(pem)) {
        fail(err, errlen, "key is missing or larger than %d bytes", CA_PEM_MAX);
        return NULL;
    }
    EVP_PKEY *key = NULL;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL || (key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)) == NULL)
        fail(err, errlen, "not an unencrypted PEM private key");
    BIO_free(bio);
    return key;
}

/* Copies a memory BIO's content into a NUL-terminated malloc'd string. */
static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || len > CA_PEM_MAX)
        return NULL;
    char *out = malloc((size_t)len + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, data, (size_t)len);
    out[len] = '\0';
    return out;
}

static char *cert_to_pem(X509 *x, char *err, size_t errlen)
{
    char *out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio != NULL && PEM_write_bio_X509(bio, x) == 1)
        out = bio_to_string(bio);
    if (out == NULL)
        fail(err, errlen, "cannot encode the certificate");
    BIO_free(bio);
    return out;
}

static char *key_to_pem(EVP_PKEY *key, char *err, size_t errlen)
{
    char *out = NULL;
    /* The secure-memory BIO clears its buffer when freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    if (bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1)
        out = bio_to_string(bio);
    if (out == NULL)
        fail(err, errlen, "cannot encode the private key");
    BIO_free(bio);
    return out;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void ca_pair_clear(ca_pair *p)
{
    free(p->cert);
    free_secret(p->key);
    p->cert = NULL;
    p->key = NULL;
}

/* ---- building blocks ------------------------------------------------------ */

static bool key_is_p256(EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;
    return EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &len) == 1 &&
           strcmp(group, CURVE_NAME) == 0;
}

static EVP_PKEY *new_p256_key(char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL)
        fail(err, errlen, "ECDSA P-256 key generation failed");
    return key;
}

/* 128 random bits with the top bit clear: a positive INTEGER of at most
 * 16 octets, as RFC 5280 asks, and never zero. */
static int set_random_serial(X509 *x, char *err, size_t errlen)
{
    unsigned char bytes[SERIAL_BYTES];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return fail(err, errlen, "no random bytes for a serial");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01 << 6; /* never zero, always the full length */
    int rc = -1;
    BIGNUM *bn = BN_bin2bn(bytes, sizeof bytes, NULL);
    ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (serial != NULL && X509_set_serialNumber(x, serial) == 1)
        rc = 0;
    else
        fail(err, errlen, "cannot set the serial");
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

/* notBefore a little in the past; notAfter days ahead, and never beyond the
 * issuer's own end (a leaf that outlives its CA would fail anyway). */
static int set_validity(X509 *x, long days, X509 *issuer, char *err, size_t errlen)
{
    if (X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) == NULL)
        return fail(err, errlen, "cannot set the validity");
    if (issuer != NULL &&
        ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0 &&
        X509_set1_notAfter(x, X509_get0_notAfter(issuer)) != 1)
        return fail(err, errlen, "cannot set the validity");
    return 0;
}

static int set_subject(X509 *x, const char *cn, char *err, size_t errlen)
{
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)ORG_NAME, -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1)
        return fail(err, errlen, "cannot set the subject name");
    return 0;
}

/* One extension from its OpenSSL text form; issuer is the signing CA (the
 * certificate itself when self-signed) so that the key identifiers link. */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value, char *err, size_t errlen)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int rc = ext != NULL && X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
    X509_EXTENSION_free(ext);
    if (rc < 0)
        return fail(err, errlen, "cannot add the extension %s = %s", OBJ_nid2sn(nid), value);
    return 0;
}

/* A v3 certificate with serial, validity, subject and public key; issuer
 * NULL means self-signed. */
static X509 *new_cert(const char *cn, EVP_PKEY *key, X509 *issuer, long days, char *err,
                      size_t errlen)
{
    X509 *x = X509_new();
    if (x == NULL) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    X509_NAME *issuer_name = issuer ? X509_get_subject_name(issuer) : NULL;
    int rc = set_random_serial(x, err, errlen);
    if (rc == 0)
        rc = set_validity(x, days, issuer, err, errlen);
    if (rc == 0)
        rc = set_subject(x, cn, err, errlen);
    if (rc == 0 &&
        (X509_set_version(x, X509_VERSION_3) != 1 ||
         X509_set_issuer_name(x, issuer_name ? issuer_name : X509_get_subject_name(x)) != 1 ||
         X509_set_pubkey(x, key) != 1))
        rc = fail(err, errlen, "cannot fill in the certificate");
    if (rc < 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int sign_sha256(X509 *x, EVP_PKEY *signer, char *err, size_t errlen)
{
    if (X509_sign(x, signer, EVP_sha256()) <= 0)
        return fail(err, errlen, "signing failed");
    return 0;
}

/* ---- the CA ---------------------------------------------------------------- */

static X509 *build_ca_cert(const char *cn, EVP_PKEY *key, char *err, size_t errlen)
{
    X509 *x = new_cert(cn, key, NULL, CA_VALIDITY_DAYS, err, errlen);
    if (x == NULL)
        return NULL;
    if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE", err, errlen) < 0 ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign", err, errlen) < 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash", err, errlen) < 0 ||
        add_ext(x, x, NID_authority_key_identifier, "keyid:always", err, errlen) < 0 ||
        sign_sha256(x, key, err, errlen) < 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int ca_mint(const char *cn, ca_pair *out, char *err, size_t errlen)
{
    *out = (ca_pair){0};
    if (cn == NULL || !cn_is_valid(cn))
        return fail(err, errlen, "invalid CA name");
    int rc = -1;
    X509 *x = NULL;
    EVP_PKEY *key = new_p256_key(err, errlen);
    if (key != NULL && (x = build_ca_cert(cn, key, err, errlen)) != NULL &&
        (out->cert = cert_to_pem(x, err, errlen)) != NULL &&
        (out->key = key_to_pem(key, err, errlen)) != NULL)
        rc = 0;
    if (rc < 0)
        ca_pair_clear(out);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

int ca_remint_cert(const char *cn, const char *key_pem, char **cert_out, char *err, size_t errlen)
{
    *cert_out = NULL;
    if (cn == NULL || !cn_is_valid(cn))
        return fail(err, errlen, "invalid CA name");
    X509 *x = NULL;
    EVP_PKEY *key = key_from_pem(key_pem, err, errlen);
    if (key != NULL && !key_is_p256(key))
        fail(err, errlen, "the CA key is not ECDSA P-256");
    else if (key != NULL && (x = build_ca_cert(cn, key, err, errlen)) != NULL)
        *cert_out = cert_to_pem(x, err, errlen);
    X509_free(x);
    EVP_PKEY_free(key);
    return *cert_out ? 0 : -1;
}

/* RFC 5280 wants basicConstraints marked critical in a CA certificate. */
static bool ca_constraint_is_critical(X509 *x)
{
    int critical = 0;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &critical, NULL);
    bool ok = bc != NULL && bc->ca && critical == 1;
    BASIC_CONSTRAINTS_free(bc);
    return ok;
}

int ca_check_ca_cert(const char *cert_pem, char *err, size_t errlen)
{
    X509 *x = cert_from_pem(cert_pem, err, errlen);
    if (x == NULL)
        return -1;
    int rc = -1;
    EVP_PKEY *pub = X509_get0_pubkey(x);
    /* X509_check_ca is 1 only for a v3 CA with CA:TRUE (and keyCertSign
     * when keyUsage is present). */
    if (X509_check_ca(x) != 1 || !ca_constraint_is_critical(x) ||
        !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))
        fail(err, errlen, "not a CA certificate (needs CA:TRUE and keyCertSign)");
    else if (X509_self_signed(x, 1) != 1)
        fail(err, errlen, "the CA certificate is not self-signed");
    else if (pub == NULL || !key_is_p256(pub))
        fail(err, errlen, "the CA key is not ECDSA P-256");
    else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0 ||
             X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        fail(err, errlen, "the CA certificate is not valid at this time");
    else
        rc = 0;
    X509_free(x);
    return rc;
}

/* ---- leaves ---------------------------------------------------------------- */

static int add_leaf_exts(X509 *x, X509 *ca, const ca_leaf_request *req, char *err, size_t errlen)
{
    const char *eku = req->kind == CA_LEAF_SERVER ? "serverAuth" : "clientAuth";
    if (add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE", err, errlen) < 0 ||
        add_ext(x, ca, NID_key_usage, "critical,digitalSignature", err, errlen) < 0 ||
        add_ext(x, ca, NID_ext_key_usage, eku, err, errlen) < 0 ||
        add_ext(x, ca, NID_subject_key_identifier, "hash", err, errlen) < 0 ||
        add_ext(x, ca, NID_authority_key_identifier, "keyid:always", err, errlen) < 0)
        return -1;
    if (req->san_dns == NULL && req->san_ip == NULL)
        return 0;
    char san[2 * CA_NAME_MAX + 16];
    snprintf(san, sizeof san, "%s%s%s%s%s", req->san_dns ? "DNS:" : "",
             req->san_dns ? req->san_dns : "", req->san_dns && req->san_ip ? "," : "",
             req->san_ip ? "IP:" : "", req->san_ip ? req->san_ip : "");
    return add_ext(x, ca, NID_subject_alt_name, san, err, errlen);
}

static int check_request(const ca_leaf_request *req, char *err, size_t errlen)
{
    if (req->cn == NULL || !cn_is_valid(req->cn))
        return fail(err, errlen, "invalid certificate name");
    if (req->san_dns != NULL && !dns_name_is_valid(req->san_dns))
        return fail(err, errlen, "invalid DNS name \"%.64s\"", req->san_dns);
    if (req->san_ip != NULL && !ca_is_ip_literal(req->san_ip))
        return fail(err, errlen, "invalid IP address \"%.64s\"", req->san_ip);
    if (req->kind == CA_LEAF_SERVER && req->san_dns == NULL && req->san_ip == NULL)
        return fail(err, errlen, "a server certificate needs a DNS name or an address");
    return 0;
}

int ca_issue(const ca_pair *ca, const ca_leaf_request *req, ca_pair *out, char *err, size_t errlen)
{
    *out = (ca_pair){0};
    if (check_request(req, err, errlen) < 0)
        return -1;
    int rc = -1;
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    X509 *ca_cert = cert_from_pem(ca->cert, err, errlen);
    EVP_PKEY *ca_key = ca_cert ? key_from_pem(ca->key, err, errlen) : NULL;
    if (ca_key == NULL)
        goto done;
    if (EVP_PKEY_eq(X509_get0_pubkey(ca_cert), ca_key) != 1) {
        fail(err, errlen, "the CA key does not belong to the CA certificate");
        goto done;
    }
    if ((key = new_p256_key(err, errlen)) == NULL ||
        (leaf = new_cert(req->cn, key, ca_cert, CA_LEAF_VALIDITY_DAYS, err, errlen)) == NULL ||
        add_leaf_exts(leaf, ca_cert, req, err, errlen) < 0 ||
        sign_sha256(leaf, ca_key, err, errlen) < 0)
        goto done;
    if ((out->cert = cert_to_pem(leaf, err, errlen)) != NULL &&
        (out->key = key_to_pem(key, err, errlen)) != NULL)
        rc = 0;
done:
    if (rc < 0)
        ca_pair_clear(out);
    X509_free(leaf);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(ca_cert);
    return rc;
}

/* ---- checks ---------------------------------------------------------------- */

int ca_verify_chain(const char *ca_cert_pem, const char *cert_pem, ca_leaf_kind kind, char *err,
                    size_t errlen)
{
    int rc = -1;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    X509 *ca = cert_from_pem(ca_cert_pem, err, errlen);
    X509 *leaf = ca ? cert_from_pem(cert_pem, err, errlen) : NULL;
    if (leaf == NULL)
        goto done;
    if ((store = X509_STORE_new()) == NULL || X509_STORE_add_cert(store, ca) != 1 ||
        (ctx = X509_STORE_CTX_new()) == NULL || X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, kind == CA_LEAF_SERVER ? X509_PURPOSE_SSL_SERVER
                                                               : X509_PURPOSE_SSL_CLIENT) != 1) {
        fail(err, errlen, "cannot set up the verification");
        goto done;
    }
    if (X509_verify_cert(ctx) == 1)
        rc = 0;
    else
        fail(err, errlen, "does not verify against the CA: %s",
             X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
done:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(leaf);
    X509_free(ca);
    return rc;
}

int ca_key_matches(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
    int rc = -1;
    X509 *x = cert_from_pem(cert_pem, err, errlen);
    EVP_PKEY *key = x ? key_from_pem(key_pem, err, errlen) : NULL;
    if (key != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1)
        rc = 0;
    else if (key != NULL)
        fail(err, errlen, "the key does not belong to the certificate");
    EVP_PKEY_free(key);
    X509_free(x);
    return rc;
}

static int cn_of(X509 *x, char *out, size_t size, char *err, size_t errlen)
{
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    X509_NAME_ENTRY *e = i >= 0 ? X509_NAME_get_entry(name, i) : NULL;
    unsigned char *utf8 = NULL;
    int n = e ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e)) : -1;
    int rc = -1;
    if (n <= 0 || (size_t)n >= size || memchr(utf8, '\0', (size_t)n) != NULL)
        fail(err, errlen, "the certificate has no usable CN");
    else {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
        rc = 0;
    }
    OPENSSL_free(utf8);
    return rc;
}

int ca_cert_cn(const char *cert_pem, char *out, size_t size, char *err, size_t errlen)
{
    X509 *x = cert_from_pem(cert_pem, err, errlen);
    int rc = x ? cn_of(x, out, size, err, errlen) : -1;
    X509_free(x);
    return rc;
}

static int check_not_expiring(const char *cert_pem, char *err, size_t errlen)
{
    X509 *x = cert_from_pem(cert_pem, err, errlen);
    if (x == NULL)
        return -1;
    time_t horizon = time(NULL) + (time_t)CA_RENEW_BEFORE_DAYS * 24 * 60 * 60;
    int rc = X509_cmp_time(X509_get0_notAfter(x), &horizon) > 0 ? 0 : -1;
    X509_free(x);
    if (rc < 0)
        return fail(err, errlen, "the certificate ends within %d days", CA_RENEW_BEFORE_DAYS);
    return 0;
}

int ca_leaf_is_current(const char *ca_cert_pem, const ca_pair *leaf, ca_leaf_kind kind,
                       const char *cn, char *err, size_t errlen)
{
    char have[CN_MAX + 1];
    if (ca_verify_chain(ca_cert_pem, leaf->cert, kind, err, errlen) < 0 ||
        ca_key_matches(leaf->cert, leaf->key, err, errlen) < 0 ||
        ca_cert_cn(leaf->cert, have, sizeof have, err, errlen) < 0)
        return -1;
    if (strcmp(have, cn) != 0)
        return fail(err, errlen, "the certificate is for \"%s\", not \"%s\"", have, cn);
    return check_not_expiring(leaf->cert, err, errlen);
}
