/* `convocate status-serve` (SPEC 8.4): the tcp/223 listener for the agents'
 * status events, the local event feed for TUIs and the DNS hosts file. */
#ifndef CONVOCATE_SHELL_STATUS_SERVE_H
#define CONVOCATE_SHELL_STATUS_SERVE_H

#include <stddef.h>

#define STATUS_LINE_MAX (64 * 1024) /* longer lines are logged and skipped */
#define STATUS_SUBSYSTEM "convocate-status"

/* argv entry point for `convocate status-serve ...` (argv[0] is the
 * command); returns the exit code. */
int status_serve_main(int argc, char **argv);

#endif
