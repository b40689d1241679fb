/* A listening unix stream socket for local clients (the status feed, the
 * ls service): a stale socket left by a previous run is replaced, any other
 * file at the path is refused, and the socket gets mode 0660 and, when gid
 * is not (gid_t)-1, group gid, so the claude group's TUIs and CLIs reach it. */
#ifndef CONVOCATE_COMMON_UNIX_LISTEN_H
#define CONVOCATE_COMMON_UNIX_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

/* The listening fd (non-blocking, close-on-exec), or -1 with err naming
 * the path and what failed; what names the socket in that message. */
int unix_listen(const char *path, gid_t gid, int backlog, const char *what, char *err,
                size_t errlen);

#endif
