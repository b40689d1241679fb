/* The cluster CA for the log channel (SPEC 11, 13): an ECDSA P-256 CA that
 * signs one server certificate for the shell's rsyslog and one client
 * certificate per agent (CN = agent id). Everything is PEM in memory; the
 * caller writes it through a runner. The check functions decide whether
 * files already on a target can be kept, which is what makes the
 * provisioning steps idempotent. */
#ifndef CONVOCATE_HOST_PKI_CA_H
#define CONVOCATE_HOST_PKI_CA_H

#include <stdbool.h>
#include <stddef.h>

/* Bounds on what we accept: a certificate or key file larger than this is
 * not one of ours. */
#define CA_PEM_MAX 16384
#define CA_NAME_MAX 253 /* a DNS name or an address literal */
#define CA_VALIDITY_DAYS 3650
#define CA_LEAF_VALIDITY_DAYS 1825
/* A leaf closer than this to its end is re-issued by the next run. */
#define CA_RENEW_BEFORE_DAYS 30

typedef struct {
    char *cert; /* PEM, NUL-terminated */
    char *key;  /* PEM (PKCS#8, unencrypted), NUL-terminated; wiped on free */
} ca_pair;

typedef enum { CA_LEAF_SERVER, CA_LEAF_CLIENT } ca_leaf_kind;

typedef struct {
    ca_leaf_kind kind;
    const char *cn; /* server: the shell's name or address; client: the agent id */
    /* subjectAltName: dns and/or ip (NULL for none). A server certificate
     * carries at least one of them. */
    const char *san_dns;
    const char *san_ip;
} ca_leaf_request;

void ca_pair_clear(ca_pair *p);

/* A new CA key and its self-signed certificate (CN = cn). */
int ca_mint(const char *cn, ca_pair *out, char *err, size_t errlen);

/* A new self-signed CA certificate for an existing CA key: recovers a CA
 * whose certificate was lost before it was written (the key is written
 * first); certificates it issued still chain, since subject and key are
 * the same. */
int ca_remint_cert(const char *cn, const char *key_pem, char **cert_out, char *err, size_t errlen);

/* A new leaf key and certificate signed by the CA. */
int ca_issue(const ca_pair *ca, const ca_leaf_request *req, ca_pair *out, char *err, size_t errlen);

/* 0 when cert_pem is a CA certificate (CA:TRUE, keyCertSign, self-signed,
 * ECDSA P-256) valid now; -1 with the reason otherwise. */
int ca_check_ca_cert(const char *cert_pem, char *err, size_t errlen);

/* 0 when cert_pem verifies against ca_cert_pem as its only trust anchor, at
 * the current time, for the given purpose; -1 with the reason otherwise. */
int ca_verify_chain(const char *ca_cert_pem, const char *cert_pem, ca_leaf_kind kind, char *err,
                    size_t errlen);

/* 0 when key_pem is the private key of cert_pem. */
int ca_key_matches(const char *cert_pem, const char *key_pem, char *err, size_t errlen);

/* The certificate's subject CN into out. */
int ca_cert_cn(const char *cert_pem, char *out, size_t size, char *err, size_t errlen);

/* 0 when an existing leaf can be kept: it chains to the CA, the key is its
 * own, the CN is cn, and it is not within CA_RENEW_BEFORE_DAYS of its end. */
int ca_leaf_is_current(const char *ca_cert_pem, const ca_pair *leaf, ca_leaf_kind kind,
                       const char *cn, char *err, size_t errlen);

/* True when s is an IPv4 or IPv6 address literal. */
bool ca_is_ip_literal(const char *s);

#endif
