/* A session object of SPEC 7 as text, in two parts (issue 13). The head
 * holds the fields that change only with the metadata ("uuid" .. the last
 * metadata field, or "uuid" and "error" for a broken session): the store
 * encodes it once per change and keeps it, so list never builds or encodes
 * those again. The tail holds what is true only now ("autonomous", which
 * follows the agent's default, "running", "attached", "locked", "state",
 * "activity"), written per call. Head + tail are byte for byte what
 * session_object (ops.h) encodes to for the same session. */
#ifndef CONVOCATE_AGENT_SESSION_TEXT_H
#define CONVOCATE_AGENT_SESSION_TEXT_H

#include <jansson.h>
#include <stdbool.h>

#include "agent/store.h"
#include "common/textbuf.h"

/* The per-call fields of one session. */
typedef struct {
    bool running;
    int attached;     /* operators attached now; 0 unless running */
    bool locked;      /* a live lock file that the caller does not hold */
    bool autonomous;  /* effective: its own setting, else the agent's default */
    json_t *activity; /* borrowed; NULL or JSON null when none */
} session_live;

/* SPEC 6.2's state character. */
const char *session_state_char(bool valid, bool running, int attached, bool locked);

/* The head's fields as an object, for session_object; NULL when out of
 * memory. */
json_t *session_head_object(const store_entry *e);

/* The head of e's object: the object's compact text without its closing
 * brace. malloc'd; NULL when out of memory. */
char *session_text_head(const store_entry *e, size_t *len);

/* Appends the tail that closes a head: valid says whether the head was a
 * valid session's ("autonomous" is left out of a broken one's). */
void session_text_tail(textbuf *b, bool valid, const session_live *live);

#endif
