/* convocate-host install: every step asks the target first (dpkg-query,
 * apt-get -s, getent, the ufw rules file) and acts only on a difference,
 * so a second run changes nothing and a dry run touches nothing. Steps
 * that run programs act on a whole machine: on this machine they are
 * taken only when --root is /, never under a test or packaging root. */
#include "host/install_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provision/service.h"

#define OUT_MAX (256 * 1024)
#define TZ_NAME "Etc/UTC"
#define TZ_FILE "/usr/share/zoneinfo/" TZ_NAME
#define REBOOT_FLAG "/var/run/reboot-required"
#define BOOT_ID "/proc/sys/kernel/random/boot_id"
#define CLAUDE_ID "1337"

/* apt never asks; a changed conffile keeps the operator's version. */
#define APT_GET                                                                                    \
    "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y", "-o",                          \
        "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"

static const char *const base_packages[] = {
    "dnsmasq",
    "jq",
    "curl",
    "git",
    "ufw",
    "ca-certificates",
    "openssh-server",
    "rsyslog",
    "rsyslog-openssl",
    "tzdata",
    /* The runtime libraries convocate, convocate-agent and convocate-host
     * link that a server base lacks: they are deployed as bare binaries
     * (init-shell, init-agent, update), not as packages that would pull
     * these in. libcurl comes with curl, OpenSSL with openssh-server,
     * ncurses with the base; the names are the same on Debian 12 and
     * Ubuntu 22.04 and 24.04. */
    "libssh-4",
    "libjansson4",
};
#define N_BASE (sizeof base_packages / sizeof base_packages[0])

int host_role_parse(const char *s, host_role *out)
{
    static const struct {
        const char *name;
        host_role role;
    } roles[] = {{"shell", HOST_ROLE_SHELL}, {"agent", HOST_ROLE_AGENT}, {"both", HOST_ROLE_BOTH}};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(s, roles[i].name) == 0) {
            *out = roles[i].role;
            return 0;
        }
    return -1;
}

/* ---- running programs on the target ------------------------------------ */

/* Exit status only, output dropped: for questions like "is X installed". */
static int ask(runner *r, char *const argv[])
{
    char err[512];
    return r->ops->run(r, argv, NULL, 0, err, sizeof err);
}

/* ---- apt ---------------------------------------------------------------- */

int host_apt_update(plan *p, runner *r)
{
    /* Refreshing the package lists changes nothing the plan compares, so
     * it is not counted as a change; a dry run leaves the lists alone. */
    if (p->dry_run) {
        printf("  apt-get update: would run\n");
        return 0;
    }
    char *argv[] = {APT_GET, "update", NULL};
    if (plan_run(p, r, "apt-get update", argv, NULL) < 0)
        return -1;
    printf("  apt-get update: done\n");
    fflush(stdout);
    return 0;
}

static int count_prefixed_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *line = text; line != NULL && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, prefix, len) == 0)
            n++;
    }
    return n;
}

int host_dist_upgrade(plan *p, runner *r)
{
    const char *step = "dist-upgrade";
    char *sim = NULL, name[64];
    char *simulate[] = {"apt-get", "-s", "-q", "dist-upgrade", NULL};
    if (plan_run(p, r, step, simulate, &sim) < 0)
        return -1;
    int n = count_prefixed_lines(sim, "Inst ");
    free(sim);
    if (n == 0) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    snprintf(name, sizeof name, "dist-upgrade (%d package%s)", n, n == 1 ? "" : "s");
    char *argv[] = {APT_GET, "dist-upgrade", NULL};
    if (!p->dry_run && plan_run(p, r, step, argv, NULL) < 0)
        return -1;
    plan_report(p, name, STEP_UPDATED);
    return 0;
}

/* True when dpkg says the package is installed (not merely known). */
static bool dpkg_installed(runner *r, const char *pkg)
{
    char *out = NULL, err[512];
    char *argv[] = {"dpkg-query", "-W", "-f=${Status}", (char *)pkg, NULL};
    bool yes = r->ops->run(r, argv, &out, 4096, err, sizeof err) == 0 && out != NULL &&
               strstr(out, " ok installed") != NULL;
    free(out);
    return yes;
}

/* True when apt could install pkg: "Candidate: <version>", not "(none)";
 * apt-cache show alone also answers for a package only named by others. */
static bool apt_candidate(runner *r, const char *pkg)
{
    char *out = NULL, err[512];
    char *argv[] = {"apt-cache", "policy", (char *)pkg, NULL};
    bool yes = false;
    if (r->ops->run(r, argv, &out, 65536, err, sizeof err) == 0 && out != NULL) {
        const char *c = strstr(out, "Candidate: ");
        yes = c != NULL && strncmp(c + 11, "(none)", 6) != 0 && c[11] != '\n';
    }
    free(out);
    return yes;
}

/* Docker from Docker's own repository when the host has it configured
 * (or installed), else Debian's and Ubuntu's docker.io. */
static const char *docker_package(runner *r)
{
    if (dpkg_installed(r, "docker-ce"))
        return "docker-ce";
    if (dpkg_installed(r, "docker.io"))
        return "docker.io";
    return apt_candidate(r, "docker-ce") ? "docker-ce" : "docker.io";
}

int host_apt_install(plan *p, runner *r, const char *step, const char *const pkgs[], size_t n_pkgs)
{
    enum { MAX_PKGS = 32 };
    char *const apt[] = {APT_GET, "install"};
    char *argv[sizeof apt / sizeof apt[0] + MAX_PKGS + 1];
    char name[512];
    size_t at = 0, n = 0;
    if (n_pkgs > MAX_PKGS)
        return plan_fail(p, step, "%zu packages asked for, at most %d", n_pkgs, MAX_PKGS);
    snprintf(name, sizeof name, "%s:", step);
    for (size_t i = 0; i < sizeof apt / sizeof apt[0]; i++)
        argv[at++] = apt[i];
    for (size_t i = 0; i < n_pkgs; i++) {
        if (dpkg_installed(r, pkgs[i]))
            continue;
        argv[at++] = (char *)pkgs[i];
        n++;
        strncat(name, " ", sizeof name - strlen(name) - 1);
        strncat(name, pkgs[i], sizeof name - strlen(name) - 1);
    }
    argv[at] = NULL;
    if (n == 0) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    if (!p->dry_run && plan_run(p, r, step, argv, NULL) < 0)
        return -1;
    plan_report(p, name, STEP_CREATED);
    return 0;
}

static int packages(plan *p, runner *r, bool *will_have_ufw)
{
    const char *want[N_BASE + 1];
    want[0] = docker_package(r);
    for (size_t i = 0; i < N_BASE; i++)
        want[i + 1] = base_packages[i];
    /* ufw's rules file can only be asked once ufw is there. */
    *will_have_ufw = !dpkg_installed(r, "ufw");
    return host_apt_install(p, r, "packages", want, N_BASE + 1);
}

/* ---- user, timezone ----------------------------------------------------- */

static int claude_user(plan *p, runner *r)
{
    gid_t gid;
    bool have_group = r->ops->lookup_group(r, "claude", &gid) == 0;
    char *groupadd[] = {"groupadd", "--gid", CLAUDE_ID, "claude", NULL};
    if (!have_group && !p->dry_run && plan_run(p, r, "group claude", groupadd, NULL) < 0)
        return -1;
    plan_report(p, "group claude (1337)", have_group ? STEP_UNCHANGED : STEP_CREATED);
    char *getent[] = {"getent", "passwd", "claude", NULL};
    bool have_user = ask(r, getent) == 0;
    char *useradd[] = {"useradd", "--uid",      CLAUDE_ID,      "--gid",
                       "claude",  "--home-dir", "/home/claude", "--create-home",
                       "--shell", "/bin/bash",  "claude",       NULL};
    if (!have_user && !p->dry_run && plan_run(p, r, "user claude", useradd, NULL) < 0)
        return -1;
    plan_report(p, "user claude (1337)", have_user ? STEP_UNCHANGED : STEP_CREATED);
    return 0;
}

static int timezone_with_timedatectl(plan *p, runner *r)
{
    const char *step = "timezone " TZ_NAME;
    char *out = NULL;
    char *show[] = {"timedatectl", "show", "--property=Timezone", "--value", NULL};
    if (plan_run(p, r, step, show, &out) < 0)
        return -1;
    bool same = out != NULL && strncmp(out, TZ_NAME "\n", sizeof TZ_NAME) == 0;
    free(out);
    char *set[] = {"timedatectl", "set-timezone", TZ_NAME, NULL};
    if (!same && !p->dry_run && plan_run(p, r, step, set, NULL) < 0)
        return -1;
    plan_report(p, step, same ? STEP_UNCHANGED : STEP_UPDATED);
    return 0;
}

/* Without systemd (a container, an early boot): the two files timedatectl
 * would have written. */
static int timezone_by_files(plan *p, runner *r)
{
    static const char tz_line[] = TZ_NAME "\n";
    if (plan_file(p, r, "/etc/timezone", "/etc/timezone", tz_line, sizeof tz_line - 1, 0644, 0, 0) <
        0)
        return -1;
    const char *step = "/etc/localtime -> " TZ_FILE;
    char *out = NULL, err[256];
    char *readlink[] = {"readlink", "/etc/localtime", NULL};
    int status = r->ops->run(r, readlink, &out, 4096, err, sizeof err);
    bool same = status == 0 && out != NULL && strcmp(out, TZ_FILE "\n") == 0;
    free(out);
    char *ln[] = {"ln", "-sfn", TZ_FILE, "/etc/localtime", NULL};
    if (!same && !p->dry_run && plan_run(p, r, step, ln, NULL) < 0)
        return -1;
    plan_report(p, step, same ? STEP_UNCHANGED : STEP_UPDATED);
    return 0;
}

/* ---- firewall ----------------------------------------------------------- */

/* ufw keeps its added rules in user.rules with one "### tuple ###" comment
 * each; reading it answers "is this port open" without running ufw, so a
 * dry run asks nothing of the kernel either. */
static bool ufw_has_rule(plan *p, runner *r, const char *port)
{
    char *text = NULL, want[96];
    size_t len;
    if (plan_read(p, r, "ufw rules", "/etc/ufw/user.rules", &text, &len) <= 0)
        return false;
    snprintf(want, sizeof want, "### tuple ### allow tcp %s 0.0.0.0/0 any 0.0.0.0/0 in\n", port);
    bool yes = strstr(text, want) != NULL;
    free(text);
    return yes;
}

void host_ufw_allow(plan *p, runner *r, const char *port, bool will_have_ufw)
{
    char step[64], rule[32], *out = NULL, err[512], line[HOST_LINE_MAX];
    snprintf(step, sizeof step, "ufw allow %s/tcp", port);
    snprintf(rule, sizeof rule, "%s/tcp", port);
    if (!will_have_ufw && ufw_has_rule(p, r, port)) {
        plan_report(p, step, STEP_UNCHANGED);
        return;
    }
    if (p->dry_run) {
        plan_report(p, step, STEP_CREATED);
        return;
    }
    char *argv[] = {"ufw", "allow", rule, NULL};
    int status = r->ops->run(r, argv, &out, OUT_MAX, err, sizeof err);
    runner_output_last_line(out, line, sizeof line);
    free(out);
    if (status == 0) {
        plan_report(p, step, STEP_CREATED);
        return;
    }
    /* A container without its own kernel firewall cannot load the rules:
     * the host is still usable, so say so and go on. */
    printf("  %s: not applied (%s); continuing\n", step, status < 0 ? err : line);
    fflush(stdout);
}

static void firewall(plan *p, runner *r, host_role role, bool will_have_ufw)
{
    if (!will_have_ufw && !r->ops->has_program(r, "ufw")) {
        printf("  ufw: skipped (not installed)\n");
        return;
    }
    host_ufw_allow(p, r, "22", will_have_ufw);
    if (role & HOST_ROLE_AGENT)
        host_ufw_allow(p, r, "222", will_have_ufw);
    if (role & HOST_ROLE_SHELL) {
        host_ufw_allow(p, r, "223", will_have_ufw);
        host_ufw_allow(p, r, "514", will_have_ufw);
    }
}

/* ---- reboot ------------------------------------------------------------- */

static int read_boot_id(runner *r, char out[64])
{
    char *text = NULL, err[256];
    size_t len;
    if (r->ops->read_file(r, BOOT_ID, 64, &text, &len, err, sizeof err) < 0)
        return -1;
    snprintf(out, 64, "%.*s", (int)strcspn(text, "\n"), text);
    free(text);
    return 0;
}

/* Reboots and dials again until the host answers with a new boot id: an
 * answer from the old boot (the reboot not yet begun) does not count. */
static int reboot_and_wait(plan *p, runner *r, const install_host_options *o)
{
    const char *step = "reboot";
    int poll = o->reboot_poll_seconds > 0 ? o->reboot_poll_seconds : 30;
    int wait = o->reboot_wait_seconds > 0 ? o->reboot_wait_seconds : 600;
    char before[64] = "", after[64], err[512];
    if (read_boot_id(r, before) < 0)
        return plan_fail(p, step, "cannot read %s on %s", BOOT_ID, r->where);
    /* In the background, so the command returns before sshd goes down. */
    char *argv[] = {"sh", "-c", "(sleep 2; reboot) </dev/null >/dev/null 2>&1 &", NULL};
    if (plan_run(p, r, step, argv, NULL) < 0)
        return -1;
    printf("  reboot: rebooting %s; waiting up to %d s\n", r->where, wait);
    fflush(stdout);
    for (int waited = 0; waited < wait; waited += poll) {
        sleep((unsigned)poll);
        if (runner_remote_redial(r, err, sizeof err) == 0 && read_boot_id(r, after) == 0 &&
            strcmp(after, before) != 0) {
            plan_report(p, step, STEP_UPDATED);
            return 0;
        }
        printf("  reboot: not back yet (%d s)\n", waited + poll);
        fflush(stdout);
    }
    return plan_fail(p, step, "%s did not come back within %d s (last: %s); check its console",
                     r->where, wait, err);
}

int host_reboot_if_required(plan *p, runner *r, const install_host_options *o)
{
    runner_stat st;
    char err[512];
    if (r->ops->stat_path(r, REBOOT_FLAG, &st, err, sizeof err) < 0)
        return plan_fail(p, "reboot", "%s", err);
    if (!st.exists) {
        printf("  reboot: not required\n");
        return 0;
    }
    if (!r->remote) {
        printf("  reboot: required (%s), not done: this host is never rebooted by us; "
               "reboot it when convenient\n",
               REBOOT_FLAG);
        return 0;
    }
    if (o->no_reboot) {
        printf("  reboot: required (%s), skipped (--no-reboot)\n", REBOOT_FLAG);
        return 0;
    }
    if (p->dry_run) {
        plan_report(p, "reboot", STEP_UPDATED);
        return 0;
    }
    return reboot_and_wait(p, r, o);
}

int install_host_steps(plan *p, runner *r, const install_host_options *o)
{
    if (!r->remote && !runner_is_real_root(r)) {
        printf("  packages, user, timezone, firewall: skipped (--root is not /: they would "
               "change this whole machine)\n");
        return 0;
    }
    bool will_have_ufw = false;
    if (host_apt_update(p, r) < 0 || host_dist_upgrade(p, r) < 0 ||
        packages(p, r, &will_have_ufw) < 0 || claude_user(p, r) < 0)
        return -1;
    if ((service_systemd_runs(r) ? timezone_with_timedatectl(p, r) : timezone_by_files(p, r)) < 0)
        return -1;
    /* On a dry run ufw may not be there yet; the real run installs it. */
    firewall(p, r, o->role, will_have_ufw && p->dry_run);
    return host_reboot_if_required(p, r, o);
}
