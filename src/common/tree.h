/* Whole-tree copy and removal for session homes (SPEC 6.4). Both walk the
 * tree with an explicit work list, never recursion, so depth chosen by a
 * session's user cannot exhaust the stack, and neither ever follows a symlink:
 * every step opens the next component relative to its parent with O_NOFOLLOW. */
#ifndef CONVOCATE_COMMON_TREE_H
#define CONVOCATE_COMMON_TREE_H

#include <sys/types.h>

/* Copies src into dst (which must not exist). Symlinks are copied as
 * symlinks, modes are kept, sockets, FIFOs and devices are skipped. Every
 * created entry is chowned to uid:gid unless uid is (uid_t)-1. On failure the
 * partial copy is removed. Returns 0 or -1 with errno. */
int tree_copy(const char *src, const char *dst, uid_t uid, gid_t gid);

/* Removes path and everything under it without following symlinks out of it.
 * A missing path is success. Returns 0 or -1 with errno. */
int tree_remove(const char *path);

#endif
