#include "provision/plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_LEN 1024
#define RUN_OUTPUT_MAX (256 * 1024)
#define RUN_LINE_MAX 300

void plan_report(plan *p, const char *step, step_outcome outcome)
{
    static const char *const done[] = {"unchanged", "created", "updated"};
    static const char *const planned[] = {"unchanged", "would create", "would update"};
    if (outcome != STEP_UNCHANGED)
        p->changes++;
    printf("  %s: %s\n", step, (p->dry_run ? planned : done)[outcome]);
    fflush(stdout);
}

int plan_fail(plan *p, const char *step, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "%s: %s: ", p->program, step);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

int plan_finish(plan *p)
{
    if (p->changes == 0)
        printf("nothing changed\n");
    else if (p->dry_run)
        printf("%d step%s would change (dry run: nothing was touched)\n", p->changes,
               p->changes == 1 ? "" : "s");
    else
        printf("%d step%s changed\n", p->changes, p->changes == 1 ? "" : "s");
    fflush(stdout);
    return 0;
}

static bool owner_differs(const runner *r, const runner_stat *st, uid_t uid, gid_t gid)
{
    return r->can_chown && uid != KEEP_OWNER && (st->uid != uid || st->gid != gid);
}

int plan_dir(plan *p, runner *r, const char *step, const char *path, mode_t mode, uid_t uid,
             gid_t gid)
{
    char err[ERR_LEN];
    runner_stat st;
    if (r->ops->stat_path(r, path, &st, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    step_outcome outcome = STEP_UNCHANGED;
    if (!st.exists)
        outcome = STEP_CREATED;
    else if (!st.is_dir)
        return plan_fail(p, step, "%s exists and is not a directory; move it away", path);
    else if (st.mode != mode || owner_differs(r, &st, uid, gid))
        outcome = STEP_UPDATED;
    if (outcome != STEP_UNCHANGED && !p->dry_run &&
        r->ops->make_dir(r, path, mode, uid, gid, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    plan_report(p, step, outcome);
    return 0;
}

int plan_read(plan *p, runner *r, const char *step, const char *path, char **out, size_t *len)
{
    char err[ERR_LEN];
    *out = NULL;
    if (r->ops->read_file(r, path, PLAN_SMALL_FILE_MAX, out, len, err, sizeof err) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    return plan_fail(p, step, "%s", err);
}

static int compare_file(plan *p, runner *r, const char *step, const char *path, const void *data,
                        size_t len, mode_t mode, uid_t uid, gid_t gid, step_outcome *outcome)
{
    char err[ERR_LEN];
    runner_stat st;
    if (r->ops->stat_path(r, path, &st, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    if (!st.exists) {
        *outcome = STEP_CREATED;
        return 0;
    }
    if (!st.is_reg)
        return plan_fail(p, step, "%s exists and is not a regular file; move it away", path);
    if (st.mode != mode || owner_differs(r, &st, uid, gid)) {
        *outcome = STEP_UPDATED;
        return 0;
    }
    char *old = NULL;
    size_t old_len = 0;
    if (plan_read(p, r, step, path, &old, &old_len) < 0)
        return -1;
    bool same = old != NULL && old_len == len && memcmp(old, data, len) == 0;
    if (old != NULL) {
        explicit_bzero(old, old_len);
        free(old);
    }
    *outcome = same ? STEP_UNCHANGED : STEP_UPDATED;
    return 0;
}

int plan_file(plan *p, runner *r, const char *step, const char *path, const void *data, size_t len,
              mode_t mode, uid_t uid, gid_t gid)
{
    char err[ERR_LEN];
    step_outcome outcome;
    if (compare_file(p, r, step, path, data, len, mode, uid, gid, &outcome) < 0)
        return -1;
    if (outcome != STEP_UNCHANGED && !p->dry_run &&
        r->ops->write_file(r, path, data, len, mode, uid, gid, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    plan_report(p, step, outcome);
    return 0;
}

int plan_file_once(plan *p, runner *r, const char *step, const char *path, const void *data,
                   size_t len, mode_t mode, uid_t uid, gid_t gid)
{
    char err[ERR_LEN];
    runner_stat st;
    if (r->ops->stat_path(r, path, &st, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    if (st.exists && !st.is_reg)
        return plan_fail(p, step, "%s exists and is not a regular file; move it away", path);
    if (st.exists) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    if (!p->dry_run && r->ops->write_file(r, path, data, len, mode, uid, gid, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    plan_report(p, step, STEP_CREATED);
    return 0;
}

/* Runs argv; 0 with *out (caller frees), or -1 reported under step. */
int plan_run(plan *p, runner *r, const char *step, char *const argv[], char **out)
{
    char *text = NULL, err[512], line[RUN_LINE_MAX];
    int status = r->ops->run(r, argv, &text, RUN_OUTPUT_MAX, err, sizeof err);
    if (status == 0) {
        if (out != NULL)
            *out = text;
        else
            free(text);
        return 0;
    }
    runner_output_last_line(text, line, sizeof line);
    free(text);
    if (status < 0)
        return plan_fail(p, step, "%s", err);
    /* Name the program, not the env(1) that sets its environment. */
    size_t i = 0;
    while (argv[i + 1] != NULL && (strcmp(argv[i], "env") == 0 || strchr(argv[i], '=') != NULL))
        i++;
    return plan_fail(p, step, "%s failed (exit %d)%s%s", argv[i], status, line[0] ? ": " : "",
                     line);
}
