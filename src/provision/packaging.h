/* What our Debian packages (debian/, `make deb`) put on a host, as the
 * installs and convocate-host see it. A package installs the programs in
 * /usr/bin and ships the systemd units in /lib/systemd/system; an install
 * from source (make install, convocate-host's deploy) uses /usr/local/bin
 * and writes its units to /etc/systemd/system (SPEC 4). Each install asks
 * the host which of the two it is looking at, so a package and a re-run of
 * `install` never fight over a file. */
#ifndef CONVOCATE_PROVISION_PACKAGING_H
#define CONVOCATE_PROVISION_PACKAGING_H

#include <stdbool.h>
#include <stddef.h>

#include "provision/plan.h"
#include "provision/runner.h"

#define PACKAGE_BIN_DIR "/usr/bin"
#define SOURCE_BIN_DIR "/usr/local/bin"

/* PACKAGE_BIN_DIR/name when that is a file on the target, else
 * SOURCE_BIN_DIR/name: the program a login shell or unit should name. */
void packaging_program_path(runner *r, const char *name, char *out, size_t size);

/* The unit ships in one of our packages when the target holds it in
 * /lib/systemd/system (or /usr/lib/systemd/system). Returns 1 and reports
 * the step as unchanged when it does; a copy in /etc/systemd/system whose
 * first line starts with own_header (one our install wrote before the
 * package came) would shadow it and is removed (reported as updated). Returns 0 when no
 * package ships it (the caller writes its own), -1 after plan_fail. */
int packaging_unit_step(plan *p, runner *r, const char *unit, const char *own_header);

#endif
