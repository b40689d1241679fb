/* SHA-256 of files on this machine and on a target: what tells "the same
 * bytes" without reading a large file back over the wire. */
#ifndef CONVOCATE_PROVISION_DIGEST_H
#define CONVOCATE_PROVISION_DIGEST_H

#include <stddef.h>

#include "provision/plan.h"
#include "provision/runner.h"

#define SHA256_HEX_LEN 64

typedef struct digest_sha256 digest_sha256;

/* A running digest for bytes that stream past (a pipe). */
digest_sha256 *digest_begin(void);
int digest_update(digest_sha256 *d, const void *data, size_t n);
/* Writes 64 lowercase hex digits and a NUL; frees d in every case. */
int digest_end(digest_sha256 *d, char hex[SHA256_HEX_LEN + 1]);

/* The digest of a local file; -1 with err. */
int digest_local_file(const char *path, char hex[SHA256_HEX_LEN + 1], char *err, size_t errlen);

/* The digest of a host path on the target, computed there by sha256sum;
 * -1 with err (also when the file is missing). */
int digest_target_file(runner *r, const char *path, char hex[SHA256_HEX_LEN + 1], char *err,
                       size_t errlen);

/* After an upload: the target's digest of path must be want. 0, or -1
 * after one line under step (the bytes differ: run again). */
int digest_check_target(plan *p, runner *r, const char *step, const char *path, const char *want);

#endif
