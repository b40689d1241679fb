/* The rules for the Claude settings that travel between shell and agent
 * (SPEC 7 auth-set, create/edit "model"; SPEC 15): one definition, used by
 * the agent to validate and by the shell to refuse bad input before it is
 * sent. Pure functions. */
#ifndef CONVOCATE_PROTO_CLAUDE_FIELDS_H
#define CONVOCATE_PROTO_CLAUDE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#define CLAUDE_VALUE_MAX 4096    /* a claude.env value, so also a secret */
#define CLAUDE_MODEL_MAX 64      /* ^[A-Za-z0-9._-]{1,64}$ */
#define CLAUDE_BASE_URL_MAX 2048 /* http(s)://host[:port][/...] */

/* A claude.env value: 1..4096 bytes of printable ASCII without spaces
 * (0x21..0x7e). len is the value's length (it may hold a NUL, refused). */
bool claude_value_is_valid(const char *s, size_t len);

/* ^[A-Za-z0-9._-]{1,64}$ */
bool claude_model_is_valid(const char *s);

/* http:// or https://, a non-empty host (a name, an IPv4 address or a
 * bracketed IPv6 address), an optional port 1..65535, then anything that is
 * a claude.env value; at most 2048 bytes in all. */
bool claude_base_url_is_valid(const char *s);

#endif
