#include "provision/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUM_OUTPUT_MAX 4096

struct digest_sha256 {
    EVP_MD_CTX *ctx;
};

digest_sha256 *digest_begin(void)
{
    digest_sha256 *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->ctx = EVP_MD_CTX_new();
    if (d->ctx == NULL || EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(d->ctx);
        free(d);
        return NULL;
    }
    return d;
}

int digest_update(digest_sha256 *d, const void *data, size_t n)
{
    return EVP_DigestUpdate(d->ctx, data, n) == 1 ? 0 : -1;
}

int digest_end(digest_sha256 *d, char hex[SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok = EVP_DigestFinal_ex(d->ctx, md, &len) == 1 && len == SHA256_HEX_LEN / 2;
    EVP_MD_CTX_free(d->ctx);
    free(d);
    if (!ok)
        return -1;
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int digest_local_file(const char *path, char hex[SHA256_HEX_LEN + 1], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    digest_sha256 *d = digest_begin();
    char buf[65536];
    ssize_t n = 0;
    while (d != NULL && (n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || digest_update(d, buf, (size_t)n) < 0)
            break;
    }
    int saved = errno;
    close(fd);
    if (d == NULL || n != 0) {
        snprintf(err, errlen, "hash %s: %s", path, d == NULL ? "out of memory" : strerror(saved));
        if (d != NULL)
            digest_end(d, hex);
        return -1;
    }
    if (digest_end(d, hex) < 0) {
        snprintf(err, errlen, "hash %s: digest failed", path);
        return -1;
    }
    return 0;
}

static bool is_hex_digest(const char *s)
{
    return strspn(s, "0123456789abcdef") == SHA256_HEX_LEN;
}

int digest_target_file(runner *r, const char *path, char hex[SHA256_HEX_LEN + 1], char *err,
                       size_t errlen)
{
    char real[PATH_BUF], why[512];
    if (runner_real_path(r, path, real, sizeof real) < 0) {
        snprintf(err, errlen, "bad path %s", path);
        return -1;
    }
    char *argv[] = {"sha256sum", "--", real, NULL};
    char *out = NULL;
    int status = r->ops->run(r, argv, &out, SUM_OUTPUT_MAX, why, sizeof why);
    /* "<64 hex>  <path>" */
    int rc = -1;
    if (status < 0)
        snprintf(err, errlen, "sha256sum %s on %s: %s", real, r->where, why);
    else if (status != 0 || out == NULL || !is_hex_digest(out) || out[SHA256_HEX_LEN] != ' ')
        snprintf(err, errlen, "sha256sum %s on %s failed (exit %d): %.200s", real, r->where, status,
                 out != NULL ? out : "");
    else {
        memcpy(hex, out, SHA256_HEX_LEN);
        hex[SHA256_HEX_LEN] = '\0';
        rc = 0;
    }
    free(out);
    return rc;
}

int digest_check_target(plan *p, runner *r, const char *step, const char *path, const char *want)
{
    char have[SHA256_HEX_LEN + 1], err[1024];
    if (digest_target_file(r, path, have, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    if (strcmp(have, want) != 0)
        return plan_fail(p, step, "SHA-256 on %s is %s, expected %s; run again", r->where, have,
                         want);
    return 0;
}
