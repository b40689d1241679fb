/* One status event line (SPEC 8.1), as status-serve receives it from an
 * agent on tcp/223:
 *   {"type":"container.started","agent_id":"abc12345","session_id":"<uuid>",
 *    "timestamp":"<RFC3339 UTC>","data":{...}}
 * Decoding is pure (no I/O, no globals) so it can be fuzzed alone. */
#ifndef CONVOCATE_PROTO_STATUS_EVENT_H
#define CONVOCATE_PROTO_STATUS_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define STATUS_EVENT_TYPE_MAX 64
#define STATUS_EVENT_HEARTBEAT_MIN 5
#define STATUS_EVENT_HEARTBEAT_MAX 300

typedef struct {
    json_t *root;           /* owned: the whole event */
    const char *type;       /* the rest borrow from root */
    const char *agent_id;   /* well formed, but not yet checked against the key */
    const char *session_id; /* NULL when absent */
    json_t *data;           /* NULL when absent */
} status_event;

/* Decodes and validates one line (no newline): a JSON object without
 * duplicate keys; "type" of 1..64 characters [a-z0-9._-]; a valid
 * "agent_id"; an RFC 3339 "timestamp"; "session_id", when present, a
 * canonical UUIDv4. Unknown fields are allowed (they are forwarded as they
 * are). Returns 0, or -1 with err filled and ev cleared. */
int status_event_parse(const char *line, size_t len, status_event *ev, char *err, size_t errlen);
void status_event_clear(status_event *ev);

bool status_event_is(const status_event *ev, const char *type);
/* The heartbeat period agent.started and agent.settings announce
 * (data.heartbeat_s within 5..300), else 0. */
int status_event_heartbeat(const status_event *ev);
/* data.dns_name when it is a string, else "" (validity is the caller's). */
const char *status_event_dns_name(const status_event *ev);

#endif
