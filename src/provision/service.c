#include "provision/service.h"

#include <stdio.h>
#include <stdlib.h>

bool service_systemd_runs(runner *r)
{
    runner_stat st;
    char err[256];
    return runner_is_real_root(r) &&
           r->ops->stat_path(r, "/run/systemd/system", &st, err, sizeof err) == 0 && st.exists &&
           st.is_dir;
}

/* `systemctl verb [unit]` on the target; its exit status, -1 when it could
 * not run (err filled). */
static int systemctl(runner *r, const char *verb, const char *unit, char *err, size_t errlen)
{
    char *out = NULL;
    char *argv[] = {"systemctl", (char *)verb, (char *)unit, NULL};
    int status = r->ops->run(r, argv, &out, 4096, err, errlen);
    if (status > 0)
        snprintf(err, errlen, "%.300s", out ? out : "");
    free(out);
    return status;
}

static int must(plan *p, runner *r, const char *step, const char *verb, const char *unit)
{
    char err[512] = "";
    int status = systemctl(r, verb, unit, err, sizeof err);
    if (status == 0)
        return 0;
    return plan_fail(p, step, "systemctl %s%s%s on %s failed (exit %d): %s", verb, unit ? " " : "",
                     unit ? unit : "", r->where, status, err);
}

int service_step(plan *p, runner *r, const char *unit, bool reload, bool restart,
                 const char *by_hand)
{
    char err[512];
    if (!service_systemd_runs(r)) {
        /* Said only when there is something to pick up, so a second run
         * that changed nothing stays quiet. */
        if (reload || restart)
            printf("  %s: %s; restart '%s' there by hand\n", unit,
                   runner_is_real_root(r) ? "systemd is not running on the target"
                                          : "a directory of this machine, no systemd unit",
                   by_hand);
        return 0;
    }
    bool enabled = systemctl(r, "is-enabled", unit, err, sizeof err) == 0;
    bool active = systemctl(r, "is-active", unit, err, sizeof err) == 0;
    if (enabled && active && !reload && !restart) {
        plan_report(p, unit, STEP_UNCHANGED);
        return 0;
    }
    /* A running unit is restarted only when asked: enabling one that is
     * already up (it was disabled by hand) must not bounce it. */
    const char *start = !active ? "start" : reload || restart ? "restart" : NULL;
    const char *done = !enabled && !active ? "enabled and started"
                       : !enabled && start ? "enabled and restarted"
                       : !enabled          ? "enabled"
                       : !active           ? "started"
                                           : "restarted";
    if (p->dry_run) {
        printf("  %s: would be %s\n", unit, done);
        p->changes++;
        return 0;
    }
    if ((reload && must(p, r, unit, "daemon-reload", NULL) < 0) ||
        (!enabled && must(p, r, unit, "enable", unit) < 0) ||
        (start && must(p, r, unit, start, unit) < 0))
        return -1;
    printf("  %s: %s\n", unit, done);
    p->changes++;
    return 0;
}
