#include "host/vm/iso_cache.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/paths.h"

#define STEP "ISO cache"

bool iso_sha256_parse(const char *s, char lower[SHA256_HEX_LEN + 1])
{
    if (strlen(s) != SHA256_HEX_LEN || strspn(s, "0123456789abcdefABCDEF") != SHA256_HEX_LEN)
        return false;
    for (size_t i = 0; i < SHA256_HEX_LEN; i++)
        lower[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    lower[SHA256_HEX_LEN] = '\0';
    return true;
}

int iso_cache_default_dir(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, size, "%s/convocate/iso", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(out, size, "%s/.cache/convocate/iso", home);
    else
        return -1;
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* Where fetched bytes go: a temporary file, hashed as it is written. */
typedef struct {
    int fd;
    digest_sha256 *digest;
    long long size;
    int error; /* errno of the first failure; EFBIG past ISO_MAX_BYTES */
} iso_sink;

static int sink_write(iso_sink *s, const char *buf, size_t n)
{
    if (s->error != 0)
        return -1;
    s->size += (long long)n;
    if (s->size > ISO_MAX_BYTES) {
        s->error = EFBIG;
        return -1;
    }
    if (digest_update(s->digest, buf, n) < 0) {
        s->error = ENOMEM;
        return -1;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w = write(s->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            s->error = errno;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

static size_t curl_sink(char *data, size_t size, size_t nmemb, void *ctx)
{
    return sink_write(ctx, data, size * nmemb) == 0 ? size * nmemb : 0;
}

static int fetch_url(const char *url, iso_sink *s, char *err, size_t errlen)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(err, errlen, "curl: cannot initialise");
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "file,http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled server is given up after 60 s below 1 kB/s. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK)
        return 0;
    snprintf(err, errlen, "fetch %s: %s", url,
             s->error ? strerror(s->error) : (curl_err[0] ? curl_err : curl_easy_strerror(rc)));
    return -1;
}

static int copy_file(const char *path, iso_sink *s, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || sink_write(s, buf, (size_t)n) < 0)
            break;
    }
    int saved = n < 0 ? errno : s->error;
    close(fd);
    if (n == 0)
        return 0;
    snprintf(err, errlen, "copy %s: %s", path, strerror(saved));
    return -1;
}

/* Fetches into a temporary file of dir; 0 with its digest in hex and its
 * name in tmp, or -1 with err (no temporary file left). */
static int fetch(const char *source, const char *dir, char *tmp, size_t tmplen,
                 char hex[SHA256_HEX_LEN + 1], char *err, size_t errlen)
{
    snprintf(tmp, tmplen, "%s/.fetch-XXXXXX", dir);
    iso_sink s = {.fd = mkstemp(tmp), .digest = digest_begin()};
    if (s.fd < 0 || s.digest == NULL) {
        snprintf(err, errlen, "%s: %s", s.fd < 0 ? tmp : "digest",
                 s.fd < 0 ? strerror(errno) : "out of memory");
        if (s.fd >= 0) {
            close(s.fd);
            unlink(tmp);
        }
        digest_end(s.digest, hex);
        return -1;
    }
    int rc = strstr(source, "://") != NULL ? fetch_url(source, &s, err, errlen)
                                           : copy_file(source, &s, err, errlen);
    if (rc == 0 && fsync(s.fd) < 0) {
        snprintf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    close(s.fd);
    if (digest_end(s.digest, hex) < 0 && rc == 0) {
        snprintf(err, errlen, "digest of %s failed", source);
        rc = -1;
    }
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* 1 when path holds the bytes of sha256, 0 when it is missing or differs. */
static int cached(const char *path, const char *sha256, char *err, size_t errlen)
{
    char hex[SHA256_HEX_LEN + 1];
    struct stat st;
    if (stat(path, &st) < 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1);
    if (digest_local_file(path, hex, err, errlen) < 0)
        return -1;
    if (strcmp(hex, sha256) == 0)
        return 1;
    printf("  " STEP ": %s no longer matches its name (SHA-256 %s); fetching it again\n", path,
           hex);
    return 0;
}

int iso_cache_step(plan *p, const char *source, const char *sha256, const char *dir, char *out,
                   size_t outlen)
{
    char err[PATH_BUF + 256], tmp[PATH_BUF], hex[SHA256_HEX_LEN + 1];
    if ((size_t)snprintf(out, outlen, "%s/%s.iso", dir, sha256) >= outlen)
        return plan_fail(p, STEP, "the cache directory %s is too long", dir);
    /* A dry run leaves this machine alone too. */
    if (!p->dry_run && mkdir_p(dir, 0755) < 0)
        return plan_fail(p, STEP, "cannot make %s: %s", dir, strerror(errno));
    int have = cached(out, sha256, err, sizeof err);
    if (have < 0)
        return plan_fail(p, STEP, "%s", err);
    if (have) {
        plan_report(p, STEP, STEP_UNCHANGED);
        return 0;
    }
    if (p->dry_run) {
        plan_report(p, STEP, STEP_CREATED);
        return 0;
    }
    printf("  " STEP ": fetching %s\n", source);
    fflush(stdout);
    if (fetch(source, dir, tmp, sizeof tmp, hex, err, sizeof err) < 0)
        return plan_fail(p, STEP, "%s", err);
    if (strcmp(hex, sha256) != 0) {
        unlink(tmp);
        return plan_fail(p, STEP,
                         "SHA-256 of %s is %s, but --iso-sha256 says %s; nothing was cached: "
                         "check the ISO and the digest published with it",
                         source, hex, sha256);
    }
    if (rename(tmp, out) < 0) {
        int saved = errno;
        unlink(tmp);
        return plan_fail(p, STEP, "rename to %s: %s", out, strerror(saved));
    }
    plan_report(p, STEP, STEP_CREATED);
    return 0;
}
