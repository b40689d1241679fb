/* `convocate install` (SPEC 11, shell host part) and the shell-side steps it
 * shares with `convocate-host init-shell`. */
#ifndef CONVOCATE_SHELL_INSTALL_H
#define CONVOCATE_SHELL_INSTALL_H

#include <stdbool.h>
#include <sys/types.h>

#include "provision/plan.h"
#include "provision/runner.h"

#define SHELL_CONF_DIR "/etc/convocate"
#define SHELL_DNSMASQ_HOSTS "/var/lib/convocate/dnsmasq-hosts"
#define SHELL_DNSMASQ_DROPIN "/etc/dnsmasq.d/10-convocate.conf"
#define SHELL_LOGIN_SHELL "/usr/local/bin/convocate"

/* The gid that owns the shell's group-readable files: group claude on the
 * target, or 1337 when it does not exist (a test or packaging root). */
gid_t shell_claude_gid(runner *r);

/* /var/lib/convocate/dnsmasq-hosts (created empty once; status-serve owns
 * its content) and, when dnsmasq is installed on the target, its drop-in
 * pointing at that file. */
int shell_dns_steps(plan *p, runner *r);

typedef struct {
    const char *root; /* NULL: the real root */
    bool dry_run;
    bool build_image;
    const char *docker_host; /* NULL: DOCKER_HOST or the default socket */
} shell_install_options;

/* Returns the exit code: 0, or 1 with one line on stderr naming the step. */
int shell_install(const shell_install_options *opt);

/* argv entry point for `convocate install ...` (argv[0] is "install"). */
int shell_install_main(int argc, char **argv);

#endif
