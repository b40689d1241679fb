/* systemd's path escaping (systemd.unit(5), "String Escaping for Inclusion
 * in Unit Names"; what `systemd-escape --path` prints): a mount unit must be
 * named after its mount point exactly so, or systemd ignores it. */
#ifndef CONVOCATE_PROVISION_SYSTEMD_ESCAPE_H
#define CONVOCATE_PROVISION_SYSTEMD_ESCAPE_H

#include <stddef.h>

/* The escaped form of an absolute path, without a suffix: "/home/claude"
 * gives "home-claude", "/" gives "-". Duplicate and trailing slashes are
 * dropped as systemd drops them. -1 (errno EINVAL) for a path that is not
 * absolute or holds a "." or ".." component, (errno ENAMETOOLONG) when out
 * is too small. */
int systemd_escape_path(const char *path, char *out, size_t size);

/* systemd_escape_path plus ".mount": the unit that mounts path. */
int systemd_mount_unit_name(const char *path, char *out, size_t size);

#endif
