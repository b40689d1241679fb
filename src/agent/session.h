/* The session metadata model (SPEC 6.1): a metadata file decoded,
 * validated and encoded again with every field we do not know preserved.
 * Metadata is read at start, and from old homes' session.json files, which
 * a session's container could write, so it is untrusted input: bounded,
 * strictly typed, validated field by field. */
#ifndef CONVOCATE_AGENT_SESSION_H
#define CONVOCATE_AGENT_SESSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/ids.h"
#include "proto/claude_fields.h"

#define SESSION_NAME_MAX 64
#define DNS_LABEL_MAX 63
#define SESSION_JSON_MAX (64 * 1024)
#define PORT_NONE 0
#define PORT_AUTO (-1)
#define PORT_AUTO_FIRST 1001
#define PORT_MAX 65535
#define AUTONOMOUS_DEFAULT (-1) /* not set: the agent's default_autonomous applies */

typedef struct {
    char uuid[UUID_STR_LEN];
    char name[SESSION_NAME_MAX + 1];
    int port;                         /* PORT_NONE or 1..65535 */
    char protocol[4];                 /* "tcp" or "udp" */
    char dns_name[DNS_LABEL_MAX + 1]; /* "" = none */
    char model[CLAUDE_MODEL_MAX + 1]; /* "" = none (SPEC 15) */
    int autonomous;                   /* AUTONOMOUS_DEFAULT, 0 or 1 */
    time_t created_at;
    time_t last_accessed;
    json_t *extra; /* unknown fields, kept for the next rewrite; owned */
} session_meta;

/* ^[A-Za-z0-9_-]{1,64}$ */
bool session_name_is_valid(const char *s);
/* One lowercase RFC 1123 label: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ */
bool dns_label_is_valid(const char *s);
/* "tcp" or "udp" */
bool protocol_is_valid(const char *s);
/* The session's autonomy as containers get it: its own, else the default. */
bool session_autonomous(const session_meta *m, bool agent_default);
/* The same from the session's own setting (AUTONOMOUS_DEFAULT, 0 or 1). */
bool autonomy_effective(int setting, bool agent_default);

/* Decodes metadata text. expect_uuid (may be NULL) must match its "uuid"
 * field, so a file copied under the wrong name is reported, not trusted.
 * Returns 0, or -1 with err saying what is wrong. */
int session_decode(const char *text, size_t len, const char *expect_uuid, session_meta *out,
                   char *err, size_t errlen);

/* The metadata object: known fields and the preserved unknown ones.
 * "model" is always written; "autonomous" only when the session sets it. */
json_t *session_to_json(const session_meta *m);
/* Metadata text ending in '\n'; malloc'd, NULL on allocation failure. */
char *session_encode(const session_meta *m, size_t *len);

/* Deep copy (the unknown fields too); 0 or -1 on allocation failure. */
int session_meta_copy(session_meta *dst, const session_meta *src);
void session_meta_clear(session_meta *m);

#endif
