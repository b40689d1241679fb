/* The hypervisor half of create-vm. Order inside each step: ask the target,
 * compare, act only on a difference, so a second run reports unchanged
 * and a dry run touches nothing. */
#include "host/vm/hypervisor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "host/install_host.h"
#include "provision/service.h"

#define OUT_MAX (64 * 1024)
#define PLEDGES_MAX 1024
#define HOSTNAME_FILE HYPERVISOR_CONF_DIR "/hostname"
#define SSHD_PIDFILE "/run/sshd.pid"

/* CIS benchmark items for OpenSSH that do not depend on the site: no root
 * or password logins, few tries, no forwarding of X11, agents or ports,
 * idle sessions dropped. sshd takes the first value it reads and Debian's
 * and Ubuntu's sshd_config include sshd_config.d/ first, so these win. */
static const char sshd_hardening[] =
    "# Written by convocate-host create-vm: CIS-style sshd hardening.\n"
    "# Checked with 'sshd -t' before sshd was reloaded; edits are replaced on the next run.\n"
    "PermitRootLogin no\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "PermitEmptyPasswords no\n"
    "PubkeyAuthentication yes\n"
    "HostbasedAuthentication no\n"
    "IgnoreRhosts yes\n"
    "PermitUserEnvironment no\n"
    "MaxAuthTries 4\n"
    "MaxSessions 10\n"
    "LoginGraceTime 60\n"
    "X11Forwarding no\n"
    "AllowAgentForwarding no\n"
    "AllowTcpForwarding no\n"
    "ClientAliveInterval 300\n"
    "ClientAliveCountMax 3\n"
    "LogLevel VERBOSE\n";

/* ---- the operator's login ----------------------------------------------- */

typedef struct {
    uid_t uid;
    gid_t gid;
    char home[PATH_BUF];
} unix_user;

/* getent passwd name: "name:x:uid:gid:gecos:home:shell". 1 found, 0 not. */
static int lookup_user(runner *r, const char *name, unix_user *u)
{
    char *out = NULL, err[256];
    char *argv[] = {"getent", "passwd", (char *)name, NULL};
    int found = 0;
    if (r->ops->run(r, argv, &out, 4096, err, sizeof err) == 0 && out != NULL) {
        unsigned long uid, gid;
        char home[PATH_BUF];
        /* The name is [a-z0-9_-] (vm_request.c), so it holds no ':'. */
        if (sscanf(out, "%*[^:]:%*[^:]:%lu:%lu:%*[^:]:%4095[^:]:", &uid, &gid, home) == 3 ||
            sscanf(out, "%*[^:]:%*[^:]:%lu:%lu::%4095[^:]:", &uid, &gid, home) == 3) {
            u->uid = (uid_t)uid;
            u->gid = (gid_t)gid;
            snprintf(u->home, sizeof u->home, "%s", home);
            found = 1;
        }
    }
    free(out);
    return found;
}

/* "type blob" of an authorized_keys line: what makes two lines the same key. */
static size_t key_identity_len(const char *line)
{
    size_t type = strcspn(line, " \t");
    size_t gap = strspn(line + type, " \t");
    return type + gap + strcspn(line + type + gap, " \t\n");
}

static char *with_key(const char *text, size_t len, const char *pubkey)
{
    size_t id = key_identity_len(pubkey), klen = strcspn(pubkey, "\n");
    for (const char *line = text; line < text + len; line += strcspn(line, "\n") + 1) {
        if (strncmp(line, pubkey, id) == 0 && (line[id] == ' ' || line[id] == '\n' || !line[id]))
            return strdup(text);
        if (line[strcspn(line, "\n")] == '\0')
            break;
    }
    char *out = malloc(len + klen + 3);
    if (out == NULL)
        return NULL;
    bool newline = len > 0 && text[len - 1] != '\n';
    snprintf(out, len + klen + 3, "%s%s%.*s\n", text, newline ? "\n" : "", (int)klen, pubkey);
    return out;
}

int hypervisor_user_key(plan *p, runner *r, const char *username, const char *pubkey)
{
    char step[96], path[PATH_BUF + 32];
    unix_user u;
    snprintf(step, sizeof step, "user %s", username);
    bool have = lookup_user(r, username, &u) == 1;
    char *useradd[] = {
        "useradd", "--create-home", "--user-group", "--shell", "/bin/bash", (char *)username, NULL};
    if (!have && p->dry_run) {
        plan_report(p, step, STEP_CREATED);
        plan_report(p, "authorized_keys: the operator's key", STEP_CREATED);
        return 0;
    }
    if (!have && plan_run(p, r, step, useradd, NULL) < 0)
        return -1;
    if (!have && lookup_user(r, username, &u) != 1)
        return plan_fail(p, step, "useradd ran but getent does not list %s", username);
    plan_report(p, step, have ? STEP_UNCHANGED : STEP_CREATED);
    snprintf(path, sizeof path, "%s/.ssh", u.home);
    if (plan_dir(p, r, path, path, 0700, u.uid, u.gid) < 0)
        return -1;
    strncat(path, "/authorized_keys", sizeof path - strlen(path) - 1);
    char *text = NULL;
    size_t len = 0;
    int found = plan_read(p, r, path, path, &text, &len);
    if (found < 0)
        return -1;
    char *next = with_key(found ? text : "", found ? len : 0, pubkey);
    free(text);
    if (next == NULL)
        return plan_fail(p, path, "out of memory");
    int rc = plan_file(p, r, path, path, next, strlen(next), 0600, u.uid, u.gid);
    free(next);
    return rc;
}

/* ---- sshd --------------------------------------------------------------- */

/* systemd's ssh unit when systemd runs; else SIGHUP to the pid in sshd's
 * pidfile, which makes sshd re-execute itself with the new configuration
 * (sessions already open are not touched either way). */
static int reload_sshd(plan *p, runner *r)
{
    const char *step = "sshd reload";
    if (service_systemd_runs(r)) {
        char *argv[] = {"systemctl", "try-reload-or-restart", "ssh", NULL};
        return plan_run(p, r, step, argv, NULL);
    }
    char *text = NULL, comm[PATH_BUF], *cname = NULL, err[256];
    size_t len;
    if (r->ops->read_file(r, SSHD_PIDFILE, 32, &text, &len, err, sizeof err) < 0) {
        printf("  %s: no systemd and no %s on %s; reload sshd there by hand\n", step, SSHD_PIDFILE,
               r->where);
        return 0;
    }
    char *end;
    long pid = strtol(text, &end, 10);
    bool ok = pid >= 1 && (*end == '\n' || *end == '\0');
    free(text);
    snprintf(comm, sizeof comm, "/proc/%ld/comm", pid);
    /* A stale pidfile must not signal another process. */
    if (!ok || r->ops->read_file(r, comm, 64, &cname, &len, err, sizeof err) < 0 ||
        strcmp(cname, "sshd\n") != 0) {
        free(cname);
        printf("  %s: %s names no running sshd on %s; reload sshd there by hand\n", step,
               SSHD_PIDFILE, r->where);
        return 0;
    }
    free(cname);
    char pidtext[24];
    snprintf(pidtext, sizeof pidtext, "%ld", pid);
    char *argv[] = {"kill", "-HUP", pidtext, NULL};
    return plan_run(p, r, step, argv, NULL);
}

/* Puts back what was there before this run: the old file, or none. */
static int restore(runner *r, const char *prev, size_t prev_len, char *err, size_t errlen)
{
    if (prev != NULL)
        return r->ops->write_file(r, SSHD_HARDENING_FILE, prev, prev_len, 0644, 0, 0, err, errlen);
    char *argv[] = {"rm", "-f", "--", SSHD_HARDENING_FILE, NULL};
    return r->ops->run(r, argv, NULL, 0, err, errlen) == 0 ? 0 : -1;
}

int hypervisor_sshd_hardening(plan *p, runner *r)
{
    const char *step = "sshd hardening " SSHD_HARDENING_FILE;
    char *prev = NULL, *out = NULL, err[512], line[HOST_LINE_MAX];
    size_t prev_len = 0, want_len = sizeof sshd_hardening - 1;
    int have = plan_read(p, r, step, SSHD_HARDENING_FILE, &prev, &prev_len);
    if (have < 0)
        return -1;
    if (have && prev_len == want_len && memcmp(prev, sshd_hardening, want_len) == 0) {
        free(prev);
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    if (p->dry_run) {
        free(prev);
        plan_report(p, step, have ? STEP_UPDATED : STEP_CREATED);
        return 0;
    }
    if (r->ops->write_file(r, SSHD_HARDENING_FILE, sshd_hardening, want_len, 0644, 0, 0, err,
                           sizeof err) < 0) {
        free(prev);
        return plan_fail(p, step, "%s", err);
    }
    char *check[] = {"sshd", "-t", NULL};
    int status = r->ops->run(r, check, &out, OUT_MAX, err, sizeof err);
    runner_output_last_line(out, line, sizeof line);
    free(out);
    if (status != 0) {
        char rerr[512];
        int restored = restore(r, have ? prev : NULL, prev_len, rerr, sizeof rerr);
        free(prev);
        return plan_fail(p, step,
                         "sshd -t refused the configuration (%s); %s; sshd was not reloaded: "
                         "fix the sshd configuration on %s and run again",
                         status < 0 ? err : line,
                         restored == 0
                             ? (have ? "the previous file is restored" : "the new file is removed")
                             : rerr,
                         r->where);
    }
    free(prev);
    if (reload_sshd(p, r) < 0)
        return -1;
    plan_report(p, step, have ? STEP_UPDATED : STEP_CREATED);
    return 0;
}

/* ---- the host's name ---------------------------------------------------- */

int hypervisor_random_name(char *out, size_t n)
{
    /* 234 = 9 * 26: bytes from 234 up are dropped so every letter is as
     * likely as every other. */
    size_t have = 0;
    while (have < n) {
        unsigned char buf[32];
        ssize_t got = getrandom(buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        for (ssize_t i = 0; i < got && have < n; i++)
            if (buf[i] < 234)
                out[have++] = (char)('a' + buf[i] % 26);
    }
    out[n] = '\0';
    return 0;
}

static bool name_is_minted(const char *s, size_t len)
{
    return len == HYPERVISOR_NAME_LEN + 1 && s[HYPERVISOR_NAME_LEN] == '\n' &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz") == HYPERVISOR_NAME_LEN;
}

int hypervisor_minted_name(plan *p, runner *r, const char *path, char name[HYPERVISOR_NAME_LEN + 1])
{
    char *text = NULL, line[HYPERVISOR_NAME_LEN + 2];
    size_t len = 0;
    int have = plan_read(p, r, path, path, &text, &len);
    if (have < 0)
        return -1;
    bool reuse = have && name_is_minted(text, len);
    if (reuse)
        snprintf(name, HYPERVISOR_NAME_LEN + 1, "%.*s", HYPERVISOR_NAME_LEN, text);
    free(text);
    if (!reuse && hypervisor_random_name(name, HYPERVISOR_NAME_LEN) < 0)
        return plan_fail(p, path, "getrandom: %s", strerror(errno));
    snprintf(line, sizeof line, "%s\n", name);
    if (plan_dir(p, r, HYPERVISOR_CONF_DIR, HYPERVISOR_CONF_DIR, 0755, 0, 0) < 0)
        return -1;
    return plan_file(p, r, path, path, line, HYPERVISOR_NAME_LEN + 1, 0644, 0, 0);
}

/* /etc/hosts without its 127.0.1.1 lines (Debian's line for the host's own
 * name), plus ours. */
static char *hosts_with_name(const char *text, const char *name, const char *domain)
{
    size_t cap = strlen(text) + strlen(name) * 2 + strlen(domain) + 32;
    char *out = malloc(cap), *w = out;
    if (out == NULL)
        return NULL;
    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        bool ours = strncmp(line, "127.0.1.1", 9) == 0 && (line[9] == ' ' || line[9] == '\t');
        if (!ours) {
            memcpy(w, line, len);
            w += len;
            *w++ = '\n';
        }
        line += len + (line[len] == '\n');
    }
    snprintf(w, cap - (size_t)(w - out), "127.0.1.1 %s.%s %s\n", name, domain, name);
    return out;
}

/* The running kernel's name: hostnamectl under systemd, else hostname(1),
 * which a container without CAP_SYS_ADMIN cannot do: said, not fatal, as
 * /etc/hostname names the host from its next boot. */
static int running_hostname(plan *p, runner *r, const char *name)
{
    char *out = NULL, err[256], line[HOST_LINE_MAX];
    char *now[] = {"hostname", NULL};
    if (r->ops->run(r, now, &out, 4096, err, sizeof err) == 0 && out != NULL &&
        strncmp(out, name, HYPERVISOR_NAME_LEN) == 0 && out[HYPERVISOR_NAME_LEN] == '\n') {
        free(out);
        plan_report(p, "running hostname", STEP_UNCHANGED);
        return 0;
    }
    free(out);
    out = NULL;
    if (p->dry_run) {
        plan_report(p, "running hostname", STEP_UPDATED);
        return 0;
    }
    bool systemd = service_systemd_runs(r);
    char *set_ctl[] = {"hostnamectl", "set-hostname", (char *)name, NULL};
    char *set_plain[] = {"hostname", (char *)name, NULL};
    if (systemd)
        return plan_run(p, r, "running hostname", set_ctl, NULL) < 0
                   ? -1
                   : (plan_report(p, "running hostname", STEP_UPDATED), 0);
    int status = r->ops->run(r, set_plain, &out, 4096, err, sizeof err);
    runner_output_last_line(out, line, sizeof line);
    free(out);
    if (status == 0) {
        plan_report(p, "running hostname", STEP_UPDATED);
        return 0;
    }
    printf("  running hostname: not changed (%s); /etc/hostname names the host from its next "
           "boot\n",
           status < 0 ? err : line);
    fflush(stdout);
    return 0;
}

int hypervisor_hostname(plan *p, runner *r, const char *domain, char name[HYPERVISOR_NAME_LEN + 1])
{
    char line[HYPERVISOR_NAME_LEN + 2], *hosts = NULL;
    size_t len = 0;
    if (hypervisor_minted_name(p, r, HOSTNAME_FILE, name) < 0)
        return -1;
    snprintf(line, sizeof line, "%s\n", name);
    if (plan_file(p, r, "/etc/hostname", "/etc/hostname", line, HYPERVISOR_NAME_LEN + 1, 0644, 0,
                  0) < 0 ||
        plan_read(p, r, "/etc/hosts", "/etc/hosts", &hosts, &len) < 0)
        return -1;
    char *next = hosts_with_name(hosts ? hosts : "", name, domain);
    free(hosts);
    if (next == NULL)
        return plan_fail(p, "/etc/hosts", "out of memory");
    int rc = plan_file(p, r, "/etc/hosts", "/etc/hosts", next, strlen(next), 0644, 0, 0);
    free(next);
    return rc < 0 ? -1 : running_hostname(p, r, name);
}

/* ---- capacity ----------------------------------------------------------- */

static long run_number(plan *p, runner *r, const char *step, char *const argv[])
{
    char *out = NULL, *end;
    if (plan_run(p, r, step, argv, &out) < 0)
        return -1;
    long v = strtol(out ? out : "", &end, 10);
    bool ok = out != NULL && end != out && (*end == '\n' || *end == '\0') && v > 0;
    free(out);
    return ok ? v : plan_fail(p, step, "%s printed no positive number", argv[0]);
}

/* The images directory, or its nearest existing parent before libvirt is
 * installed: the filesystem the VM disks will live on. */
static const char *images_filesystem(runner *r)
{
    static const char *const dirs[] = {HYPERVISOR_IMAGES_DIR, "/var/lib/libvirt", "/var/lib", "/"};
    runner_stat st;
    char err[256];
    for (size_t i = 0; i + 1 < sizeof dirs / sizeof dirs[0]; i++)
        if (r->ops->stat_path(r, dirs[i], &st, err, sizeof err) == 0 && st.exists && st.is_dir)
            return dirs[i];
    return "/";
}

int hypervisor_totals(plan *p, runner *r, vm_resources *total)
{
    const char *step = "host capacity";
    char *nproc[] = {"nproc", NULL};
    char *df[] = {"df", "-P", "-k", (char *)images_filesystem(r), NULL};
    char *text = NULL;
    if ((total->cpu = run_number(p, r, step, nproc)) < 0 || plan_run(p, r, step, df, &text) < 0)
        return -1;
    total->disk_gb = vm_df_total_gb(text ? text : "");
    free(text);
    text = NULL;
    size_t len;
    if (plan_read(p, r, step, "/proc/meminfo", &text, &len) <= 0)
        return text == NULL ? plan_fail(p, step, "cannot read /proc/meminfo") : -1;
    total->ram_mb = vm_meminfo_total_mb(text);
    free(text);
    if (total->disk_gb < 0 || total->ram_mb < 0)
        return plan_fail(p, step, "cannot read the size of %s or MemTotal on %s",
                         images_filesystem(r), r->where);
    printf("  host capacity: %ld CPUs, %ld MB RAM, %ld GB on %s\n", total->cpu, total->ram_mb,
           total->disk_gb, images_filesystem(r));
    fflush(stdout);
    return 0;
}

static int add_pledge(plan *p, runner *r, const char *path, vm_resources *sum)
{
    char *text = NULL;
    size_t len;
    vm_resources one;
    if (plan_read(p, r, "pledges", path, &text, &len) <= 0)
        return -1;
    int bad = vm_pledge_parse(text, &one);
    free(text);
    if (bad < 0)
        return plan_fail(p, "pledges",
                         "%s is not a pledge file (cpu=N, ram_mb=N, disk_gb=N); fix or remove it",
                         path);
    sum->cpu += one.cpu;
    sum->ram_mb += one.ram_mb;
    sum->disk_gb += one.disk_gb;
    return 0;
}

int hypervisor_pledged(plan *p, runner *r, vm_resources *pledged)
{
    runner_stat st;
    char err[256], *out = NULL;
    *pledged = (vm_resources){0, 0, 0};
    if (r->ops->stat_path(r, HYPERVISOR_PLEDGE_DIR, &st, err, sizeof err) < 0)
        return plan_fail(p, "pledges", "%s", err);
    if (!st.exists)
        return 0;
    char *find[] = {
        "find", HYPERVISOR_PLEDGE_DIR, "-maxdepth", "1", "-type", "f", "-name", "*.pledge", NULL};
    if (plan_run(p, r, "pledges", find, &out) < 0)
        return -1;
    int n = 0, rc = 0;
    char *save = NULL;
    for (char *line = out != NULL ? strtok_r(out, "\n", &save) : NULL; line != NULL && rc == 0;
         line = strtok_r(NULL, "\n", &save))
        rc = ++n > PLEDGES_MAX ? plan_fail(p, "pledges", "more than %d files in %s", PLEDGES_MAX,
                                           HYPERVISOR_PLEDGE_DIR)
                               : add_pledge(p, r, line, pledged);
    free(out);
    if (rc == 0)
        printf("  pledges: %d VM%s: %ld CPUs, %ld MB RAM, %ld GB disk\n", n, n == 1 ? "" : "s",
               pledged->cpu, pledged->ram_mb, pledged->disk_gb);
    return rc;
}

int hypervisor_machine_slice(plan *p, runner *r, const vm_resources *total)
{
    char text[512];
    int n = snprintf(text, sizeof text,
                     "# Written by convocate-host create-vm: libvirt's VMs together get at most\n"
                     "# %d%% of this host's %ld CPUs and %ld MB of RAM.\n"
                     "[Slice]\n"
                     "CPUQuota=%ld%%\n"
                     "MemoryMax=%ldM\n",
                     VM_ADMIT_PERCENT, total->cpu, total->ram_mb, total->cpu * VM_ADMIT_PERCENT,
                     total->ram_mb / 100 * VM_ADMIT_PERCENT +
                         total->ram_mb % 100 * VM_ADMIT_PERCENT / 100);
    int before = p->changes;
    if (plan_dir(p, r, "machine.slice.d", "/etc/systemd/system/machine.slice.d", 0755, 0, 0) < 0 ||
        plan_file(p, r, MACHINE_SLICE_FILE, MACHINE_SLICE_FILE, text, (size_t)n, 0644, 0, 0) < 0)
        return -1;
    if (p->changes == before || p->dry_run)
        return 0;
    if (!service_systemd_runs(r)) {
        printf("  machine.slice: systemd is not running on %s; the cap applies from its next "
               "start\n",
               r->where);
        return 0;
    }
    char *reload[] = {"systemctl", "daemon-reload", NULL};
    return plan_run(p, r, "machine.slice", reload, NULL);
}

/* ---- KVM ---------------------------------------------------------------- */

int hypervisor_kvm_check(plan *p, runner *r)
{
    runner_stat st;
    char err[256];
    if (r->ops->stat_path(r, "/dev/kvm", &st, err, sizeof err) < 0)
        return plan_fail(p, "/dev/kvm", "%s", err);
    if (!st.exists || st.is_dir || st.is_reg)
        return plan_fail(p, "/dev/kvm",
                         "%s has no /dev/kvm, so it cannot run VMs: enable virtualization "
                         "(VT-x/AMD-V) in its firmware, or nested virtualization when it is a VM "
                         "itself, load kvm_intel or kvm_amd, and run again",
                         r->where);
    printf("  /dev/kvm: present\n");
    fflush(stdout);
    return 0;
}

int hypervisor_packages(plan *p, runner *r)
{
    /* qemu-system-x86 is the real package behind Ubuntu's qemu-kvm and is
     * named alike on Debian; qemu-utils brings qemu-img for the disks. */
    static const char *const pkgs[] = {"qemu-system-x86", "qemu-utils", "libvirt-daemon-system",
                                       "virtinst"};
    return host_apt_install(p, r, "kvm packages", pkgs, sizeof pkgs / sizeof pkgs[0]);
}
