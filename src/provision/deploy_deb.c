/* See deploy_deb.h. apt-get, not dpkg -i: a fresh host lacks our
 * dependencies (docker.io, rsyslog-openssl, ...), and apt resolves them
 * from that host's own configured sources in the same transaction. */
#include "provision/deploy_deb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/spawn.h"

#define FIELDS_MAX 4096
#define APT_OUTPUT_MAX 65536
#define QUERY_OUTPUT_MAX 1024

static bool only_chars(const char *s, const char *allowed)
{
    return *s != '\0' && strspn(s, allowed) == strlen(s);
}

/* "Package: x\nVersion: y\nArchitecture: z\n" in the order asked for. */
static int parse_fields(char *text, deb_file *out)
{
    struct {
        const char *key;
        char *dst;
        size_t size;
        const char *allowed;
    } want[] = {
        {"Package: ", out->package, sizeof out->package, "abcdefghijklmnopqrstuvwxyz0123456789.+-"},
        {"Version: ", out->version, sizeof out->version,
         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+~:-"},
        {"Architecture: ", out->arch, sizeof out->arch, "abcdefghijklmnopqrstuvwxyz0123456789-"},
    };
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
            size_t k = strlen(want[i].key);
            if (strncmp(line, want[i].key, k) == 0 && strlen(line + k) < want[i].size)
                snprintf(want[i].dst, want[i].size, "%s", line + k);
        }
    }
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!only_chars(want[i].dst, want[i].allowed))
            return -1;
    return 0;
}

int deb_inspect(plan *p, const char *path, deb_file *out)
{
    char err[1024], *text = NULL;
    memset(out, 0, sizeof *out);
    out->path = path;
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 4, ".deb") != 0)
        return plan_fail(p, "--deb", "%s: not a .deb file name", path);
    char *argv[] = {"dpkg-deb", "--field",      (char *)path, "Package",
                    "Version",  "Architecture", NULL};
    int status = spawn_capture(argv, &text, FIELDS_MAX);
    if (status < 0) {
        free(text);
        return plan_fail(p, "--deb", "dpkg-deb is not installed here (apt-get install dpkg)");
    }
    int rc = status == 0 && text != NULL ? parse_fields(text, out) : -1;
    if (rc < 0) {
        char why[512];
        runner_output_last_line(status == 0 ? "no Package, Version or Architecture" : text, why,
                                sizeof why);
        free(text);
        return plan_fail(p, "--deb", "%s is not a package dpkg-deb can read: %s", path, why);
    }
    free(text);
    if (digest_local_file(path, out->sha256, err, sizeof err) < 0)
        return plan_fail(p, "--deb", "%s", err);
    return 0;
}

bool debs_include(const deb_file *debs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(debs[i].package, name) == 0)
            return true;
    return false;
}

/* 1 when the target has package installed at version, 0 when not, -1
 * when dpkg-query could not run there. */
static int installed_at(plan *p, runner *r, const deb_file *d)
{
    char format[] = "${Version} ${db:Status-Abbrev}";
    char *argv[] = {"dpkg-query", "--show", "--showformat", format, (char *)d->package, NULL};
    char *out = NULL, err[512], want[96];
    int status = r->ops->run(r, argv, &out, QUERY_OUTPUT_MAX, err, sizeof err);
    if (status < 0) {
        free(out);
        return plan_fail(p, d->package, "dpkg-query on %s could not run: %s", r->where, err);
    }
    /* Exit 1 with a message when the package is unknown there. */
    snprintf(want, sizeof want, "%s ii", d->version);
    int yes = status == 0 && out != NULL && strncmp(out, want, strlen(want)) == 0;
    free(out);
    return yes;
}

static void upload_path(const deb_file *d, char *out, size_t size)
{
    snprintf(out, size, "/tmp/convocate-%.16s-%s_%s_%s.deb", d->sha256, d->package, d->version,
             d->arch);
}

static int upload_one(plan *p, runner *r, const deb_file *d, const char *dest)
{
    char err[1024], got[SHA256_HEX_LEN + 1];
    if (r->ops->upload(r, d->path, dest, 0644, 0, 0, NULL, err, sizeof err) < 0)
        return plan_fail(p, d->package, "upload of %s to %s: %s", d->path, r->where, err);
    if (digest_target_file(r, dest, got, err, sizeof err) < 0)
        return plan_fail(p, d->package, "%s", err);
    if (strcmp(got, d->sha256) != 0)
        return plan_fail(p, d->package, "SHA-256 of %s on %s is %s, expected %s; run again", dest,
                         r->where, got, d->sha256);
    return 0;
}

static void remove_uploads(runner *r, char paths[][PATH_BUF], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char real[PATH_BUF], err[256], *out = NULL;
        if (runner_real_path(r, paths[i], real, sizeof real) < 0)
            continue;
        char *argv[] = {"rm", "-f", "--", real, NULL};
        r->ops->run(r, argv, &out, 1024, err, sizeof err);
        free(out);
    }
}

static int apt_install(plan *p, runner *r, char paths[][PATH_BUF], size_t n)
{
    char *argv[16 + DEB_FILES_MAX] = {"env",     "DEBIAN_FRONTEND=noninteractive",
                                      "apt-get", "install",
                                      "-y",      "-q",
                                      "-o",      "Dpkg::Options::=--force-confdef",
                                      "-o",      "Dpkg::Options::=--force-confold"};
    size_t k = 10;
    char real[DEB_FILES_MAX][PATH_BUF];
    for (size_t i = 0; i < n; i++) {
        if (runner_real_path(r, paths[i], real[i], sizeof real[i]) < 0)
            return plan_fail(p, "packages", "the root path is too long");
        argv[k++] = real[i];
    }
    argv[k] = NULL;
    char *out = NULL, err[1024];
    int status = r->ops->run(r, argv, &out, APT_OUTPUT_MAX, err, sizeof err);
    if (status != 0) {
        char why[512];
        runner_output_last_line(status < 0 ? err : out, why, sizeof why);
        free(out);
        return plan_fail(p, "packages",
                         "apt-get install on %s failed (exit %d): %s; the uploads are kept "
                         "in /tmp (an out-of-date package list: run apt-get update there)",
                         r->where, status, why);
    }
    free(out);
    return 0;
}

int deploy_debs_step(plan *p, runner *r, const deb_file *debs, size_t n)
{
    if (n == 0 || n > DEB_FILES_MAX)
        return plan_fail(p, "packages", "between 1 and %d --deb files", DEB_FILES_MAX);
    bool all_there = true;
    for (size_t i = 0; i < n; i++) {
        int at = installed_at(p, r, &debs[i]);
        if (at < 0)
            return -1;
        all_there &= at == 1;
    }
    char what[512] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(what + strlen(what), sizeof what - strlen(what), "%s%s %s", i ? ", " : "",
                 debs[i].package, debs[i].version);
    if (all_there) {
        printf("  packages %s: unchanged\n", what);
        fflush(stdout);
        return 0;
    }
    if (p->dry_run) {
        printf("  packages %s: would upload, verify and apt-get install\n", what);
        p->changes++;
        return 0;
    }
    char paths[DEB_FILES_MAX][PATH_BUF];
    for (size_t i = 0; i < n; i++) {
        upload_path(&debs[i], paths[i], sizeof paths[i]);
        if (upload_one(p, r, &debs[i], paths[i]) < 0)
            return -1;
    }
    if (apt_install(p, r, paths, n) < 0)
        return -1;
    remove_uploads(r, paths, n);
    printf("  packages %s: installed (SHA-256 checked on %s)\n", what, r->where);
    p->changes++;
    fflush(stdout);
    return 0;
}
