/* What the store's files share (store.c: the table, reads, start-up;
 * store_write.c: create, edit, clone, touch, delete; store_migrate.c: the
 * move of pre-6.1 session.json files out of the homes). Not for other
 * parts of the agent: they use store.h. */
#ifndef CONVOCATE_AGENT_STORE_INTERNAL_H
#define CONVOCATE_AGENT_STORE_INTERNAL_H

#include <pthread.h>

#include "agent/store.h"

#define STAGING_DEL ".del-"
#define META_SUFFIX ".json"

/* One session in the table, and the head of its session object as text
 * (session_text.h), encoded when the row is put, so that list joins cached
 * texts instead of encoding every session on every call (issue 13). */
typedef struct {
    store_entry e;
    char *head; /* malloc'd */
    size_t head_len;
} store_row;

struct store {
    char root[PATH_BUF];     /* <root>/home/claude: the homes */
    char meta_dir[PATH_BUF]; /* <root>/var/lib/convocate-agent/sessions */
    uid_t uid;               /* owner of homes (metadata stays the agent's) */
    gid_t gid;
    port_probe_fn probe;
    void *probe_ctx;
    /* Guards the table and the reservations. Held around claims checks and
     * metadata writes (files the agent alone writes), never across a read
     * from a home nor an engine call. */
    pthread_mutex_t mu;
    store_row *table; /* every session, sorted by uuid (issue 13) */
    size_t n, cap;
    session_claim *reserved; /* creates between their check and their commit */
    size_t n_reserved, cap_reserved;
    unsigned long scans; /* directory scans since open: start-up only */
};

/* <home_root>/<prefix><uuid>; 0 or -1 (too long). */
int store_staging_path(const store *s, const char *prefix, const char *uuid, char *out,
                       size_t size);

/* The table; the caller holds s->mu (or is alone, at start-up). */
store_entry *store_table_find(store *s, const char *uuid);
/* Takes e's contents (replacing an entry of the same uuid) and encodes its
 * head; 0, or -1 when out of memory (e is then still the caller's). */
int store_table_put(store *s, store_entry *e);
void store_table_remove(store *s, const char *uuid);
/* Every valid session's claim plus the reservations; *out malloc'd. */
int store_table_claims(store *s, session_claim **out, size_t *n, char *err, size_t errlen);

/* Writes <meta_dir>/<uuid>.json atomically, root 0600. 0 or -1 with err. */
int store_write_meta(const store *s, const session_meta *m, char *err, size_t errlen);
/* store_write_meta, then (once on disk) the table entry; caller holds
 * s->mu. 0 or -1 with err. */
int store_commit_meta(store *s, const session_meta *m, char *err, size_t errlen);
/* Resolves PORT_AUTO and checks m's claims against everyone else's. */
int store_settle_claim(store *s, const session_claim *claims, size_t n, session_meta *m,
                       bool check_port, bool check_dns, char *err, size_t errlen);

/* Start-up (store_migrate.c): for every home the table does not know yet,
 * moves its session.json into the metadata directory, or lists it broken;
 * from homes the table knows, removes a stale session.json unread. */
void store_migrate_homes(store *s);

#endif
