#include "agent/home_mount.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "provision/service.h"
#include "provision/systemd_escape.h"

#define UNIT_DIR "/etc/systemd/system"
#define AGENT_SERVICE "convocate-agent.service"
/* Where `systemctl enable` links a unit that convocate-agent requires. */
#define REQUIRES_DIR UNIT_DIR "/" AGENT_SERVICE ".requires"
#define UNIT_NAME_MAX 256
#define ERR_LEN 512
/* mountinfo lines are short; one this long is not a mount we look for. */
#define MOUNTINFO_LINE_MAX (64 * 1024)

/* Written to the host's view of the path: systemd reads it there. */
static char *unit_text(const char *homes)
{
    char *text = NULL;
    if (asprintf(&text,
                 "# Installed by convocate-agent install; rewritten on each install.\n"
                 "# Session homes are written by container root: no setuid file or device\n"
                 "# node made there may take effect on this host (SPEC 14).\n"
                 "[Unit]\n"
                 "Description=convocate session homes (nosuid, nodev)\n"
                 "Documentation=man:convocate-agent(8)\n"
                 "Before=" AGENT_SERVICE "\n"
                 "\n"
                 "[Mount]\n"
                 "What=%s\n"
                 "Where=%s\n"
                 "Type=none\n"
                 "Options=bind,nosuid,nodev\n"
                 "\n"
                 "[Install]\n"
                 "RequiredBy=" AGENT_SERVICE "\n",
                 homes, homes) < 0)
        return NULL;
    return text;
}

static int unit_step(plan *p, runner *r, const char *unit, const char *homes)
{
    char path[PATH_BUF];
    snprintf(path, sizeof path, UNIT_DIR "/%s", unit);
    char *text = unit_text(homes);
    if (text == NULL)
        return plan_fail(p, unit, "out of memory");
    int before = p->changes;
    int rc = plan_file(p, r, unit, path, text, strlen(text), 0644, 0, 0);
    free(text);
    if (rc < 0 || p->changes == before || p->dry_run || !service_systemd_runs(r))
        return rc;
    char *reload[] = {"systemctl", "daemon-reload", NULL};
    return plan_run(p, r, unit, reload, NULL);
}

/* Points link at target, replacing whatever link was there in one rename. */
static int replace_link(const char *target, const char *link, char *err, size_t errlen)
{
    char tmp[PATH_BUF];
    if (snprintf(tmp, sizeof tmp, "%s.new", link) >= (int)sizeof tmp) {
        snprintf(err, errlen, "path %.300s is too long", link);
        return -1;
    }
    unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
        snprintf(err, errlen, "link %.200s -> %.200s: %s", link, target, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* What `systemctl enable` makes for RequiredBy=: a link in the agent
 * service's .requires directory. Made here directly, so that it exists also
 * where systemd does not run (a packaging root, a container, these tests). */
static int enable_step(plan *p, runner *r, const char *unit)
{
    char step[UNIT_NAME_MAX + 16], host_link[PATH_BUF], link[PATH_BUF], target[PATH_BUF];
    char err[ERR_LEN], now[PATH_BUF];
    snprintf(step, sizeof step, "enable %s", unit);
    snprintf(target, sizeof target, UNIT_DIR "/%s", unit);
    snprintf(host_link, sizeof host_link, REQUIRES_DIR "/%s", unit);
    if (runner_real_path(r, host_link, link, sizeof link) < 0)
        return plan_fail(p, step, "path %s under --root is too long", host_link);
    ssize_t n = readlink(link, now, sizeof now - 1);
    bool missing = n < 0 && errno == ENOENT;
    if (n >= 0 && (size_t)n == strlen(target) && memcmp(now, target, (size_t)n) == 0) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    if (n < 0 && !missing && errno != EINVAL) /* EINVAL: not a link; replaced */
        return plan_fail(p, step, "read link %s: %s", link, strerror(errno));
    if (!p->dry_run && (r->ops->make_dir(r, REQUIRES_DIR, 0755, 0, 0, err, sizeof err) < 0 ||
                        replace_link(target, link, err, sizeof err) < 0))
        return plan_fail(p, step, "%s", err);
    plan_report(p, step, missing ? STEP_CREATED : STEP_UPDATED);
    return 0;
}

/* ---- the mount itself ---------------------------------------------------- */

typedef struct {
    bool mounted; /* something is mounted exactly on the path */
    bool nosuid, nodev;
} mount_state;

/* mountinfo spells space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *p = s; *p != '\0'; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

static bool has_option(const char *options, const char *want)
{
    size_t n = strlen(want);
    for (const char *o = options; o != NULL; o = strchr(o, ',')) {
        if (*o == ',')
            o++;
        if (strncmp(o, want, n) == 0 && (o[n] == ',' || o[n] == '\0'))
            return true;
    }
    return false;
}

/* Fields 5 and 6 of a line: mount point and per-mount options. The last
 * line for a mount point is the mount on top, the one paths resolve to. */
static void note_line(char *line, const char *real, mount_state *st)
{
    char *save = NULL, *field = strtok_r(line, " \n", &save);
    for (int i = 0; field != NULL && i < 4; i++)
        field = strtok_r(NULL, " \n", &save);
    char *options = field != NULL ? strtok_r(NULL, " \n", &save) : NULL;
    if (options == NULL)
        return;
    unescape_octal(field);
    if (strcmp(field, real) != 0)
        return;
    st->mounted = true;
    st->nosuid = has_option(options, "nosuid");
    st->nodev = has_option(options, "nodev");
}

static int read_mount_state(const char *real, mount_state *st, char *err, size_t errlen)
{
    *st = (mount_state){0};
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL) {
        snprintf(err, errlen, "read /proc/self/mountinfo: %s", strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0)
        if (len < MOUNTINFO_LINE_MAX)
            note_line(line, real, st);
    free(line);
    fclose(f);
    return 0;
}

/* The flags of the mount now under path that a bind remount would
 * otherwise clear: a read-only or noexec home stays so. Access-time flags
 * the kernel keeps by itself. */
static unsigned long kept_flags(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return 0;
    return ((sv.f_flag & ST_RDONLY) ? MS_RDONLY : 0) | ((sv.f_flag & ST_NOEXEC) ? MS_NOEXEC : 0);
}

/* `mount --bind P P` (unless something is mounted there already), then
 * `mount -o remount,bind,nosuid,nodev P`; a bind this call made is undone
 * when the remount fails, so a second run starts from the same place. */
static int mount_now(const char *real, bool mounted, char *err, size_t errlen)
{
    if (!mounted && mount(real, real, NULL, MS_BIND, NULL) < 0) {
        snprintf(err, errlen, "mount --bind %.200s %.200s: %s", real, real, strerror(errno));
        return -1;
    }
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | kept_flags(real);
    if (mount(NULL, real, NULL, flags, NULL) < 0) {
        int saved = errno;
        if (!mounted)
            umount2(real, MNT_DETACH);
        snprintf(err, errlen, "mount -o remount,bind,nosuid,nodev %.300s: %s", real,
                 strerror(saved));
        return -1;
    }
    return 0;
}

static int mount_step(plan *p, runner *r, const char *homes, const char *unit)
{
    char step[PATH_BUF + 32], mapped[PATH_BUF], real[PATH_MAX], err[ERR_LEN];
    snprintf(step, sizeof step, "mount %s nosuid,nodev", homes);
    if (runner_real_path(r, homes, mapped, sizeof mapped) < 0)
        return plan_fail(p, step, "path %s under --root is too long", homes);
    if (realpath(mapped, real) == NULL) {
        /* Only a dry run gets here without the directory; it would be made. */
        if (errno == ENOENT && p->dry_run) {
            plan_report(p, step, STEP_CREATED);
            return 0;
        }
        return plan_fail(p, step, "resolve %s: %s", mapped, strerror(errno));
    }
    mount_state st;
    if (read_mount_state(real, &st, err, sizeof err) < 0)
        return plan_fail(p, step, "%s", err);
    if (st.mounted && st.nosuid && st.nodev) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    step_outcome outcome = st.mounted ? STEP_UPDATED : STEP_CREATED;
    if (!p->dry_run && mount_now(real, st.mounted, err, sizeof err) < 0) {
        printf("  %s: NOT done here (%s); %s mounts it when systemd next starts %s\n", step, err,
               unit, AGENT_SERVICE);
        fflush(stdout);
        return 0;
    }
    plan_report(p, step, outcome);
    return 0;
}

int home_mount_steps(plan *p, runner *r, const char *homes)
{
    char unit[UNIT_NAME_MAX];
    if (systemd_mount_unit_name(homes, unit, sizeof unit) < 0)
        return plan_fail(p, "home mount", "no systemd unit name for %s: %s", homes,
                         strerror(errno));
    if (unit_step(p, r, unit, homes) < 0 || enable_step(p, r, unit) < 0)
        return -1;
    return mount_step(p, r, homes, unit);
}
