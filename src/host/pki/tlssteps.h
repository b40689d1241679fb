/* Provisioning steps for the log channel's certificates on a runner's
 * target. The CA is minted once and kept for good (every agent certificate
 * hangs off it); a leaf certificate is kept while it is current and
 * re-issued from the CA otherwise (it holds nothing that cannot be made
 * again). Keys are written before their certificates, so a run cut short
 * leaves a state the next run repairs. */
#ifndef CONVOCATE_HOST_PKI_TLSSTEPS_H
#define CONVOCATE_HOST_PKI_TLSSTEPS_H

#include "host/pki/ca.h"
#include "provision/plan.h"
#include "provision/runner.h"

#define TLS_CA_NAME "convocate log CA"

/* Who may read the files rsyslog reads (RSYSLOG_READER_GROUP in
 * rsyslog_conf.h): their directory, certificates and keys. The CA's
 * private key is never among them: it stays 0600 root:root. */
typedef struct {
    gid_t gid;        /* the syslog group's, or 0 (root) */
    mode_t dir_mode;  /* rsyslog-ca/, rsyslog-tls/: 0750 */
    mode_t cert_mode; /* 0640 with the syslog group, else 0644 */
    mode_t key_mode;  /* 0640 with the syslog group, else 0600 */
} tls_access;

/* The access on r's target: shared with the syslog group when it exists,
 * root only otherwise. */
void tlsstep_access(runner *r, tls_access *a);

/* The CA at cert_path/key_path (the certificate readable as a says, the
 * key 0600 root:root whatever a says): kept when usable, minted when both are
 * missing, its certificate re-made when only the key is there. Existing but
 * unusable files are an error (moving them away is the operator's call: a
 * new CA invalidates every agent certificate). *ca gets both PEMs. */
int tlsstep_ca(plan *p, runner *r, const char *cert_path, const char *key_path, const tls_access *a,
               ca_pair *ca);

/* Reads a CA from a target without changing it: 0 with *ca, -1 (reported)
 * when missing or unusable; hint says how to make it. */
int tlsstep_load_ca(plan *p, runner *r, const char *step, const char *cert_path,
                    const char *key_path, const char *hint, ca_pair *ca);

/* Checks a CA given as PEM text (from --ca-cert/--ca-key). */
int tlsstep_check_ca(plan *p, const char *step, const ca_pair *ca);

/* A leaf pair issued by ca: the existing one is kept while current for req,
 * otherwise a new one is issued. */
int tlsstep_leaf(plan *p, runner *r, const char *step, const ca_pair *ca,
                 const ca_leaf_request *req, const char *cert_path, const char *key_path,
                 const tls_access *a);

#endif
