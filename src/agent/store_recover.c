#include "agent/store_recover.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/lock.h"
#include "common/fileio.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/tree.h"

/* A lock file whose session has no home: the lock of a create cut short. */
static bool is_orphan_lock(int dirfd, const char *name)
{
    char uuid[UUID_STR_LEN];
    size_t n = strlen(name);
    if (n != UUID_STR_LEN - 1 + strlen(".lock") || strcmp(name + UUID_STR_LEN - 1, ".lock") != 0)
        return false;
    memcpy(uuid, name, UUID_STR_LEN - 1);
    uuid[UUID_STR_LEN - 1] = '\0';
    struct stat st;
    return uuid_v4_is_valid(uuid) && fstatat(dirfd, uuid, &st, AT_SYMLINK_NOFOLLOW) < 0;
}

/* Removes what a crash left: staged homes, half-deleted homes, temporaries
 * (of locks and of session.json), and the stale locks of sessions that
 * never came to be. */
void store_recover(const char *root)
{
    DIR *dir = opendir(root);
    if (dir == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        char path[PATH_BUF];
        if (is_session_dir(dirfd(dir), de->d_name)) {
            if (snprintf(path, sizeof path, "%s/%s/" SESSION_FILE, root, de->d_name) <
                (int)sizeof path)
                atomic_write_leftovers_remove(path);
            continue;
        }
        bool staged =
            strncmp(de->d_name, AGENT_STAGING_PREFIX, strlen(AGENT_STAGING_PREFIX)) == 0 ||
            strncmp(de->d_name, STAGING_DEL, strlen(STAGING_DEL)) == 0;
        bool lock_tmp = strstr(de->d_name, ".lock.tmp-") != NULL;
        bool orphan_lock = is_orphan_lock(dirfd(dir), de->d_name);
        if ((!staged && !lock_tmp && !orphan_lock) ||
            snprintf(path, sizeof path, "%s/%s", root, de->d_name) >= (int)sizeof path)
            continue;
        if (orphan_lock) {
            lock_is_held(path); /* removes it when stale, keeps a live one */
            continue;
        }
        log_info("removing %s left by an interrupted operation", path);
        if (tree_remove(path) < 0)
            log_warn("cannot remove %s: %s", path, strerror(errno));
    }
    closedir(dir);
}
