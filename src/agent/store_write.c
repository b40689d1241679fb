/* The store's writes: create, edit, clone, touch, delete. Each keeps the
 * in-memory table in step with the disk: the table changes only after the
 * disk did, under the store mutex. The order of the disk steps is the crash
 * argument (store.h): metadata is durable before a home is published, and a
 * home is unpublished before its metadata goes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/disk_error.h"
#include "agent/store_internal.h"
#include "common/array.h"
#include "common/fileio.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/tree.h"

/* ---- metadata and claims ---- */

int store_write_meta(const store *s, const session_meta *m, char *err, size_t errlen)
{
    char path[PATH_BUF];
    size_t len;
    char *text = session_encode(m, &len);
    if (text == NULL) {
        snprintf(err, errlen, "encode the metadata of %s: out of memory", m->uuid);
        return -1;
    }
    /* The agent's own file: 0600, its owner (root), never the session's. */
    int rc = store_meta_path(s, m->uuid, path, sizeof path) == 0
                 ? atomic_write_file(path, text, len, 0600, KEEP_OWNER, KEEP_OWNER)
                 : (errno = ENAMETOOLONG, -1);
    if (rc < 0)
        disk_error(err, errlen, errno, "write %s/%s%s", s->meta_dir, m->uuid, META_SUFFIX);
    free(text);
    return rc;
}

static int reserve(store *s, const session_claim *c)
{
    if (grow_array(&s->reserved, &s->cap_reserved, s->n_reserved + 1, sizeof *s->reserved, 16) < 0)
        return -1;
    s->reserved[s->n_reserved++] = *c;
    return 0;
}

/* Caller holds s->mu. */
static void unreserve(store *s, const char *uuid)
{
    for (size_t i = 0; i < s->n_reserved; i++) {
        if (strcmp(s->reserved[i].uuid, uuid) == 0) {
            s->reserved[i] = s->reserved[--s->n_reserved];
            break;
        }
    }
}

int store_settle_claim(store *s, const session_claim *claims, size_t n, session_meta *m,
                       bool check_port, bool check_dns, char *err, size_t errlen)
{
    if (m->port == PORT_AUTO) {
        m->port = claims_pick_port(claims, n, m->uuid, m->protocol, s->probe, s->probe_ctx);
        if (m->port < 0) {
            snprintf(err, errlen, "no free port from %d for %s", PORT_AUTO_FIRST, m->protocol);
            return -1;
        }
    }
    return claims_check(claims, n, m->uuid, check_port ? m->port : 0, m->protocol,
                        check_dns ? m->dns_name : NULL, err, errlen);
}

static int claim_new_session(store *s, session_meta *m, char *err, size_t errlen)
{
    session_claim *claims = NULL, mine;
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    int rc = store_table_claims(s, &claims, &n, err, errlen);
    if (rc == 0)
        rc = store_settle_claim(s, claims, n, m, true, true, err, errlen);
    if (rc == 0) {
        claim_from_meta(&mine, m);
        rc = reserve(s, &mine);
        if (rc < 0)
            snprintf(err, errlen, "out of memory");
    }
    pthread_mutex_unlock(&s->mu);
    free(claims);
    return rc;
}

/* The new session into the table (a copy: *m stays the caller's), its
 * reservation dropped. */
static int commit_new_session(store *s, const session_meta *m, char *err, size_t errlen)
{
    store_entry e = {.valid = true};
    memcpy(e.uuid, m->uuid, UUID_STR_LEN);
    int rc = session_meta_copy(&e.meta, m);
    pthread_mutex_lock(&s->mu);
    unreserve(s, m->uuid);
    if (rc == 0)
        rc = store_table_put(s, &e);
    pthread_mutex_unlock(&s->mu);
    if (rc < 0) {
        store_entry_clear(&e);
        snprintf(err, errlen, "out of memory");
    }
    return rc;
}

/* ---- homes ---- */

/* Makes the staging home: a copy of the skel when there is one. */
static int make_home(store *s, const char *staging, char *err, size_t errlen)
{
    char skel[PATH_BUF];
    struct stat st;
    int rc;
    if (snprintf(skel, sizeof skel, "%s/.skel", s->root) < (int)sizeof skel &&
        lstat(skel, &st) == 0 && S_ISDIR(st.st_mode))
        rc = tree_copy(skel, staging, s->uid, s->gid);
    else
        rc = mkdir(staging, 0700) == 0 &&
                     (s->uid == KEEP_OWNER || chown(staging, s->uid, s->gid) == 0)
                 ? 0
                 : -1;
    if (rc == 0)
        rc = chmod(staging, 0700);
    if (rc < 0)
        disk_error(err, errlen, errno, "make the session home");
    return rc;
}

/* Writes the metadata, then renames the staged home into place and makes
 * the rename durable. A crash between the two leaves a staged home and its
 * metadata, both swept at the next start. */
static int publish_home(store *s, const char *staging, const session_meta *m, char *err,
                        size_t errlen)
{
    char home[PATH_BUF], meta[PATH_BUF];
    if (store_write_meta(s, m, err, errlen) < 0)
        return -1;
    if (store_home_path(s, m->uuid, home, sizeof home) < 0 || rename(staging, home) < 0 ||
        fsync_dir(s->root) < 0) {
        disk_error(err, errlen, errno, "commit the session home");
        if (store_meta_path(s, m->uuid, meta, sizeof meta) == 0 && access(home, F_OK) < 0)
            unlink(meta);
        return -1;
    }
    return 0;
}

static void init_meta(session_meta *m, const char *uuid, const char *name)
{
    memset(m, 0, sizeof *m);
    snprintf(m->uuid, sizeof m->uuid, "%s", uuid);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->protocol, sizeof m->protocol, "tcp");
    m->autonomous = AUTONOMOUS_DEFAULT;
    m->created_at = m->last_accessed = time(NULL);
}

static void apply_changes(session_meta *m, const session_changes *c)
{
    if (c->name && c->name[0]) /* an empty name keeps the old one */
        snprintf(m->name, sizeof m->name, "%s", c->name);
    if (c->has_port)
        m->port = c->port;
    if (c->protocol)
        snprintf(m->protocol, sizeof m->protocol, "%s", c->protocol);
    if (c->dns_name)
        snprintf(m->dns_name, sizeof m->dns_name, "%s", c->dns_name);
    if (c->model)
        snprintf(m->model, sizeof m->model, "%s", c->model);
    if (c->has_autonomous)
        m->autonomous = c->autonomous;
}

/* Stages, publishes and commits a reserved new session; the reservation is
 * dropped whatever happens. from: a home to copy, or NULL for the skel. */
static int build_session(store *s, const char *from, const session_meta *m, char *err,
                         size_t errlen)
{
    char staging[PATH_BUF];
    int rc = store_staging_path(s, AGENT_STAGING_PREFIX, m->uuid, staging, sizeof staging);
    if (rc < 0) {
        staging[0] = '\0';
        snprintf(err, errlen, "path too long");
    } else if (from != NULL) {
        rc = tree_copy(from, staging, s->uid, s->gid);
        if (rc < 0)
            disk_error(err, errlen, errno, "clone: copy the home dir");
    } else {
        rc = make_home(s, staging, err, errlen);
    }
    if (rc == 0)
        rc = publish_home(s, staging, m, err, errlen);
    if (rc < 0) {
        if (staging[0] != '\0')
            tree_remove(staging);
        pthread_mutex_lock(&s->mu);
        unreserve(s, m->uuid);
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    return commit_new_session(s, m, err, errlen);
}

int store_create(store *s, const char *uuid, const session_changes *c, session_meta *out, char *err,
                 size_t errlen)
{
    session_meta m;
    init_meta(&m, uuid, c->name);
    apply_changes(&m, c);
    m.extra = json_object();
    if (m.extra == NULL) {
        snprintf(err, errlen, "create: out of memory");
        return -1;
    }
    if (claim_new_session(s, &m, err, errlen) < 0 || build_session(s, NULL, &m, err, errlen) < 0) {
        session_meta_clear(&m);
        return -1;
    }
    *out = m;
    return 0;
}

/* ---- changing a session ---- */

/* A copy of a session that must be valid; caller holds s->mu. */
static int load_valid(store *s, const char *uuid, session_meta *out, char *err, size_t errlen)
{
    const store_entry *e = store_table_find(s, uuid);
    if (e == NULL) {
        snprintf(err, errlen, "session \"%s\" not found", uuid);
        return -1;
    }
    if (!e->valid) {
        snprintf(err, errlen, "session \"%s\" cannot be changed: %s", uuid, e->error);
        return -1;
    }
    if (session_meta_copy(out, &e->meta) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int store_commit_meta(store *s, const session_meta *m, char *err, size_t errlen)
{
    if (store_write_meta(s, m, err, errlen) < 0)
        return -1;
    store_entry e = {.valid = true};
    memcpy(e.uuid, m->uuid, UUID_STR_LEN);
    if (session_meta_copy(&e.meta, m) < 0 || store_table_put(s, &e) < 0) {
        store_entry_clear(&e);
        snprintf(err, errlen, "out of memory (the metadata was written; restart the agent)");
        return -1;
    }
    return 0;
}

static int edit_locked(store *s, const char *uuid, const session_changes *c, session_meta *m,
                       char *err, size_t errlen)
{
    session_claim *claims = NULL;
    size_t n = 0;
    if (load_valid(s, uuid, m, err, errlen) < 0)
        return -1;
    session_meta before = *m;
    apply_changes(m, c);
    bool port_changed = m->port != before.port || strcmp(m->protocol, before.protocol) != 0;
    bool dns_changed = strcmp(m->dns_name, before.dns_name) != 0;
    int rc = store_table_claims(s, &claims, &n, err, errlen);
    if (rc == 0)
        rc = store_settle_claim(s, claims, n, m, port_changed, dns_changed, err, errlen);
    free(claims);
    if (rc == 0)
        rc = store_commit_meta(s, m, err, errlen);
    if (rc < 0)
        session_meta_clear(m);
    return rc;
}

int store_edit(store *s, const char *uuid, const session_changes *c, session_meta *out, char *err,
               size_t errlen)
{
    pthread_mutex_lock(&s->mu);
    int rc = edit_locked(s, uuid, c, out, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_touch(store *s, const char *uuid, session_meta *out, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->mu);
    int rc = load_valid(s, uuid, out, err, errlen);
    if (rc == 0) {
        out->last_accessed = time(NULL);
        rc = store_commit_meta(s, out, err, errlen);
        if (rc < 0)
            session_meta_clear(out);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* The clone's metadata: the source's, renamed, without port or DNS name. */
static int clone_meta(store *s, const char *src_uuid, const char *new_uuid, const char *name,
                      session_meta *m, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->mu);
    int rc = load_valid(s, src_uuid, m, err, errlen);
    pthread_mutex_unlock(&s->mu);
    if (rc < 0)
        return -1;
    snprintf(m->uuid, sizeof m->uuid, "%s", new_uuid);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->port = PORT_NONE;
    m->dns_name[0] = '\0'; /* DNS names are unique: the copy gets none */
    m->created_at = m->last_accessed = time(NULL);
    return 0;
}

int store_clone(store *s, const char *src_uuid, const char *new_uuid, const char *name,
                session_meta *out, char *err, size_t errlen)
{
    char src_home[PATH_BUF];
    session_meta m;
    if (clone_meta(s, src_uuid, new_uuid, name, &m, err, errlen) < 0)
        return -1;
    if (store_home_path(s, src_uuid, src_home, sizeof src_home) < 0) {
        snprintf(err, errlen, "clone: path too long");
        session_meta_clear(&m);
        return -1;
    }
    if (claim_new_session(s, &m, err, errlen) < 0 ||
        build_session(s, src_home, &m, err, errlen) < 0) {
        session_meta_clear(&m);
        return -1;
    }
    *out = m;
    return 0;
}

/* Unlinks the metadata file durably; a missing one is no error. */
static int remove_meta(store *s, const char *uuid)
{
    char meta[PATH_BUF];
    if (store_meta_path(s, uuid, meta, sizeof meta) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (unlink(meta) < 0 && errno != ENOENT)
        return -1;
    return fsync_dir(s->meta_dir);
}

int store_delete(store *s, const char *uuid, char *err, size_t errlen)
{
    char home[PATH_BUF], doomed[PATH_BUF];
    if (store_home_path(s, uuid, home, sizeof home) < 0 ||
        store_staging_path(s, STAGING_DEL, uuid, doomed, sizeof doomed) < 0) {
        snprintf(err, errlen, "delete: path too long");
        return -1;
    }
    /* The home leaves first: a crash after this is finished at the next
     * start (a .del- home takes its metadata with it). A session listed
     * broken for a missing home has none to move. */
    bool had_home = rename(home, doomed) == 0;
    if ((!had_home && errno != ENOENT) || fsync_dir(s->root) < 0 || remove_meta(s, uuid) < 0) {
        snprintf(err, errlen, "delete %s: %s", uuid, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    store_table_remove(s, uuid);
    pthread_mutex_unlock(&s->mu);
    if (had_home && tree_remove(doomed) < 0)
        log_warn("delete %s: removing %s: %s (it will be retried at the next start)", uuid, doomed,
                 strerror(errno));
    return 0;
}
