#include "agent/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/claims.h"
#include "agent/disk_error.h"
#include "agent/lock.h"
#include "agent/store_recover.h"
#include "common/array.h"
#include "common/fileio.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/tree.h"

struct store {
    char root[PATH_BUF]; /* <root>/home/claude */
    uid_t uid;
    gid_t gid;
    port_probe_fn probe;
    void *probe_ctx;
    /* Held while claims are checked and reserved, and around read-modify-
     * write of an existing session.json; never across an engine call. */
    pthread_mutex_t mu;
    session_claim *reserved; /* creates between their check and their rename */
    size_t n_reserved, cap_reserved;
};

/* ---- paths ---- */

int store_home_path(const store *s, const char *uuid, char *out, size_t size)
{
    return snprintf(out, size, "%s/%s", s->root, uuid) < (int)size ? 0 : -1;
}

int store_lock_path(const store *s, const char *uuid, char *out, size_t size)
{
    return snprintf(out, size, "%s/%s.lock", s->root, uuid) < (int)size ? 0 : -1;
}

static int staging_path(const store *s, const char *prefix, const char *uuid, char *out,
                        size_t size)
{
    return snprintf(out, size, "%s/%s%s", s->root, prefix, uuid) < (int)size ? 0 : -1;
}

/* ---- reading ---- */

/* 0, or -1 when uuid's home has gone since it was found: a delete renamed
 * it away meanwhile, and a session deleted is not a broken one. */
static int load_entry(const store *s, const char *uuid, store_entry *e)
{
    memset(e, 0, sizeof *e);
    memcpy(e->uuid, uuid, UUID_STR_LEN);
    char path[PATH_BUF], why[STORE_ERR_LEN];
    char *text = NULL;
    size_t len = 0;
    if (snprintf(path, sizeof path, "%s/%s/%s", s->root, uuid, SESSION_FILE) >= (int)sizeof path) {
        snprintf(e->error, sizeof e->error, "session.json: path too long");
        return 0;
    }
    if (read_file_bounded(path, SESSION_JSON_MAX, &text, &len) < 0) {
        int saved = errno;
        struct stat st;
        if (saved == ENOENT && store_home_path(s, uuid, path, sizeof path) == 0 &&
            lstat(path, &st) < 0 && errno == ENOENT)
            return -1;
        snprintf(e->error, sizeof e->error, "session.json: %s",
                 saved == EFBIG ? "too large" : strerror(saved));
        return 0;
    }
    if (session_decode(text, len, uuid, &e->meta, why, sizeof why) < 0)
        snprintf(e->error, sizeof e->error, "session.json: %.200s", why);
    else
        e->valid = true;
    free(text);
    return 0;
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const store_entry *)a)->uuid, ((const store_entry *)b)->uuid);
}

/* Collects the uuids of the session directories; *out malloc'd. */
static int scan_uuids(const store *s, char (**out)[UUID_STR_LEN], size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *dir = opendir(s->root);
    if (dir == NULL)
        return -1;
    size_t cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!is_session_dir(dirfd(dir), de->d_name))
            continue;
        if (grow_array(out, &cap, *n + 1, sizeof **out, 32) < 0) {
            rc = -1;
            break;
        }
        memcpy((*out)[(*n)++], de->d_name, UUID_STR_LEN);
    }
    closedir(dir);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int store_list(store *s, store_entry **out, size_t *n, char *err, size_t errlen)
{
    char(*uuids)[UUID_STR_LEN];
    size_t count;
    *out = NULL;
    *n = 0;
    if (scan_uuids(s, &uuids, &count) < 0) {
        snprintf(err, errlen, "list %s: %s", s->root, strerror(errno));
        return -1;
    }
    store_entry *entries = count ? calloc(count, sizeof *entries) : NULL;
    if (count && entries == NULL) {
        free(uuids);
        snprintf(err, errlen, "list: out of memory");
        return -1;
    }
    size_t found = 0;
    for (size_t i = 0; i < count; i++)
        found += load_entry(s, uuids[i], &entries[found]) == 0;
    free(uuids);
    if (found)
        qsort(entries, found, sizeof *entries, compare_entries);
    *out = entries;
    *n = found;
    return 0;
}

void store_entry_clear(store_entry *e)
{
    if (e->valid)
        session_meta_clear(&e->meta);
    e->valid = false;
}

void store_entries_free(store_entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_entry_clear(&entries[i]);
    free(entries);
}

int store_get(store *s, const char *uuid, store_entry *out, char *err, size_t errlen)
{
    char home[PATH_BUF];
    struct stat st;
    memset(out, 0, sizeof *out);
    if (!uuid_v4_is_valid(uuid) || store_home_path(s, uuid, home, sizeof home) < 0 ||
        lstat(home, &st) < 0 || !S_ISDIR(st.st_mode) || load_entry(s, uuid, out) < 0) {
        snprintf(err, errlen, "session \"%.64s\" not found", uuid);
        return -1;
    }
    return 0;
}

/* Every claim on disk plus the reservations; caller holds s->mu. */
static int gather_claims(store *s, session_claim **out, size_t *n, char *err, size_t errlen)
{
    store_entry *entries;
    size_t count;
    if (store_list(s, &entries, &count, err, errlen) < 0)
        return -1;
    session_claim *claims = calloc(count + s->n_reserved + 1, sizeof *claims);
    if (claims == NULL) {
        store_entries_free(entries, count);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        if (entries[i].valid) /* an unreadable session claims nothing we can know */
            claim_from_meta(&claims[k++], &entries[i].meta);
    for (size_t i = 0; i < s->n_reserved; i++)
        claims[k++] = s->reserved[i];
    store_entries_free(entries, count);
    *out = claims;
    *n = k;
    return 0;
}

/* ---- writing ---- */

static int write_meta(const store *s, const char *dir, const session_meta *m, char *err,
                      size_t errlen)
{
    char path[PATH_BUF];
    size_t len;
    char *text = session_encode(m, &len);
    if (text == NULL) {
        snprintf(err, errlen, "encode session.json: out of memory");
        return -1;
    }
    int rc = snprintf(path, sizeof path, "%s/%s", dir, SESSION_FILE) < (int)sizeof path
                 ? atomic_write_file(path, text, len, 0600, s->uid, s->gid)
                 : (errno = ENAMETOOLONG, -1);
    if (rc < 0)
        disk_error(err, errlen, errno, "write %s/%s", m->uuid, SESSION_FILE);
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

static void unreserve(store *s, const char *uuid)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_reserved; i++) {
        if (strcmp(s->reserved[i].uuid, uuid) == 0) {
            s->reserved[i] = s->reserved[--s->n_reserved];
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* Resolves PORT_AUTO and checks the claim against everyone else's. */
static int settle_claim(store *s, const session_claim *claims, size_t n, session_meta *m,
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
    int rc = gather_claims(s, &claims, &n, err, errlen);
    if (rc == 0)
        rc = settle_claim(s, claims, n, m, true, true, err, errlen);
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

/* Renames the staged home into place and makes the rename durable. */
static int publish_home(store *s, const char *staging, const char *uuid, char *err, size_t errlen)
{
    char home[PATH_BUF];
    if (store_home_path(s, uuid, home, sizeof home) < 0 || rename(staging, home) < 0 ||
        fsync_dir(s->root) < 0) {
        disk_error(err, errlen, errno, "commit the session home");
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

static int build_home(store *s, const char *staging, const session_meta *m, char *err,
                      size_t errlen)
{
    if (make_home(s, staging, err, errlen) < 0 || write_meta(s, staging, m, err, errlen) < 0)
        return -1;
    return publish_home(s, staging, m->uuid, err, errlen);
}

int store_create(store *s, const char *uuid, const session_changes *c, session_meta *out, char *err,
                 size_t errlen)
{
    char staging[PATH_BUF];
    session_meta m;
    init_meta(&m, uuid, c->name);
    if (c->has_port)
        m.port = c->port;
    if (c->protocol)
        snprintf(m.protocol, sizeof m.protocol, "%s", c->protocol);
    if (c->dns_name)
        snprintf(m.dns_name, sizeof m.dns_name, "%s", c->dns_name);
    if (c->model)
        snprintf(m.model, sizeof m.model, "%s", c->model);
    if (c->has_autonomous)
        m.autonomous = c->autonomous;
    m.extra = json_object();
    if (m.extra == NULL ||
        staging_path(s, AGENT_STAGING_PREFIX, uuid, staging, sizeof staging) < 0) {
        snprintf(err, errlen, "create: out of memory or path too long");
        session_meta_clear(&m);
        return -1;
    }
    if (claim_new_session(s, &m, err, errlen) < 0) {
        session_meta_clear(&m);
        return -1;
    }
    int rc = build_home(s, staging, &m, err, errlen);
    if (rc < 0)
        tree_remove(staging);
    unreserve(s, uuid);
    if (rc == 0)
        *out = m;
    else
        session_meta_clear(&m);
    return rc;
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

/* Loads a session that must parse; caller holds s->mu or the session lock. */
static int load_valid(store *s, const char *uuid, session_meta *out, char *err, size_t errlen)
{
    store_entry e;
    if (store_get(s, uuid, &e, err, errlen) < 0)
        return -1;
    if (!e.valid) {
        snprintf(err, errlen, "session \"%s\" cannot be changed: %s", uuid, e.error);
        return -1;
    }
    *out = e.meta;
    return 0;
}

static int edit_locked(store *s, const char *uuid, const session_changes *c, session_meta *m,
                       char *err, size_t errlen)
{
    session_claim *claims = NULL;
    size_t n = 0;
    char home[PATH_BUF];
    if (load_valid(s, uuid, m, err, errlen) < 0)
        return -1;
    session_meta before = *m;
    apply_changes(m, c);
    bool port_changed = m->port != before.port || strcmp(m->protocol, before.protocol) != 0;
    bool dns_changed = strcmp(m->dns_name, before.dns_name) != 0;
    int rc = gather_claims(s, &claims, &n, err, errlen);
    if (rc == 0)
        rc = settle_claim(s, claims, n, m, port_changed, dns_changed, err, errlen);
    free(claims);
    if (rc == 0)
        rc = store_home_path(s, uuid, home, sizeof home) < 0 ? -1
                                                             : write_meta(s, home, m, err, errlen);
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
    char home[PATH_BUF];
    pthread_mutex_lock(&s->mu);
    int rc = load_valid(s, uuid, out, err, errlen);
    if (rc == 0) {
        out->last_accessed = time(NULL);
        rc = store_home_path(s, uuid, home, sizeof home) < 0
                 ? -1
                 : write_meta(s, home, out, err, errlen);
        if (rc < 0)
            session_meta_clear(out);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int store_clone(store *s, const char *src_uuid, const char *new_uuid, const char *name,
                session_meta *out, char *err, size_t errlen)
{
    char src_home[PATH_BUF], staging[PATH_BUF];
    session_meta src, m;
    if (load_valid(s, src_uuid, &src, err, errlen) < 0)
        return -1;
    int rc = -1;
    if (session_meta_copy(&m, &src) < 0) {
        snprintf(err, errlen, "clone: out of memory");
        goto done_src;
    }
    snprintf(m.uuid, sizeof m.uuid, "%s", new_uuid);
    snprintf(m.name, sizeof m.name, "%s", name);
    m.port = PORT_NONE;
    m.dns_name[0] = '\0'; /* DNS names are unique: the copy gets none */
    m.created_at = m.last_accessed = time(NULL);
    if (store_home_path(s, src_uuid, src_home, sizeof src_home) < 0 ||
        staging_path(s, AGENT_STAGING_PREFIX, new_uuid, staging, sizeof staging) < 0) {
        snprintf(err, errlen, "clone: path too long");
        goto done;
    }
    if (tree_copy(src_home, staging, s->uid, s->gid) < 0) {
        disk_error(err, errlen, errno, "clone: copy the home dir");
        tree_remove(staging);
        goto done;
    }
    rc = write_meta(s, staging, &m, err, errlen);
    if (rc == 0)
        rc = publish_home(s, staging, new_uuid, err, errlen);
    if (rc < 0)
        tree_remove(staging);
done:
    if (rc == 0)
        *out = m;
    else
        session_meta_clear(&m);
done_src:
    session_meta_clear(&src);
    return rc;
}

int store_delete(store *s, const char *uuid, char *err, size_t errlen)
{
    char home[PATH_BUF], doomed[PATH_BUF];
    if (store_home_path(s, uuid, home, sizeof home) < 0 ||
        staging_path(s, STAGING_DEL, uuid, doomed, sizeof doomed) < 0) {
        snprintf(err, errlen, "delete: path too long");
        return -1;
    }
    /* Gone from every listing at once; the slow removal happens after. */
    if (rename(home, doomed) < 0 || fsync_dir(s->root) < 0) {
        snprintf(err, errlen, "delete %s: %s", uuid, strerror(errno));
        return -1;
    }
    if (tree_remove(doomed) < 0)
        log_warn("delete %s: removing %s: %s (it will be retried at the next start)", uuid, doomed,
                 strerror(errno));
    return 0;
}

/* ---- life cycle ---- */

store *store_open(const char *home_root, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "store: out of memory");
        return NULL;
    }
    if (snprintf(s->root, sizeof s->root, "%s", home_root) >= (int)sizeof s->root) {
        snprintf(err, errlen, "store: path too long");
        free(s);
        return NULL;
    }
    if (mkdir_p(s->root, 0755) < 0) {
        snprintf(err, errlen, "store: create %s: %s", s->root, strerror(errno));
        free(s);
        return NULL;
    }
    s->uid = uid;
    s->gid = gid;
    s->probe = host_port_is_free;
    pthread_mutex_init(&s->mu, NULL);
    store_recover(s->root);
    return s;
}

void store_close(store *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->reserved);
    free(s);
}

void store_set_port_probe(store *s, port_probe_fn probe, void *ctx)
{
    s->probe = probe;
    s->probe_ctx = ctx;
}
