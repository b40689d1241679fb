/* `convocate install` (SPEC 11, shell host part) and the shell-side steps it
 * shares with `convocate-host init-shell`. */
#ifndef CONVOCATE_SHELL_INSTALL_H
#define CONVOCATE_SHELL_INSTALL_H

#include <stdbool.h>
#include <sys/types.h>

#include "provision/shell_host.h"

typedef struct {
    const char *root; /* NULL: the real root */
    bool dry_run;
    bool build_image;
    const char *docker_host; /* NULL: DOCKER_HOST or the default socket */
    bool no_docker_check;    /* package scripts: the engine may not run yet */
} shell_install_options;

/* Returns the exit code: 0, or 1 with one line on stderr naming the step. */
int shell_install(const shell_install_options *opt);

/* argv entry point for `convocate install ...` (argv[0] is "install"). */
int shell_install_main(int argc, char **argv);

#endif
