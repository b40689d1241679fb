/* Steps of a shell host's set-up that both `convocate install` (on this
 * machine) and `convocate-host init-shell` (on any target) run. */
#ifndef CONVOCATE_PROVISION_SHELL_HOST_H
#define CONVOCATE_PROVISION_SHELL_HOST_H

#include <sys/types.h>

#include "provision/plan.h"
#include "provision/runner.h"

/* The gid that owns the shell's group-readable files: group claude on the
 * target, or 1337 when it does not exist (a test or packaging root). */
gid_t shell_claude_gid(runner *r);

/* /var/lib/convocate/dnsmasq-hosts (created empty once; status-serve owns
 * its content) and, when dnsmasq is installed on the target, its drop-in
 * pointing at that file. */
int shell_dns_steps(plan *p, runner *r);

#endif
