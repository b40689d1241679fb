/* Identifiers (SPEC 3): session UUIDv4s in lowercase canonical form and
 * agent ids of 8 characters [a-z0-9]. */
#ifndef CONVOCATE_COMMON_IDS_H
#define CONVOCATE_COMMON_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */
#define AGENT_ID_LEN 8

/* Fills out with a fresh UUIDv4 from the kernel's CSPRNG; 0 or -1. */
int uuid_v4_generate(char out[UUID_STR_LEN]);
/* True only for the canonical lowercase 36-character UUIDv4 form. */
bool uuid_v4_is_valid(const char *s);
/* Fills out with n characters of [a-z0-9] from the CSPRNG (agent ids). */
int random_alnum(char *out, size_t n);
/* True for exactly AGENT_ID_LEN characters of [a-z0-9]. */
bool agent_id_is_valid(const char *s);

#endif
