/* Daemons on a target host (SPEC 11, issue 5 item 7): with systemd running
 * there, units are reloaded, enabled and (re)started; without it (containers,
 * these test machines) the unit files stay written and one line says how to
 * start the daemon by hand, and the command still succeeds. Targets under a
 * --root directory of this machine get the same line: their units belong to
 * no running systemd. */
#ifndef CONVOCATE_PROVISION_SERVICE_H
#define CONVOCATE_PROVISION_SERVICE_H

#include <stdbool.h>

#include "provision/plan.h"
#include "provision/runner.h"

/* True when the target is a real root whose systemd is running. */
bool service_systemd_runs(runner *r);

/* Makes unit run: daemon-reload first when reload, then enable and start
 * it, or restart it when restart is set and it was already running. by_hand
 * is the command an operator runs instead when there is no systemd. */
int service_step(plan *p, runner *r, const char *unit, bool reload, bool restart,
                 const char *by_hand);

#endif
