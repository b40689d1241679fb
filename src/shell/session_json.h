/* `convocate ls --json`'s text, built a session at a time. Each session is
 * rendered on its agent's call thread while other agents are still
 * answering (see agent_call_some_then), so that what is left after the last
 * answer is a sort and a copy, not the encoding of every session. The bytes
 * are exactly jansson's json_dumpf(array, JSON_INDENT(2)) of the sorted
 * list: scripts that read the old output read this one. */
#ifndef CONVOCATE_SHELL_SESSION_JSON_H
#define CONVOCATE_SHELL_SESSION_JSON_H

#include <jansson.h>
#include <stdio.h>

/* The session as an element of an indented top-level array: every line
 * indented by two more spaces than json_dumps(s, JSON_INDENT(2)) gives,
 * without a separator or newline at the end. malloc'd; NULL when out of
 * memory. */
char *session_json_render(json_t *session);

/* Prints n rendered sessions as one JSON array and a newline; -1 with errno
 * when writing failed. */
int session_json_print(FILE *out, char *const *items, size_t n);
/* How many bytes session_json_print writes for the same items. */
size_t session_json_length(char *const *items, size_t n);

#endif
