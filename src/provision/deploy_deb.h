/* Deploying our Debian packages instead of bare binaries (convocate-host
 * init-shell, init-agent and update with --deb FILE): each file is read on
 * this machine with dpkg-deb for its name, version and architecture,
 * uploaded to /tmp on the target, its SHA-256 checked there, and all of
 * them installed by one `apt-get install /tmp/....deb ...`, so apt brings
 * their dependencies from the target's own sources and the packages'
 * scripts run (user claude, `install`). */
#ifndef CONVOCATE_PROVISION_DEPLOY_DEB_H
#define CONVOCATE_PROVISION_DEPLOY_DEB_H

#include <stdbool.h>
#include <stddef.h>

#include "provision/digest.h"
#include "provision/plan.h"
#include "provision/runner.h"

#define DEB_FILES_MAX 4

typedef struct {
    const char *path; /* on this machine */
    char package[64];
    char version[64];
    char arch[32];
    char sha256[SHA256_HEX_LEN + 1];
} deb_file;

/* Reads path's control fields and digest; -1 after plan_fail (not a .deb,
 * dpkg-deb missing, odd fields). */
int deb_inspect(plan *p, const char *path, deb_file *out);

/* True when one of the n files is the package name. */
bool debs_include(const deb_file *debs, size_t n, const char *name);

/* The step "packages": unchanged when the target has every package at the
 * file's version (a version names one build: bump it to redeploy);
 * otherwise uploads, verifies and installs them together, then removes the
 * uploads. A dry run uploads nothing and says what it would install. */
int deploy_debs_step(plan *p, runner *r, const deb_file *debs, size_t n);

#endif
