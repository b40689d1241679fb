/* Homes without metadata: the session.json that agents before SPEC 6.1 kept
 * in each home, moved once into the metadata directory at start, and the
 * same move on demand (adopt) for a home that migrate-session brought.
 *
 * That file sits where the session's container writes, so it is read as
 * untrusted input (no symlink followed, no FIFO waited on, one link, 64 KiB)
 * with no store lock held, validated as create validates, and checked
 * against the other sessions' claims. It is trusted only when the session
 * has no metadata yet: once it has, a session.json in its home is stale and
 * removed unread, so a session cannot rename itself or take another's port
 * or DNS name by writing one. The move is crash safe: the metadata is
 * written (atomically, fsynced) before the old file is removed, and a
 * re-run finds the metadata and removes the old file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/store_internal.h"
#include "common/array.h"
#include "common/fileio.h"
#include "common/layout.h"
#include "common/log.h"

/* The home's directory descriptor (never through a symlink), or -1. */
static int open_home(const store *s, const char *uuid)
{
    char home[PATH_BUF];
    if (store_home_path(s, uuid, home, sizeof home) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The home's session.json, read and validated. 0 with *m, or -1 with why
 * (*absent: there is no such file). */
static int read_legacy(const store *s, const char *uuid, session_meta *m, bool *absent, char *why,
                       size_t whylen)
{
    char *text = NULL, detail[STORE_ERR_LEN];
    size_t len = 0;
    *absent = false;
    int dfd = open_home(s, uuid);
    if (dfd < 0) {
        snprintf(why, whylen, "home: %s", strerror(errno));
        return -1;
    }
    int rc = read_untrusted_at(dfd, LEGACY_SESSION_FILE, SESSION_JSON_MAX, &text, &len);
    int saved = errno;
    close(dfd);
    if (rc < 0) {
        *absent = saved == ENOENT;
        snprintf(why, whylen, "%s: %s", LEGACY_SESSION_FILE, untrusted_read_error(saved));
        return -1;
    }
    rc = session_decode(text, len, uuid, m, detail, sizeof detail);
    free(text);
    if (rc < 0)
        snprintf(why, whylen, "%s: %.200s", LEGACY_SESSION_FILE, detail);
    return rc;
}

/* Removes the home's session.json without reading it; true if one was. */
static bool drop_legacy(const store *s, const char *uuid)
{
    int dfd = open_home(s, uuid);
    if (dfd < 0)
        return false;
    int rc = unlinkat(dfd, LEGACY_SESSION_FILE, 0);
    int saved = errno;
    close(dfd);
    if (rc < 0 && saved != ENOENT)
        log_warn("cannot remove %s/%s/%s: %s", s->root, uuid, LEGACY_SESSION_FILE, strerror(saved));
    return rc == 0;
}

/* Claims, metadata file, table entry; caller holds s->mu. */
static int adopt_locked(store *s, const session_meta *m, char *err, size_t errlen)
{
    session_claim *claims = NULL;
    size_t n = 0;
    session_meta probe = *m; /* settle may only read it: port is never PORT_AUTO here */
    int rc = store_table_claims(s, &claims, &n, err, errlen);
    if (rc == 0)
        rc = store_settle_claim(s, claims, n, &probe, true, true, err, errlen);
    free(claims);
    return rc < 0 ? -1 : store_commit_meta(s, m, err, errlen);
}

/* A home the table does not know, at start: moved over, or listed broken
 * with the reason. */
static void migrate_home(store *s, const char *uuid)
{
    store_entry e = {.unmigrated = true};
    memcpy(e.uuid, uuid, UUID_STR_LEN);
    session_meta m;
    bool absent;
    char why[STORE_ERR_LEN];
    if (read_legacy(s, uuid, &m, &absent, why, sizeof why) < 0) {
        if (absent)
            snprintf(e.error, sizeof e.error,
                     "no metadata: %s%s is missing and the home holds no %s", uuid, META_SUFFIX,
                     LEGACY_SESSION_FILE);
        else
            snprintf(e.error, sizeof e.error, "%s", why);
    } else if (adopt_locked(s, &m, why, sizeof why) < 0) {
        snprintf(e.error, sizeof e.error, "%s not moved: %.200s", LEGACY_SESSION_FILE, why);
        session_meta_clear(&m);
    } else {
        drop_legacy(s, uuid);
        log_info("moved the metadata of session %s (%s) out of its home", uuid, m.name);
        session_meta_clear(&m);
        return;
    }
    log_warn("session %s is broken: %s", uuid, e.error);
    if (store_table_put(s, &e) < 0)
        log_warn("session %s: out of memory", uuid);
}

static int compare_uuids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The uuid-named real directories under the home root, sorted, so the
 * migration of several old homes claims ports in the same order each run. */
static int scan_homes(store *s, char (**out)[UUID_STR_LEN], size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *dir = opendir(s->root);
    if (dir == NULL)
        return -1;
    s->scans++;
    size_t cap = 0;
    struct dirent *de;
    struct stat st;
    while ((de = readdir(dir)) != NULL) {
        if (!uuid_v4_is_valid(de->d_name) ||
            fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (grow_array(out, &cap, *n + 1, sizeof **out, 64) < 0)
            break;
        memcpy((*out)[(*n)++], de->d_name, UUID_STR_LEN);
    }
    closedir(dir);
    if (*n > 0)
        qsort(*out, *n, sizeof **out, compare_uuids);
    return 0;
}

void store_migrate_homes(store *s)
{
    char(*uuids)[UUID_STR_LEN];
    size_t n;
    if (scan_homes(s, &uuids, &n) < 0) {
        log_warn("cannot read %s: %s", s->root, strerror(errno));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (store_table_find(s, uuids[i]) == NULL)
            migrate_home(s, uuids[i]);
        else if (drop_legacy(s, uuids[i]))
            log_info("removed a stale %s from the home of session %s, unread: its metadata is "
                     "in %s",
                     LEGACY_SESSION_FILE, uuids[i], s->meta_dir);
    }
    free(uuids);
}

/* Whether uuid may be adopted now: unknown, or a home known to lack its
 * metadata file. Caller holds s->mu. */
static int may_adopt(store *s, const char *uuid, char *err, size_t errlen)
{
    const store_entry *e = store_table_find(s, uuid);
    if (e != NULL && !e->unmigrated) {
        snprintf(err, errlen,
                 "session \"%s\" already has metadata; adopt takes in only a home "
                 "without it",
                 uuid);
        return -1;
    }
    return 0;
}

int store_adopt(store *s, const char *uuid, session_meta *out, char *err, size_t errlen)
{
    char why[STORE_ERR_LEN];
    bool absent;
    pthread_mutex_lock(&s->mu);
    int rc = may_adopt(s, uuid, err, errlen);
    pthread_mutex_unlock(&s->mu);
    if (rc < 0)
        return -1;
    /* The read from the home happens with no lock held (a session's file). */
    if (read_legacy(s, uuid, out, &absent, why, sizeof why) < 0) {
        snprintf(err, errlen, "adopt %s: %s", uuid, why);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    rc = may_adopt(s, uuid, err, errlen);
    if (rc == 0)
        rc = adopt_locked(s, out, err, errlen);
    pthread_mutex_unlock(&s->mu);
    if (rc < 0) {
        session_meta_clear(out);
        return -1;
    }
    drop_legacy(s, uuid);
    log_info("adopted session %s (%s)", uuid, out->name);
    return 0;
}
