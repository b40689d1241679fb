/* The session store: one directory per session under <root>/home/claude/
 * holding session.json (SPEC 4, 6). The directories are the truth; nothing
 * is cached, so a session migrated in by hand appears at the next list.
 *
 * New homes are built under a staging name (.new-<uuid>) and renamed into
 * place, and deletions rename to .del-<uuid> first, so a reader or a crash
 * never sees half a session. Claims on (port, protocol) and DNS names are
 * checked and reserved under one mutex, so two creates cannot both win. */
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

/* One session directory as found on disk. */
typedef struct {
    char uuid[UUID_STR_LEN];
    bool valid;                /* session.json parsed and validated */
    session_meta meta;         /* when valid */
    char error[STORE_ERR_LEN]; /* when not: what is wrong with session.json */
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

/* home_root: <root>/home/claude. Homes and session.json files are chowned to
 * uid:gid unless uid is KEEP_OWNER. Clears staging left by a crash. */
store *store_open(const char *home_root, uid_t uid, gid_t gid, char *err, size_t errlen);
void store_close(store *s);
void store_set_port_probe(store *s, port_probe_fn probe, void *ctx);

/* <home_root>/<uuid> and <home_root>/<uuid>.lock; 0 or -1 (too long). */
int store_home_path(const store *s, const char *uuid, char *out, size_t size);
int store_lock_path(const store *s, const char *uuid, char *out, size_t size);

/* Every session directory, sorted by uuid; unparseable ones included. */
int store_list(store *s, store_entry **out, size_t *n, char *err, size_t errlen);
void store_entries_free(store_entry *entries, size_t n);
/* One session; -1 with `session "<uuid>" not found` when there is none. A
 * directory whose session.json does not parse is found (valid = false). */
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
/* Removes the home dir (never following symlinks out of it). */
int store_delete(store *s, const char *uuid, char *err, size_t errlen);
/* Moves last_accessed to now. */
int store_touch(store *s, const char *uuid, session_meta *out, char *err, size_t errlen);

#endif
