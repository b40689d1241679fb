/* The session store's names on disk, and its start-up recovery: removing
 * what a crash in the middle of a create, clone, delete or metadata write
 * left under <root>/home/claude. For store.c; a part of it kept apart. */
#ifndef CONVOCATE_AGENT_STORE_RECOVER_H
#define CONVOCATE_AGENT_STORE_RECOVER_H

#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "common/ids.h"

#define STAGING_DEL ".del-"         /* a home being deleted */
#define SESSION_FILE "session.json" /* the metadata in a home */

/* A session home: a directory (not a link) named by a canonical UUIDv4. */
static inline bool is_session_dir(int dirfd, const char *name)
{
    struct stat st;
    return uuid_v4_is_valid(name) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISDIR(st.st_mode);
}

/* root: <root>/home/claude. Nothing else may be writing there yet. */
void store_recover(const char *root);

#endif
