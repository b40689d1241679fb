/* The session store (SPEC 4, 6.1). A session is a home directory under
 * <root>/home/claude/<uuid>/ (user data only: its container writes it) and a
 * metadata file <root>/var/lib/convocate-agent/sessions/<uuid>.json that
 * only the agent writes (root 0600, atomically).
 *
 * Every session is held in memory (issue 13): the table is loaded once at
 * open, validated file by file, and kept up to date by the store's own
 * writes, so list and get never touch the disk. Metadata written behind the
 * agent's back is not seen until the next start (or adopt, for a home
 * without metadata).
 *
 * New homes are built under a staging name (.new-<uuid>) and renamed into
 * place after their metadata is durable; deletions rename the home to
 * .del-<uuid> first. A crash at any point leaves what the next open
 * finishes or sweeps. Claims on (port, protocol) and DNS names are checked
 * and reserved under one mutex, so two creates cannot both win. */
#ifndef CONVOCATE_AGENT_STORE_H
#define CONVOCATE_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "agent/claims.h"
#include "agent/session.h"
#include "common/paths.h"

#define STORE_ERR_LEN 256

typedef struct store store;

/* One session. */
typedef struct {
    char uuid[UUID_STR_LEN];
    bool valid;                /* its metadata parsed and validated */
    bool unmigrated;           /* a home with no metadata file (yet) */
    session_meta meta;         /* when valid */
    char error[STORE_ERR_LEN]; /* when not: what is wrong, for "error" */
} store_entry;

/* What create and edit ask for. NULL / has_* false = keep (edit) or the
 * default (create). port may be PORT_AUTO; dns_name "" removes the name,
 * model "" the model; autonomous AUTONOMOUS_DEFAULT returns the session to
 * the agent's default_autonomous. */
typedef struct {
    const char *name;
    bool has_port;
    int port;
    const char *protocol;
    const char *dns_name;
    const char *model;
    bool has_autonomous;
    int autonomous;
} session_changes;

/* home_root: <root>/home/claude, meta_dir: <root>/var/lib/convocate-agent/
 * sessions (made 0700). Homes are chowned to uid:gid unless uid is
 * KEEP_OWNER; metadata keeps the agent's own owner. Finishes or sweeps what
 * a crash left, moves pre-6.1 session.json files over, loads the table. */
store *store_open(const char *home_root, const char *meta_dir, uid_t uid, gid_t gid, char *err,
                  size_t errlen);
void store_close(store *s);
void store_set_port_probe(store *s, port_probe_fn probe, void *ctx);

/* <home_root>/<uuid> and <home_root>/<uuid>.lock; 0 or -1 (too long). */
int store_home_path(const store *s, const char *uuid, char *out, size_t size);
int store_lock_path(const store *s, const char *uuid, char *out, size_t size);

/* <home_root>: the homes and their lock files. */
const char *store_root(const store *s);
/* <meta_dir>/<uuid>.json; 0 or -1 (too long). */
int store_meta_path(const store *s, const char *uuid, char *out, size_t size);
/* Directory scans since open; they happen at open only, never per list. */
unsigned long store_scans(store *s);

void store_entries_free(store_entry *entries, size_t n);

/* What list needs of every session, copied from memory in one go: the
 * cached head of its object (session_text.h) and what its tail depends on. */
typedef struct {
    char uuid[UUID_STR_LEN];
    bool valid;
    int autonomous;       /* the session's own setting (AUTONOMOUS_DEFAULT: none) */
    size_t head_off, len; /* its head: text + head_off, len bytes */
} store_head;

typedef struct {
    store_head *items; /* sorted by uuid */
    size_t n;
    char *text; /* every head, one after another */
    size_t text_len;
} store_heads;

/* 0, or -1 with err when out of memory. */
int store_list_heads(store *s, store_heads *out, char *err, size_t errlen);
void store_heads_free(store_heads *h);
/* One session from memory; -1 with `session "<uuid>" not found` when there
 * is none. A broken one is found (valid = false). */
int store_get(store *s, const char *uuid, store_entry *out, char *err, size_t errlen);
void store_entry_clear(store_entry *e);

/* The caller has validated the strings and minted uuid. The skel directory
 * <home_root>/.skel is copied when it exists. *out is the new session. */
int store_create(store *s, const char *uuid, const session_changes *c, session_meta *out, char *err,
                 size_t errlen);
int store_edit(store *s, const char *uuid, const session_changes *c, session_meta *out, char *err,
               size_t errlen);
/* Copies the source home to new_uuid: new name, port 0, no DNS name, fresh
 * times; the source's model, autonomy and unknown fields kept. */
int store_clone(store *s, const char *src_uuid, const char *new_uuid, const char *name,
                session_meta *out, char *err, size_t errlen);
/* Removes the home dir (never following symlinks out of it) and the
 * metadata. */
int store_delete(store *s, const char *uuid, char *err, size_t errlen);
/* Moves last_accessed to now. */
int store_touch(store *s, const char *uuid, session_meta *out, char *err, size_t errlen);
/* Takes in a home that has no metadata file, such as one migrate-session
 * just untarred: its session.json is read as untrusted input, validated,
 * checked against the others' claims, written as metadata and removed from
 * the home. Refused for any session that has metadata, so a session can
 * never get its own home's session.json adopted. */
int store_adopt(store *s, const char *uuid, session_meta *out, char *err, size_t errlen);

#endif
