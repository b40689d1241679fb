/* `convocate-host init-shell`: the shell side of SPEC 4 on a runner's target. */
#ifndef CONVOCATE_HOST_INIT_SHELL_H
#define CONVOCATE_HOST_INIT_SHELL_H

#include "provision/deploy_deb.h"
#include "provision/plan.h"
#include "provision/runner.h"
#include "common/layout.h"
#include "provision/logrotate.h"
#include "provision/shell_host.h"

/* A remote shell host only, before init_shell_steps: deploys convocate,
 * convocate-host and convocate-agent to /usr/local/bin and runs
 * `convocate install` there. 0, or -1 after one line naming the step. */
int init_shell_program_steps(plan *p, runner *shell);

/* The same with our packages (--deb): installs them with apt-get there,
 * then runs /usr/bin/convocate install. */
int init_shell_package_steps(plan *p, runner *shell, const deb_file *debs, size_t n);

/* Runs every step; 0, or -1 after one line on stderr naming the step. */
int init_shell_steps(plan *p, runner *shell);

#endif
