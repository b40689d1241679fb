/* Every host path of SPEC 4 is taken under --root (env CONVOCATE_ROOT). */
#ifndef CONVOCATE_COMMON_PATHS_H
#define CONVOCATE_COMMON_PATHS_H

#include <stddef.h>

#define PATH_BUF 4096

/* Sets the root; NULL, "" and "/" all mean the real root. */
int paths_set_root(const char *root);
const char *paths_root(void);

/* Formats an absolute host path (it must start with '/') and prefixes the root.
 * Returns 0, or -1 with errno ENAMETOOLONG when it does not fit. */
int root_path(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
