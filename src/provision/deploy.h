/* Putting this build's programs on a target (SPEC 11): a sibling binary of
 * the running convocate-host copied to /usr/local/bin, and the deployed
 * binary's own `install` run there. Shared by init-shell --host (convocate,
 * convocate-host, convocate-agent), init-agent --host and update
 * (convocate-agent). */
#ifndef CONVOCATE_PROVISION_DEPLOY_H
#define CONVOCATE_PROVISION_DEPLOY_H

#include <stddef.h>

#include "provision/plan.h"
#include "provision/runner.h"

#define DEPLOY_BIN_DIR "/usr/local/bin"
#define AGENT_BIN_PATH DEPLOY_BIN_DIR "/convocate-agent"
#define SHELL_BIN_PATH DEPLOY_BIN_DIR "/convocate"

/* The program name next to the running one (build tree or install), in
 * out; -1 when there is none or it is not executable. */
int deploy_sibling(const char *name, char *out, size_t size);

/* /usr/local/bin/<name> on the target holds exactly the sibling binary
 * name, mode 0755, root-owned: compared by SHA-256 computed on the target
 * (skipped when equal), written atomically, and its digest checked again
 * after the upload. A dry run uploads nothing. */
int deploy_binary_step(plan *p, runner *r, const char *name);

/* Runs `<bin> install --root <root>` on the target (bin a host path such
 * as AGENT_BIN_PATH; with --dry-run on a dry run, or one line saying what
 * would run when bin is not there yet). Its lines are echoed indented
 * under step; *outcome is unchanged when its last line starts with
 * "nothing changed". */
int deploy_install_step(plan *p, runner *r, const char *step, const char *bin,
                        step_outcome *outcome);

#endif
