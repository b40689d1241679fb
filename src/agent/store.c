/* The store's table and its reads, and the store's start: sweeping what a
 * crash left, loading every metadata file once, validated. */
#include "agent/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/lock.h"
#include "agent/session_text.h"
#include "agent/store_internal.h"
#include "common/array.h"
#include "common/fileio.h"
#include "common/layout.h"
#include "common/log.h"
#include "common/tree.h"

/* ---- paths ---- */

int store_home_path(const store *s, const char *uuid, char *out, size_t size)
{
    return snprintf(out, size, "%s/%s", s->root, uuid) < (int)size ? 0 : -1;
}

int store_lock_path(const store *s, const char *uuid, char *out, size_t size)
{
    return snprintf(out, size, "%s/%s.lock", s->root, uuid) < (int)size ? 0 : -1;
}

int store_meta_path(const store *s, const char *uuid, char *out, size_t size)
{
    return snprintf(out, size, "%s/%s%s", s->meta_dir, uuid, META_SUFFIX) < (int)size ? 0 : -1;
}

const char *store_root(const store *s)
{
    return s->root;
}

int store_staging_path(const store *s, const char *prefix, const char *uuid, char *out, size_t size)
{
    return snprintf(out, size, "%s/%s%s", s->root, prefix, uuid) < (int)size ? 0 : -1;
}

/* ---- the table ---- */

/* Index of uuid, or where it would go (*found false). */
static size_t table_index(const store *s, const char *uuid, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->table[mid].e.uuid, uuid);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

store_entry *store_table_find(store *s, const char *uuid)
{
    bool found;
    size_t i = table_index(s, uuid, &found);
    return found ? &s->table[i].e : NULL;
}

static void row_clear(store_row *row)
{
    store_entry_clear(&row->e);
    free(row->head);
    row->head = NULL;
}

int store_table_put(store *s, store_entry *e)
{
    store_row row = {.e = *e};
    row.head = session_text_head(e, &row.head_len);
    if (row.head == NULL)
        return -1;
    bool found;
    size_t i = table_index(s, e->uuid, &found);
    if (found) {
        row_clear(&s->table[i]);
        s->table[i] = row;
        return 0;
    }
    if (grow_array(&s->table, &s->cap, s->n + 1, sizeof *s->table, 64) < 0) {
        free(row.head);
        return -1;
    }
    memmove(&s->table[i + 1], &s->table[i], (s->n - i) * sizeof *s->table);
    s->table[i] = row;
    s->n++;
    return 0;
}

void store_table_remove(store *s, const char *uuid)
{
    bool found;
    size_t i = table_index(s, uuid, &found);
    if (!found)
        return;
    row_clear(&s->table[i]);
    memmove(&s->table[i], &s->table[i + 1], (s->n - i - 1) * sizeof *s->table);
    s->n--;
}

int store_table_claims(store *s, session_claim **out, size_t *n, char *err, size_t errlen)
{
    session_claim *claims = calloc(s->n + s->n_reserved + 1, sizeof *claims);
    if (claims == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->table[i].e.valid) /* a broken session claims nothing we can know */
            claim_from_meta(&claims[k++], &s->table[i].e.meta);
    for (size_t i = 0; i < s->n_reserved; i++)
        claims[k++] = s->reserved[i];
    *out = claims;
    *n = k;
    return 0;
}

/* ---- reading (from memory) ---- */

static int entry_copy(store_entry *dst, const store_entry *src)
{
    *dst = *src;
    if (!src->valid)
        return 0;
    if (session_meta_copy(&dst->meta, &src->meta) < 0) {
        dst->valid = false;
        return -1;
    }
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
    for (size_t i = 0; entries && i < n; i++)
        store_entry_clear(&entries[i]);
    free(entries);
}

/* The heads' total size; caller holds s->mu. */
static size_t heads_size(const store *s)
{
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++)
        total += s->table[i].head_len;
    return total;
}

int store_list_heads(store *s, store_heads *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    /* One copy under the mutex, so a write during the answer's assembly
     * neither waits for it nor frees a head it reads. */
    out->items = malloc((s->n + 1) * sizeof *out->items);
    out->text = malloc(heads_size(s) + 1);
    size_t off = 0;
    for (size_t i = 0; out->items && out->text && i < s->n; i++) {
        const store_row *row = &s->table[i];
        store_head *h = &out->items[i];
        memcpy(h->uuid, row->e.uuid, UUID_STR_LEN);
        h->valid = row->e.valid;
        h->autonomous = row->e.valid ? row->e.meta.autonomous : AUTONOMOUS_DEFAULT;
        h->head_off = off;
        h->len = row->head_len;
        memcpy(out->text + off, row->head, row->head_len);
        off += row->head_len;
    }
    out->n = s->n;
    out->text_len = off;
    pthread_mutex_unlock(&s->mu);
    if (out->items == NULL || out->text == NULL) {
        store_heads_free(out);
        snprintf(err, errlen, "list: out of memory");
        return -1;
    }
    return 0;
}

void store_heads_free(store_heads *h)
{
    free(h->items);
    free(h->text);
    memset(h, 0, sizeof *h);
}

int store_get(store *s, const char *uuid, store_entry *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!uuid_v4_is_valid(uuid)) {
        snprintf(err, errlen, "session \"%.64s\" not found", uuid);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    const store_entry *e = store_table_find(s, uuid);
    int rc = e == NULL ? 1 : entry_copy(out, e);
    pthread_mutex_unlock(&s->mu);
    if (rc == 1)
        snprintf(err, errlen, "session \"%s\" not found", uuid);
    else if (rc < 0)
        snprintf(err, errlen, "get: out of memory");
    return rc == 0 ? 0 : -1;
}

unsigned long store_scans(store *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned long n = s->scans;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- start-up: what a crash left ---- */

/* A lock file whose session has no home: the lock of a create cut short. */
static bool is_orphan_lock(int dirfd, const char *name)
{
    char uuid[UUID_STR_LEN];
    struct stat st;
    return lock_file_uuid(name, uuid) && fstatat(dirfd, uuid, &st, AT_SYMLINK_NOFOLLOW) < 0;
}

/* A staged home (.new-<uuid>) without its home is a create or clone cut
 * short, a half-deleted one (.del-<uuid>) a delete: either way any metadata
 * of that uuid is the interrupted operation's and goes with it. */
static void drop_staged_meta(store *s, int dirfd, const char *name, size_t prefix_len)
{
    const char *uuid = name + prefix_len;
    char meta[PATH_BUF];
    struct stat st;
    if (!uuid_v4_is_valid(uuid) || fstatat(dirfd, uuid, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
        store_meta_path(s, uuid, meta, sizeof meta) < 0)
        return;
    if (unlink(meta) == 0)
        log_info("removed %s, the metadata of an interrupted create or delete", meta);
}

static void recover_entry(store *s, int dirfd, const char *name)
{
    size_t new_len = strlen(AGENT_STAGING_PREFIX), del_len = strlen(STAGING_DEL);
    bool is_new = strncmp(name, AGENT_STAGING_PREFIX, new_len) == 0;
    bool is_del = strncmp(name, STAGING_DEL, del_len) == 0;
    bool lock_tmp = strstr(name, ".lock.tmp-") != NULL;
    bool orphan_lock = is_orphan_lock(dirfd, name);
    char path[PATH_BUF];
    if ((!is_new && !is_del && !lock_tmp && !orphan_lock) ||
        snprintf(path, sizeof path, "%s/%s", s->root, name) >= (int)sizeof path)
        return;
    if (orphan_lock) {
        lock_is_held(path); /* removes it when stale, keeps a live one */
        return;
    }
    if (is_new || is_del)
        drop_staged_meta(s, dirfd, name, is_new ? new_len : del_len);
    log_info("removing %s left by an interrupted operation", path);
    if (tree_remove(path) < 0)
        log_warn("cannot remove %s: %s", path, strerror(errno));
}

/* Removes staged homes, half-deleted homes, temporaries, and the stale
 * locks of sessions that never came to be. */
static void recover_homes(store *s)
{
    DIR *dir = opendir(s->root);
    if (dir == NULL)
        return;
    s->scans++;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        recover_entry(s, dirfd(dir), de->d_name);
    closedir(dir);
}

/* ---- start-up: loading the metadata ---- */

/* "<uuid>.json" -> uuid; false for any other name (temporaries included). */
static bool meta_file_uuid(const char *name, char uuid[UUID_STR_LEN])
{
    size_t n = strlen(name);
    if (n != UUID_STR_LEN - 1 + strlen(META_SUFFIX) || strcmp(name + UUID_STR_LEN - 1, META_SUFFIX))
        return false;
    memcpy(uuid, name, UUID_STR_LEN - 1);
    uuid[UUID_STR_LEN - 1] = '\0';
    return uuid_v4_is_valid(uuid);
}

/* One metadata file into an entry, validated as create and edit validate. */
static void load_meta(store *s, int dirfd, const char *name, const char *uuid, store_entry *e)
{
    char *text = NULL, why[STORE_ERR_LEN];
    size_t len = 0;
    memset(e, 0, sizeof *e);
    memcpy(e->uuid, uuid, UUID_STR_LEN);
    if (read_untrusted_at(dirfd, name, SESSION_JSON_MAX, &text, &len) < 0) {
        snprintf(e->error, sizeof e->error, "metadata: %s", untrusted_read_error(errno));
    } else if (session_decode(text, len, uuid, &e->meta, why, sizeof why) < 0) {
        snprintf(e->error, sizeof e->error, "metadata: %.200s", why);
    } else {
        e->valid = true;
    }
    free(text);
    struct stat st;
    char home[PATH_BUF];
    if (e->valid && (store_home_path(s, uuid, home, sizeof home) < 0 || lstat(home, &st) < 0 ||
                     !S_ISDIR(st.st_mode))) {
        session_meta_clear(&e->meta);
        e->valid = false;
        snprintf(e->error, sizeof e->error, "its home directory is missing");
    }
    if (!e->valid)
        log_warn("session %s is broken: %s (%s/%s)", uuid, e->error, s->meta_dir, name);
}

static void load_meta_dir(store *s)
{
    DIR *dir = opendir(s->meta_dir);
    if (dir == NULL) {
        log_warn("cannot read %s: %s", s->meta_dir, strerror(errno));
        return;
    }
    s->scans++;
    struct dirent *de;
    char uuid[UUID_STR_LEN], path[PATH_BUF];
    while ((de = readdir(dir)) != NULL) {
        store_entry e;
        if (meta_file_uuid(de->d_name, uuid)) {
            load_meta(s, dirfd(dir), de->d_name, uuid, &e);
            if (store_table_put(s, &e) < 0)
                store_entry_clear(&e);
        } else if (strstr(de->d_name, ".tmp-") != NULL &&
                   snprintf(path, sizeof path, "%s/%s", s->meta_dir, de->d_name) <
                       (int)sizeof path) {
            unlink(path); /* an atomic write cut short; the old file stands */
        }
    }
    closedir(dir);
}

/* ---- open, close ---- */

static int make_dirs(store *s, char *err, size_t errlen)
{
    if (mkdir_p(s->root, 0755) < 0) {
        snprintf(err, errlen, "store: create %s: %s", s->root, strerror(errno));
        return -1;
    }
    /* Only the agent reads session metadata; 0700 also for an old dir. */
    if (mkdir_p(s->meta_dir, 0755) < 0 || chmod(s->meta_dir, 0700) < 0) {
        snprintf(err, errlen, "store: create %s: %s", s->meta_dir, strerror(errno));
        return -1;
    }
    return 0;
}

store *store_open(const char *home_root, const char *meta_dir, uid_t uid, gid_t gid, char *err,
                  size_t errlen)
{
    store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "store: out of memory");
        return NULL;
    }
    if (snprintf(s->root, sizeof s->root, "%s", home_root) >= (int)sizeof s->root ||
        snprintf(s->meta_dir, sizeof s->meta_dir, "%s", meta_dir) >= (int)sizeof s->meta_dir) {
        snprintf(err, errlen, "store: path too long");
        free(s);
        return NULL;
    }
    if (make_dirs(s, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    s->uid = uid;
    s->gid = gid;
    s->probe = host_port_is_free;
    pthread_mutex_init(&s->mu, NULL);
    recover_homes(s);
    load_meta_dir(s);
    store_migrate_homes(s);
    log_info("store: %zu session%s loaded from %s", s->n, s->n == 1 ? "" : "s", s->meta_dir);
    return s;
}

void store_close(store *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        row_clear(&s->table[i]);
    free(s->table);
    free(s->reserved);
    free(s);
}

void store_set_port_probe(store *s, port_probe_fn probe, void *ctx)
{
    s->probe = probe;
    s->probe_ctx = ctx;
}
