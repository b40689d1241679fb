/* Deploying this build's programs: see deploy.h. The digest is what tells
 * "the same program" without reading a large file back over the wire, and
 * what a second run's "unchanged" relies on. */
#include "provision/deploy.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provision/digest.h"

#define INSTALL_OUTPUT_MAX 65536
#define DEPLOY_NAME_MAX 64

int deploy_sibling(const char *name, char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    int len = snprintf(out, size, "%s/%s", exe, name);
    if (len < 0 || (size_t)len >= size)
        return -1;
    return access(out, X_OK) == 0 ? 0 : -1;
}

/* What the target holds compared with want: created (missing), updated
 * (other bytes, mode or owner) or unchanged. */
static int binary_outcome(plan *p, runner *r, const char *path, const char *want,
                          step_outcome *outcome)
{
    char err[1024], have[SHA256_HEX_LEN + 1];
    runner_stat st;
    if (r->ops->stat_path(r, path, &st, err, sizeof err) < 0)
        return plan_fail(p, path, "%s", err);
    if (!st.exists) {
        *outcome = STEP_CREATED;
        return 0;
    }
    if (!st.is_reg)
        return plan_fail(p, path, "exists on %s and is not a regular file; move it away", r->where);
    if (st.mode != 0755 || (r->can_chown && (st.uid != 0 || st.gid != 0))) {
        *outcome = STEP_UPDATED;
        return 0;
    }
    if (digest_target_file(r, path, have, err, sizeof err) < 0)
        return plan_fail(p, path, "%s", err);
    *outcome = strcmp(have, want) == 0 ? STEP_UNCHANGED : STEP_UPDATED;
    return 0;
}

int deploy_binary_step(plan *p, runner *r, const char *name)
{
    char src[PATH_MAX], path[PATH_BUF], err[1024];
    char want[SHA256_HEX_LEN + 1];
    /* A name is one path component: it goes into a path on the target. */
    if (strlen(name) >= DEPLOY_NAME_MAX || strchr(name, '/') != NULL || name[0] == '.')
        return plan_fail(p, "deploy", "\"%s\" is not a program name", name);
    snprintf(path, sizeof path, DEPLOY_BIN_DIR "/%s", name);
    if (deploy_sibling(name, src, sizeof src) < 0)
        return plan_fail(p, path,
                         "%s is not installed next to this program; build or install all "
                         "three programs together",
                         name);
    if (digest_local_file(src, want, err, sizeof err) < 0)
        return plan_fail(p, path, "%s", err);
    step_outcome outcome;
    if (binary_outcome(p, r, path, want, &outcome) < 0)
        return -1;
    if (outcome != STEP_UNCHANGED && !p->dry_run) {
        if (r->ops->upload(r, src, path, 0755, 0, 0, NULL, err, sizeof err) < 0)
            return plan_fail(p, path, "%s", err);
        /* The size was checked before the rename; the digest proves the
         * bytes. */
        if (digest_check_target(p, r, path, path, want) < 0)
            return -1;
    }
    plan_report(p, path, outcome);
    return 0;
}

/* Its lines, indented under our step; its verdict is its closing line,
 * "nothing changed" alone on a line when nothing did. Not simply the last
 * line: the runner puts stderr after stdout, and a remote sudo may warn
 * there. */
static step_outcome echo_install(const char *out)
{
    static const char unchanged[] = "nothing changed";
    bool said_unchanged = false;
    for (const char *line = out; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        if (n > 0)
            printf("    %.*s\n", (int)n, line);
        if (n == sizeof unchanged - 1 && strncmp(line, unchanged, n) == 0)
            said_unchanged = true;
        line += n + (line[n] == '\n');
    }
    fflush(stdout);
    return said_unchanged ? STEP_UNCHANGED : STEP_UPDATED;
}

int deploy_install_step(plan *p, runner *r, const char *step, const char *bin,
                        step_outcome *outcome)
{
    char real[PATH_BUF], err[1024];
    runner_stat st;
    *outcome = STEP_UNCHANGED;
    if (runner_real_path(r, bin, real, sizeof real) < 0)
        return plan_fail(p, step, "the root path is too long");
    if (r->ops->stat_path(r, bin, &st, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    if (p->dry_run && !st.exists) {
        printf("  %s: would run %s install once the binary is there\n", step, real);
        return 0;
    }
    char *argv[] = {
        real, "install", "--root", r->root[0] ? r->root : "/", p->dry_run ? "--dry-run" : NULL,
        NULL};
    char *out = NULL;
    int status = r->ops->run(r, argv, &out, INSTALL_OUTPUT_MAX, err, sizeof err);
    if (status != 0) {
        if (out != NULL)
            echo_install(out);
        free(out);
        if (status < 0)
            return plan_fail(p, step, "%s install on %s could not run: %s", real, r->where, err);
        return plan_fail(p, step, "%s install on %s failed (exit %d); its output is above", real,
                         r->where, status);
    }
    *outcome = echo_install(out != NULL ? out : "");
    free(out);
    plan_report(p, step, *outcome);
    return 0;
}
