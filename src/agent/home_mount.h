/* Session homes on a nosuid,nodev mount (SPEC 14). Container root can make
 * setuid-root files and device nodes in a session home, which is a host
 * directory: on a plain mount a host process running as claude could then
 * run such a file as root. `convocate-agent install` therefore makes
 * /home/claude a bind mount of itself with nosuid,nodev, now and at every
 * boot (a systemd mount unit that convocate-agent.service requires). */
#ifndef CONVOCATE_AGENT_HOME_MOUNT_H
#define CONVOCATE_AGENT_HOME_MOUNT_H

#include "provision/plan.h"
#include "provision/runner.h"

/* The unit file, its enablement and the mount itself, each reported as a
 * plan step. A mount this process may not make (no CAP_SYS_ADMIN, as in an
 * unprivileged container) is one warning line, not a failure: the unit
 * mounts it when systemd next starts the agent. r must be a local runner. */
int home_mount_steps(plan *p, runner *r, const char *homes);

#endif
