/* `convocate-host install` (SPEC 11): a fresh Ubuntu/Debian host made ready
 * to be a shell or agent host: packages, the claude user, UTC, firewall
 * openings, and a reboot when the upgrade asks for one (remote hosts only). */
#ifndef CONVOCATE_HOST_INSTALL_HOST_H
#define CONVOCATE_HOST_INSTALL_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "provision/plan.h"
#include "provision/runner.h"

typedef enum { HOST_ROLE_SHELL = 1, HOST_ROLE_AGENT = 2, HOST_ROLE_BOTH = 3 } host_role;

typedef struct {
    host_role role;
    bool no_reboot;
    int reboot_poll_seconds; /* 0: 30 */
    int reboot_wait_seconds; /* 0: 600 */
} install_host_options;

/* "shell", "agent" or "both"; -1 for anything else. */
int host_role_parse(const char *s, host_role *out);

/* "ufw allow PORT/tcp" on the target unless ufw's rules file already
 * holds that rule (unchanged); when ufw cannot load rules (a container)
 * one line says so and the run goes on. will_have_ufw: ufw is about to be
 * installed by this run, so its rules file cannot be asked yet. Also used
 * by init-shell for 223 and 514. */
void host_ufw_allow(plan *p, runner *r, const char *port, bool will_have_ufw);

#define HOST_LINE_MAX 300

/* The steps install and create-vm share. apt-get update (not counted as
 * a change); dist-upgrade when apt would install anything; apt-get install
 * of those of pkgs (at most 32) that dpkg does not list as installed, the
 * step named "step: <the missing ones>"; a reboot when the target asks for
 * one (remote only, never with no_reboot), waiting for a new boot id. */
int host_apt_update(plan *p, runner *r);
int host_dist_upgrade(plan *p, runner *r);
int host_apt_install(plan *p, runner *r, const char *step, const char *const pkgs[], size_t n_pkgs);
int host_reboot_if_required(plan *p, runner *r, const install_host_options *o);

/* Runs every step; 0, or -1 after one line on stderr naming the step. */
int install_host_steps(plan *p, runner *r, const install_host_options *o);

#endif
