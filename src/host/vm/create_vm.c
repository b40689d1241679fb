/* create-vm in the order that keeps a failure cheap: everything that can be
 * checked on this machine first (the request, the operator's key, the
 * hypervisor's address, the ISO and its digest), then the hypervisor's own
 * setup, then admission and the VM cap, then /dev/kvm before any KVM
 * package is installed (a host without it could never run the VM), and
 * last the large ISO upload and virt-install. The VM's pledge is written
 * only once virt-install has defined it. */
#include "host/vm/create_vm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/hostport.h"
#include "provision/digest.h"
#include "host/vm/hypervisor.h"
#include "host/install_host.h"
#include "host/vm/iso_cache.h"
#include "provision/plan.h"
#include "provision/progress.h"
#include "provision/runner.h"
#include "ssh/target.h"
#include "host/vm/virt_install.h"
#include "host/vm/admission.h"
#include "host/vm/request.h"
#include "host/vm/seed.h"
#include "provision/dnsmasq_hosts.h"
#include "common/layout.h"

#define EXIT_USAGE 2
#define CMD "convocate-host create-vm"
#define DNSMASQ_PIDFILE "/run/dnsmasq/dnsmasq.pid"

typedef struct {
    const char *root; /* the shell's files (its dnsmasq-hosts) */
    const char *hypervisor;
    const char *username;
    const char *domain;
    const char *iso;
    const char *iso_cache;
    const char *pubkey_path;
    const char *os_variant;
    char sha256[SHA256_HEX_LEN + 1];
    vm_resources req; /* disk_gb: osdisk + datadisk */
    long osdisk_gb, datadisk_gb;
    bool dry_run;
    remote_options remote;
    install_host_options install;
} create_vm_options;

static void usage(FILE *out)
{
    fprintf(out, "usage: convocate-host create-vm --hypervisor H[:PORT] --username U --domain D\n"
                 "             --cpu N --ram MB --osdisk GB --datadisk GB\n"
                 "             --iso PATH_OR_URL --iso-sha256 HEX [--iso-cache DIR]\n"
                 "             [--pubkey PATH] [--os-variant ID] [--root DIR] [--no-reboot]\n"
                 "             [--dry-run] [--user U] [--port N] [--identity PATH]\n"
                 "             [--known-hosts PATH] [--accept-new-host-key] [-v]\n"
                 "  makes a KVM hypervisor of H and boots an Ubuntu VM there from the live-server\n"
                 "  ISO the operator names (a path or file/http/https URL; its SHA-256 is\n"
                 "  required and checked; cached under --iso-cache, default\n"
                 "  ~/.cache/convocate/iso). On H: user U with the operator's public key\n"
                 "  (--pubkey, default the --identity key's .pub or ~/.ssh/id_*.pub), an sshd\n"
                 "  hardening drop-in checked with sshd -t, a random 8-letter host name in\n"
                 "  /etc/hostname and /etc/hosts, dist-upgrade and reboot (not with --no-reboot),\n"
                 "  admission (VM pledges plus this one within 90%% of CPU, RAM and disk),\n"
                 "  a machine.slice cap of 90%%, a NoCloud seed, the /dev/kvm check, qemu,\n"
                 "  libvirt and virtinst, virt-install. On this machine (under --root): the line\n"
                 "  '<ip of H> <name>.D <name>' in /var/lib/convocate/dnsmasq-hosts.\n"
                 "  Limits: cpu >= 1, ram >= 512, osdisk >= 5, datadisk >= 1. --os-variant is\n"
                 "  virt-install's osinfo id (default ubuntu22.04). The VM installs itself; then\n"
                 "  run 'convocate-host install --host <vm> --user U' and init-agent.\n");
}

enum {
    V_HYPERVISOR = 256,
    V_USERNAME,
    V_DOMAIN,
    V_CPU,
    V_RAM,
    V_OSDISK,
    V_DATADISK,
    V_ISO,
    V_ISO_SHA256,
    V_ISO_CACHE,
    V_PUBKEY,
    V_OS_VARIANT,
    V_ROOT,
    V_NO_REBOOT,
    V_DRY_RUN,
};

static const struct option vm_opts[] = {
    {"hypervisor", required_argument, NULL, V_HYPERVISOR},
    {"username", required_argument, NULL, V_USERNAME},
    {"domain", required_argument, NULL, V_DOMAIN},
    {"cpu", required_argument, NULL, V_CPU},
    {"ram", required_argument, NULL, V_RAM},
    {"osdisk", required_argument, NULL, V_OSDISK},
    {"datadisk", required_argument, NULL, V_DATADISK},
    {"iso", required_argument, NULL, V_ISO},
    {"iso-sha256", required_argument, NULL, V_ISO_SHA256},
    {"iso-cache", required_argument, NULL, V_ISO_CACHE},
    {"pubkey", required_argument, NULL, V_PUBKEY},
    {"os-variant", required_argument, NULL, V_OS_VARIANT},
    {"root", required_argument, NULL, V_ROOT},
    {"no-reboot", no_argument, NULL, V_NO_REBOOT},
    {"dry-run", no_argument, NULL, V_DRY_RUN},
    REMOTE_LONG_OPTIONS,
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, CMD ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'convocate-host create-vm --help')\n");
    return -1;
}

/* The sizes; each refusal names its option and its bounds. */
static int size_option(int c, create_vm_options *o)
{
    static const struct {
        int opt;
        const char *text;
        long min, max;
    } sizes[] = {
        {V_CPU, "--cpu needs a whole number of CPUs from 1 to 1024", VM_CPU_MIN, VM_CPU_MAX},
        {V_RAM, "--ram needs MB from 512 to 4194304", VM_RAM_MIN_MB, VM_RAM_MAX_MB},
        {V_OSDISK, "--osdisk needs GB from 5 to 65536", VM_OSDISK_MIN_GB, VM_DISK_MAX_GB},
        {V_DATADISK, "--datadisk needs GB from 1 to 65536", VM_DATADISK_MIN_GB, VM_DISK_MAX_GB},
    };
    long *slots[] = {&o->req.cpu, &o->req.ram_mb, &o->osdisk_gb, &o->datadisk_gb};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].opt == c)
            return vm_parse_count(optarg, sizes[i].min, sizes[i].max, slots[i]) < 0
                       ? usage_error("%s", sizes[i].text)
                       : 0;
    return usage_error("%s", "unknown option");
}

static int other_option(int c, create_vm_options *o)
{
    switch (c) {
    case V_HYPERVISOR:
        o->hypervisor = optarg;
        return 0;
    case V_USERNAME:
        o->username = optarg;
        return vm_username_is_valid(optarg)
                   ? 0
                   : usage_error("--username needs a login name of [a-z_][a-z0-9_-]*, at most "
                                 "32 characters, not root (got \"%s\")",
                                 optarg);
    case V_DOMAIN:
        o->domain = optarg;
        return vm_domain_is_valid(optarg)
                   ? 0
                   : usage_error("--domain needs a lowercase DNS domain of two or more labels "
                                 "(got \"%s\")",
                                 optarg);
    case V_ISO:
        o->iso = optarg;
        return optarg[0] != '\0' ? 0 : usage_error("%s", "--iso needs a path or URL");
    case V_ISO_SHA256:
        return iso_sha256_parse(optarg, o->sha256)
                   ? 0
                   : usage_error("%s", "--iso-sha256 needs the ISO's SHA-256 as 64 hex digits");
    case V_ISO_CACHE:
        o->iso_cache = optarg;
        return 0;
    case V_PUBKEY:
        o->pubkey_path = optarg;
        return 0;
    case V_OS_VARIANT:
        o->os_variant = optarg;
        return strspn(optarg, "abcdefghijklmnopqrstuvwxyz0123456789.-") == strlen(optarg) &&
                       optarg[0] != '\0' && strlen(optarg) < 64
                   ? 0
                   : usage_error("%s", "--os-variant needs an osinfo id like ubuntu22.04");
    case V_ROOT:
        o->root = optarg;
        return 0;
    case V_NO_REBOOT:
        o->install.no_reboot = true;
        return 0;
    case V_DRY_RUN:
        o->dry_run = true;
        return 0;
    default: {
        char err[128];
        int rc = remote_option_apply(c, optarg, &o->remote, err, sizeof err);
        if (rc < 0)
            return usage_error("%s", err);
        return rc > 0 ? 0 : size_option(c, o);
    }
    }
}

/* Every required option, named when missing. */
static int check_required(const create_vm_options *o)
{
    const struct {
        bool given;
        const char *name;
    } need[] = {
        {o->hypervisor != NULL, "--hypervisor H"},
        {o->username != NULL, "--username U"},
        {o->domain != NULL, "--domain D"},
        {o->req.cpu > 0, "--cpu N"},
        {o->req.ram_mb > 0, "--ram MB"},
        {o->osdisk_gb > 0, "--osdisk GB"},
        {o->datadisk_gb > 0, "--datadisk GB"},
        {o->iso != NULL, "--iso PATH_OR_URL"},
        {o->sha256[0] != '\0', "--iso-sha256 HEX"},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!need[i].given)
            return usage_error("%s is required", need[i].name);
    return 0;
}

/* 0 to go on, 1 for help, -1 after a usage error. */
static int parse(int argc, char **argv, create_vm_options *o)
{
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "vh", vm_opts, NULL)) != -1) {
        if (c == 'h')
            return 1;
        if (c == 'v')
            continue; /* read by main */
        if (c == '?' || c == ':')
            return usage_error("%s", "unknown option or missing value");
        if (other_option(c, o) < 0)
            return -1;
    }
    if (optind < argc)
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    if (check_required(o) < 0)
        return -1;
    o->req.disk_gb = o->osdisk_gb + o->datadisk_gb;
    return 0;
}

/* ---- what this machine knows before connecting --------------------------- */

/* The operator's public key: --pubkey, else the .pub of --identity, else
 * the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub. */
static int read_pubkey(plan *p, const create_vm_options *o, char *out, size_t size)
{
    static const char *const defaults[] = {"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"};
    char path[PATH_BUF] = "", *text = NULL;
    const char *home = getenv("HOME");
    if (o->pubkey_path != NULL)
        snprintf(path, sizeof path, "%s", o->pubkey_path);
    else if (o->remote.identity != NULL)
        snprintf(path, sizeof path, "%s.pub", o->remote.identity);
    for (size_t i = 0; path[0] == '\0' && home != NULL && i < 3; i++) {
        char candidate[PATH_BUF];
        snprintf(candidate, sizeof candidate, "%s/.ssh/%s", home, defaults[i]);
        if (access(candidate, R_OK) == 0)
            snprintf(path, sizeof path, "%s", candidate);
    }
    if (path[0] == '\0')
        return plan_fail(p, "operator key", "no ~/.ssh/id_*.pub found; name one with --pubkey");
    if (read_file_bounded(path, VM_PUBKEY_MAX + 2, &text, NULL) < 0)
        return plan_fail(p, "operator key", "read %s: %s", path, strerror(errno));
    text[strcspn(text, "\n")] = '\0';
    bool ok = vm_pubkey_is_valid(text) && strlen(text) < size;
    if (ok)
        snprintf(out, size, "%s", text);
    free(text);
    return ok ? 0 : plan_fail(p, "operator key", "%s is not one OpenSSH public key line", path);
}

/* The address the shell's DNS should give the hypervisor's name: the one
 * this machine reaches it at. */
static int hypervisor_address(plan *p, const char *hypervisor, char *ip, size_t size)
{
    char host[256];
    int port;
    if (parse_host_port(hypervisor, 22, host, sizeof host, &port) < 0)
        return plan_fail(p, "--hypervisor", "\"%s\" is not H, H:PORT or [v6]:PORT", hypervisor);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0)
        return plan_fail(p, "--hypervisor", "cannot resolve %s: %s", host, gai_strerror(rc));
    rc = getnameinfo(res->ai_addr, res->ai_addrlen, ip, (socklen_t)size, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    return rc == 0 ? 0 : plan_fail(p, "--hypervisor", "%s: %s", host, gai_strerror(rc));
}

/* The hardening drop-in forbids root logins: a run that logs in as root
 * would lock itself out at its next connection (a reboot, a second run),
 * so it is refused before anything is touched. */
static int check_login_user(plan *p, const create_vm_options *o)
{
    dial_target t;
    char err[512];
    if (dial_target_init(&t, o->hypervisor, o->remote.port, o->remote.user, o->remote.known_hosts,
                         o->remote.identity, o->remote.accept_new_host_key, 0, err, sizeof err) < 0)
        return plan_fail(p, "--hypervisor", "%s", err);
    if (strcmp(t.user, "root") != 0)
        return 0;
    return plan_fail(p, "--user",
                     "the sshd hardening create-vm installs forbids root logins, so logging in "
                     "as root would lock this run out of %s: log in as a user with passwordless "
                     "sudo (--user NAME)",
                     o->hypervisor);
}

/* ---- the shell's DNS ----------------------------------------------------- */

/* --root is opened again for the dnsmasq line; checked here so a wrong one
 * stops the run before the hypervisor is touched. */
static int check_shell_root(plan *p, const create_vm_options *o)
{
    char err[512];
    runner *shell = runner_local_new(o->root, err, sizeof err);
    if (shell == NULL)
        return plan_fail(p, "--root", "%s", err);
    runner_free(shell);
    return 0;
}

static int dns_line(plan *p, const create_vm_options *o, const char *name, const char *ip)
{
    char err[512], pidfile[PATH_BUF], *text = NULL;
    size_t len = 0;
    runner *shell = runner_local_new(o->root, err, sizeof err);
    if (shell == NULL)
        return plan_fail(p, "--root", "%s", err);
    int before = p->changes,
        rc = plan_read(p, shell, SHELL_DNSMASQ_HOSTS, SHELL_DNSMASQ_HOSTS, &text, &len);
    char *next = rc < 0 ? NULL : dns_hosts_edit(text ? text : "", o->domain, name, name, ip);
    free(text);
    if (rc >= 0 && next == NULL)
        rc = plan_fail(p, SHELL_DNSMASQ_HOSTS, "out of memory");
    if (rc >= 0)
        rc = plan_file(p, shell, SHELL_DNSMASQ_HOSTS, SHELL_DNSMASQ_HOSTS, next, strlen(next), 0644,
                       KEEP_OWNER, 0);
    free(next);
    if (rc >= 0 && p->changes != before && !p->dry_run &&
        runner_real_path(shell, DNSMASQ_PIDFILE, pidfile, sizeof pidfile) == 0)
        dns_hosts_reload(pidfile);
    runner_free(shell);
    return rc < 0 ? -1 : 0;
}

/* ---- the VM ------------------------------------------------------------- */

typedef struct {
    char name[HYPERVISOR_NAME_LEN + 1];
    char iso[PATH_BUF], seed[PATH_BUF], os_disk[PATH_BUF], data_disk[PATH_BUF];
} vm_paths;

static int admission(plan *p, runner *r, const create_vm_options *o, vm_resources *total)
{
    vm_resources pledged;
    char why[512];
    if (hypervisor_totals(p, r, total) < 0 || hypervisor_pledged(p, r, &pledged) < 0)
        return -1;
    if (vm_admit(total, &pledged, &o->req, why, sizeof why) < 0)
        return plan_fail(p, r->where, "%s", why);
    printf("  admission: %ld CPUs, %ld MB RAM, %ld GB disk fit within %d%% of %s\n", o->req.cpu,
           o->req.ram_mb, o->req.disk_gb, VM_ADMIT_PERCENT, r->where);
    fflush(stdout);
    return 0;
}

/* Uploads a local file, with a progress bar (the ISO is large), unless
 * the target already holds the same bytes. */
static int upload_verified(plan *p, runner *r, const char *step, const char *local,
                           const char *target, const char *sha256)
{
    char have[SHA256_HEX_LEN + 1], err[1024];
    if (digest_target_file(r, target, have, err, sizeof err) == 0 && strcmp(have, sha256) == 0) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    if (!p->dry_run) {
        if (progress_upload(r, "upload", local, target, 0644, 0, 0, err, sizeof err) < 0)
            return plan_fail(p, step, "%s", err);
        if (digest_check_target(p, r, step, target, sha256) < 0)
            return -1;
    }
    plan_report(p, step, STEP_CREATED);
    return 0;
}

/* The seed is remade and sent only when its texts change; the digest of
 * the texts is kept beside it (the ISO's own bytes change with every
 * genisoimage run). */
static int seed_step(plan *p, runner *r, const create_vm_options *o, const vm_paths *v,
                     const char *pubkey)
{
    char local[] = "/tmp/convocate-seed-iso-XXXXXX", err[1024], hex[SHA256_HEX_LEN + 1];
    char want[SHA256_HEX_LEN + 2], stamp[PATH_BUF + 16], *have = NULL;
    size_t len = 0;
    runner_stat st;
    vm_seed_spec s = {
        .hostname = v->name, .domain = o->domain, .username = o->username, .pubkey = pubkey};
    snprintf(stamp, sizeof stamp, "%s.sha256-inputs", v->seed);
    if (vm_seed_digest(&s, want) < 0)
        return plan_fail(p, v->seed, "out of memory");
    strcat(want, "\n");
    int found = plan_read(p, r, stamp, stamp, &have, &len);
    bool same = found > 0 && strcmp(have, want) == 0 &&
                r->ops->stat_path(r, v->seed, &st, err, sizeof err) == 0 && st.exists;
    free(have);
    if (found < 0)
        return -1;
    if (same || p->dry_run) {
        plan_report(p, v->seed, same ? STEP_UNCHANGED : found ? STEP_UPDATED : STEP_CREATED);
        return 0;
    }
    int fd = mkstemp(local);
    if (fd < 0)
        return plan_fail(p, v->seed, "mkstemp: %s", strerror(errno));
    close(fd);
    int rc = vm_seed_make(&s, local, err, sizeof err) < 0 ||
                     digest_local_file(local, hex, err, sizeof err) < 0
                 ? plan_fail(p, v->seed, "%s", err)
                 : upload_verified(p, r, v->seed, local, v->seed, hex);
    unlink(local);
    if (rc == 0)
        rc = plan_file(p, r, stamp, stamp, want, SHA256_HEX_LEN + 1, 0644, 0, 0);
    return rc;
}

static int virt_install_step(plan *p, runner *r, const create_vm_options *o, const vm_paths *v)
{
    virt_install_spec s = {.name = v->name,
                           .os_variant = o->os_variant,
                           .iso = v->iso,
                           .seed = v->seed,
                           .os_disk = v->os_disk,
                           .data_disk = v->data_disk,
                           .network = "default",
                           .cpu = o->req.cpu,
                           .ram_mb = o->req.ram_mb,
                           .osdisk_gb = o->osdisk_gb,
                           .datadisk_gb = o->datadisk_gb};
    virt_install_cmd cmd;
    char err[512], pledge[128], path[PATH_BUF];
    if (virt_install_build(&s, &cmd, err, sizeof err) < 0)
        return plan_fail(p, "virt-install", "%s", err);
    if (!p->dry_run && plan_run(p, r, "virt-install", cmd.argv, NULL) < 0)
        return -1;
    plan_report(p, "virt-install", STEP_CREATED);
    int n = vm_pledge_format(&o->req, pledge, sizeof pledge);
    snprintf(path, sizeof path, HYPERVISOR_PLEDGE_DIR "/%s.pledge", v->name);
    if (plan_dir(p, r, HYPERVISOR_PLEDGE_DIR, HYPERVISOR_PLEDGE_DIR, 0755, 0, 0) < 0)
        return -1;
    if (plan_file(p, r, path, path, pledge, (size_t)n, 0644, 0, 0) < 0)
        return -1;
    /* The name is taken: the next create-vm mints another. */
    char *forget[] = {"rm", "-f", "--", HYPERVISOR_NEXT_VM, NULL};
    return p->dry_run ? 0 : plan_run(p, r, HYPERVISOR_NEXT_VM, forget, NULL);
}

/* The VM's name is minted once and kept in HYPERVISOR_NEXT_VM until
 * virt-install has made that VM, so a run stopped before it (no /dev/kvm,
 * a refused admission) and run again reuses the same name and seed. */
static int vm_paths_init(plan *p, runner *r, vm_paths *v, const char *sha256)
{
    if (hypervisor_minted_name(p, r, HYPERVISOR_NEXT_VM, v->name) < 0)
        return -1;
    snprintf(v->iso, sizeof v->iso, HYPERVISOR_IMAGES_DIR "/convocate-ubuntu-%.16s.iso", sha256);
    snprintf(v->seed, sizeof v->seed, HYPERVISOR_IMAGES_DIR "/%s-seed.iso", v->name);
    snprintf(v->os_disk, sizeof v->os_disk, HYPERVISOR_IMAGES_DIR "/%s-os.qcow2", v->name);
    snprintf(v->data_disk, sizeof v->data_disk, HYPERVISOR_IMAGES_DIR "/%s-data.qcow2", v->name);
    return 0;
}

/* ---- the run ------------------------------------------------------------ */

static int hypervisor_steps(plan *p, runner *r, const create_vm_options *o, const char *ip,
                            const char *pubkey, const char *iso_local)
{
    char host_name[HYPERVISOR_NAME_LEN + 1];
    vm_resources total;
    vm_paths v;
    if (hypervisor_user_key(p, r, o->username, pubkey) < 0 || hypervisor_sshd_hardening(p, r) < 0 ||
        hypervisor_hostname(p, r, o->domain, host_name) < 0 || dns_line(p, o, host_name, ip) < 0 ||
        host_apt_update(p, r) < 0 || host_dist_upgrade(p, r) < 0 ||
        host_reboot_if_required(p, r, &o->install) < 0 || admission(p, r, o, &total) < 0 ||
        hypervisor_machine_slice(p, r, &total) < 0 || vm_paths_init(p, r, &v, o->sha256) < 0 ||
        plan_dir(p, r, HYPERVISOR_IMAGES_DIR, HYPERVISOR_IMAGES_DIR, 0711, 0, 0) < 0 ||
        seed_step(p, r, o, &v, pubkey) < 0 || hypervisor_kvm_check(p, r) < 0 ||
        hypervisor_packages(p, r) < 0 ||
        upload_verified(p, r, v.iso, iso_local, v.iso, o->sha256) < 0 ||
        virt_install_step(p, r, o, &v) < 0)
        return -1;
    printf("VM %s (%s.%s) is installing on %s; when it answers over SSH, run\n"
           "  convocate-host install --host <its address> --user %s\n",
           v.name, v.name, o->domain, r->where, o->username);
    return 0;
}

int create_vm_main(int argc, char **argv, bool verbose)
{
    create_vm_options o = {.os_variant = "ubuntu22.04", .remote = {.verbose = verbose}};
    o.root = getenv("CONVOCATE_ROOT");
    int parsed = parse(argc, argv, &o);
    if (parsed != 0) {
        if (parsed > 0)
            usage(stdout);
        return parsed > 0 ? 0 : EXIT_USAGE;
    }
    plan p = {.program = CMD, .dry_run = o.dry_run};
    char pubkey[VM_PUBKEY_MAX + 1], ip[64], cache[PATH_BUF], iso_local[PATH_BUF], err[1024];
    if (o.iso_cache == NULL && iso_cache_default_dir(cache, sizeof cache) < 0)
        return plan_fail(&p, "ISO cache", "HOME is not set; name a directory with --iso-cache"), 1;
    printf(CMD "%s (hypervisor %s, %ld CPUs, %ld MB RAM, %ld+%ld GB)\n",
           o.dry_run ? " --dry-run" : "", o.hypervisor, o.req.cpu, o.req.ram_mb, o.osdisk_gb,
           o.datadisk_gb);
    fflush(stdout);
    if (check_login_user(&p, &o) < 0 || check_shell_root(&p, &o) < 0 ||
        read_pubkey(&p, &o, pubkey, sizeof pubkey) < 0 ||
        hypervisor_address(&p, o.hypervisor, ip, sizeof ip) < 0 ||
        iso_cache_step(&p, o.iso, o.sha256, o.iso_cache ? o.iso_cache : cache, iso_local,
                       sizeof iso_local) < 0)
        return 1;
    o.remote.host = o.hypervisor;
    runner *r = runner_remote_new(&o.remote, err, sizeof err);
    if (r == NULL)
        return plan_fail(&p, "--hypervisor", "%s", err), 1;
    int rc = hypervisor_steps(&p, r, &o, ip, pubkey, iso_local);
    if (rc == 0)
        plan_finish(&p);
    runner_free(r);
    return rc == 0 ? 0 : 1;
}
