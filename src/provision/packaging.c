/* See packaging.h. */
#include "provision/packaging.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const unit_dirs[] = {"/lib/systemd/system", "/usr/lib/systemd/system"};

static bool is_file(runner *r, const char *path)
{
    runner_stat st;
    char err[512];
    return r->ops->stat_path(r, path, &st, err, sizeof err) == 0 && st.exists && st.is_reg;
}

void packaging_program_path(runner *r, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", PACKAGE_BIN_DIR, name);
    if (!is_file(r, out))
        snprintf(out, size, "%s/%s", SOURCE_BIN_DIR, name);
}

/* 1 when the copy in /etc/systemd/system starts with own_header. */
static int own_copy(plan *p, runner *r, const char *step, const char *path, const char *header)
{
    char *text = NULL;
    size_t len = 0;
    int have = plan_read(p, r, step, path, &text, &len);
    if (have <= 0)
        return have;
    size_t n = strlen(header);
    int mine = len >= n && memcmp(text, header, n) == 0;
    free(text);
    return mine;
}

int packaging_unit_step(plan *p, runner *r, const char *unit, const char *own_header)
{
    char shipped[PATH_BUF] = "", local_copy[PATH_BUF];
    for (size_t i = 0; i < sizeof unit_dirs / sizeof *unit_dirs && !shipped[0]; i++) {
        snprintf(shipped, sizeof shipped, "%s/%s", unit_dirs[i], unit);
        if (!is_file(r, shipped))
            shipped[0] = '\0';
    }
    if (!shipped[0])
        return 0;
    snprintf(local_copy, sizeof local_copy, "/etc/systemd/system/%s", unit);
    int mine = own_copy(p, r, unit, local_copy, own_header);
    if (mine < 0)
        return -1;
    if (mine == 0) {
        printf("  %s: unchanged (the package's %s)\n", unit, shipped);
        fflush(stdout);
        return 1;
    }
    /* Ours from an install before the package: it would shadow the
     * package's unit, which now says where the program is. */
    char real[PATH_BUF], err[512], *out = NULL;
    if (runner_real_path(r, local_copy, real, sizeof real) < 0)
        return plan_fail(p, unit, "the root path is too long");
    if (!p->dry_run) {
        char *argv[] = {"rm", "-f", "--", real, NULL};
        int status = r->ops->run(r, argv, &out, 4096, err, sizeof err);
        free(out);
        if (status != 0)
            return plan_fail(p, unit, "could not remove %s (the package's %s replaces it)", real,
                             shipped);
    }
    printf("  %s: %s %s (the package's %s replaces it)\n", unit,
           p->dry_run ? "would remove" : "removed", real, shipped);
    p->changes++;
    fflush(stdout);
    return 1;
}
