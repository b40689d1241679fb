/* `convocate install`: prepares this machine as a shell host. Every step is
 * idempotent and reports what it did; host-wide changes (users, login shell)
 * happen only on the real root, never under a test or packaging --root. */
#include "shell/install.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/docker.h"
#include "common/layout.h"
#include "common/paths.h"
#include "provision/image_transfer.h"
#include "provision/packaging.h"
#include "version.h"

#define EXIT_USAGE 2

static int check_docker(plan *p, const shell_install_options *opt)
{
    if (opt->no_docker_check) {
        printf("  docker: not checked (--no-docker-check)\n");
        return 0;
    }
    const char *url = opt->docker_host;
    if (url == NULL || *url == '\0')
        url = getenv("DOCKER_HOST");
    if (url == NULL || *url == '\0')
        url = "unix:///var/run/docker.sock";
    char err[512];
    docker_client *d = docker_new(url, err, sizeof err);
    int rc = d ? docker_ping(d, err, sizeof err) : -1;
    docker_free(d);
    if (rc < 0)
        return plan_fail(p, "docker", "%s", err);
    printf("  docker: reachable at %s\n", url);
    return 0;
}

/* Group and user claude 1337 (SPEC 4), with the TUI as login shell so that
 * `ssh claude@shell-host` lands in it: the package's /usr/bin/convocate
 * when it is installed, else SPEC 4's /usr/local/bin/convocate. Real root
 * only. */
static int ensure_claude_user(plan *p, runner *r)
{
    char login_shell[PATH_BUF];
    packaging_program_path(r, "convocate", login_shell, sizeof login_shell);
    char uid[16], gid[16];
    snprintf(uid, sizeof uid, "%u", CLAUDE_UID_DEFAULT);
    snprintf(gid, sizeof gid, "%u", CLAUDE_GID_DEFAULT);
    bool have_group = getgrnam("claude") != NULL;
    char *groupadd[] = {"groupadd", "--gid", gid, "claude", NULL};
    if (!have_group && !p->dry_run && plan_run(p, r, "group claude", groupadd, NULL) < 0)
        return -1;
    plan_report(p, "group claude", have_group ? STEP_UNCHANGED : STEP_CREATED);
    bool have_user = getpwnam("claude") != NULL;
    char *useradd[] = {
        "useradd",      "--uid",         uid,       "--gid",     "claude", "--home-dir",
        "/home/claude", "--create-home", "--shell", login_shell, "claude", NULL};
    if (!have_user && !p->dry_run && plan_run(p, r, "user claude", useradd, NULL) < 0)
        return -1;
    plan_report(p, "user claude", have_user ? STEP_UNCHANGED : STEP_CREATED);
    if (!have_user)
        return 0; /* useradd set the login shell */
    struct passwd *pw = getpwnam("claude");
    bool shell_ok = pw != NULL && strcmp(pw->pw_shell, login_shell) == 0;
    char *usermod[] = {"usermod", "--shell", login_shell, "claude", NULL};
    if (!shell_ok && !p->dry_run && plan_run(p, r, "login shell", usermod, NULL) < 0)
        return -1;
    plan_report(p, "login shell", shell_ok ? STEP_UNCHANGED : STEP_UPDATED);
    return 0;
}

/* scripts/build-image.sh next to the build tree, or where `make install`
 * puts it. */
static int find_build_script(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            int len = snprintf(out, size, "%s/../../scripts/build-image.sh", exe);
            if (len > 0 && (size_t)len < size && access(out, R_OK) == 0)
                return 0;
        }
    }
    snprintf(out, size, "/usr/local/share/convocate/build-image.sh");
    return access(out, R_OK) == 0 ? 0 : -1;
}

static int ensure_image(plan *p, runner *r, const shell_install_options *opt)
{
    const char *step = "image convocate:" CONVOCATE_VERSION;
    char tag[64];
    snprintf(tag, sizeof tag, "convocate:%s", CONVOCATE_VERSION);
    char id[128];
    if (image_id(r, tag, id, sizeof id) == 0) {
        plan_report(p, step, STEP_UNCHANGED);
        return 0;
    }
    if (!opt->build_image) {
        printf("  %s: not built (pass --build-image, or run 'make image'; it takes minutes)\n",
               step);
        return 0;
    }
    char script[PATH_BUF];
    if (find_build_script(script, sizeof script) < 0)
        return plan_fail(p, step, "scripts/build-image.sh not found next to this binary");
    char *build[] = {"bash", script, "full", NULL};
    if (!p->dry_run && plan_run(p, r, step, build, NULL) < 0)
        return -1;
    plan_report(p, step, STEP_CREATED);
    return 0;
}

int shell_install(const shell_install_options *opt)
{
    plan p = {.program = "convocate install", .dry_run = opt->dry_run};
    char err[512];
    runner *r = runner_local_new(opt->root, err, sizeof err);
    if (r == NULL) {
        fprintf(stderr, "convocate install: %s\n", err);
        return 1;
    }
    printf("convocate install%s (root %s)\n", opt->dry_run ? " --dry-run" : "",
           runner_is_real_root(r) ? "/" : r->root);
    int rc = check_docker(&p, opt);
    if (rc == 0 && runner_is_real_root(r))
        rc = ensure_claude_user(&p, r);
    if (rc == 0)
        rc = shell_dns_steps(&p, r);
    if (rc == 0)
        rc = ensure_image(&p, r, opt);
    if (rc == 0)
        plan_finish(&p);
    runner_free(r);
    return rc == 0 ? 0 : 1;
}

static void install_usage(FILE *out)
{
    fprintf(out, "usage: convocate [--root DIR] install [--dry-run] [--build-image] "
                 "[--docker-host URL] [--no-docker-check]\n");
}

int shell_install_main(int argc, char **argv)
{
    enum { OPT_DRY_RUN = 256, OPT_BUILD_IMAGE, OPT_DOCKER_HOST, OPT_ROOT, OPT_NO_DOCKER_CHECK };
    static const struct option opts[] = {
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"build-image", no_argument, NULL, OPT_BUILD_IMAGE},
        {"docker-host", required_argument, NULL, OPT_DOCKER_HOST},
        {"root", required_argument, NULL, OPT_ROOT},
        {"no-docker-check", no_argument, NULL, OPT_NO_DOCKER_CHECK},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    shell_install_options opt = {.root = paths_root()};
    optind = 1;
    opterr = 0; /* our own message names the program */
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_DRY_RUN:
            opt.dry_run = true;
            break;
        case OPT_BUILD_IMAGE:
            opt.build_image = true;
            break;
        case OPT_DOCKER_HOST:
            opt.docker_host = optarg;
            break;
        case OPT_ROOT:
            opt.root = optarg;
            break;
        case OPT_NO_DOCKER_CHECK:
            opt.no_docker_check = true;
            break;
        case 'h':
            install_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "convocate install: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            install_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        install_usage(stderr);
        return EXIT_USAGE;
    }
    return shell_install(&opt);
}
