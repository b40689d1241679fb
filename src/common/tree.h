/* Whole-tree copy and removal for session homes (SPEC 6.4). Both walk the
 * tree with an explicit work list, never recursion, so depth chosen by a
 * session's user cannot exhaust the stack, and neither ever follows a symlink:
 * every step opens the next component relative to its parent with O_NOFOLLOW. */
#ifndef CONVOCATE_COMMON_TREE_H
#define CONVOCATE_COMMON_TREE_H

#include <sys/types.h>

/* Copies src into dst (which must not exist). Symlinks are copied as
 * symlinks, modes are kept but for setuid and setgid (dropped), sockets,
 * FIFOs and devices are skipped. Every
 * created entry is chowned to uid:gid unless uid is (uid_t)-1. On failure the
 * partial copy is removed. Returns 0 or -1 with errno. */
int tree_copy(const char *src, const char *dst, uid_t uid, gid_t gid);

/* Copies one regular file name from directory sfd to dfd (where it must not
 * exist), with its mode less setuid/setgid. The type is checked on the
 * opened descriptor: an entry that is no longer a regular file (a FIFO or
 * device swapped in after the directory was listed) is skipped, without
 * blocking. Returns 0, 1 when skipped, or -1 with errno. tree_copy's step,
 * public so tests can play the swap. */
int tree_copy_file_at(int sfd, int dfd, const char *name, uid_t uid, gid_t gid);

/* Removes path and everything under it without following symlinks out of it.
 * A missing path is success. Returns 0 or -1 with errno. */
int tree_remove(const char *path);

#endif
