/* Running helper programs: argv only, never a shell string. */
#ifndef CONVOCATE_COMMON_SPAWN_H
#define CONVOCATE_COMMON_SPAWN_H

#include <stddef.h>

/* Runs argv[0] (looked up in PATH) with argv, stdin from /dev/null, and
 * collects stdout and stderr together, keeping at most out_max bytes (the rest
 * is read and discarded). *out (may be NULL) is NUL-terminated and malloc'd.
 * Returns the exit status (0..255, 128+signal when killed) or -1 if the
 * program could not be run at all. */
int spawn_capture(char *const argv[], char **out, size_t out_max);

#endif
