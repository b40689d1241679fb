/* claude.env (SPEC 4, 15): the Claude credentials the agent mounts read-only
 * into every session container at /run/convocate/claude.env.
 *
 * Format, shared with the session image's entrypoint: one KEY=VALUE per
 * line; KEY is ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN, ANTHROPIC_BASE_URL
 * or ANTHROPIC_MODEL; VALUE is the rest of the line verbatim, 1..4096 bytes
 * of printable ASCII without spaces; empty lines and lines starting with '#'
 * are ignored; at most 16 KiB in all. Any other key, a repeated key, a line
 * without '=' or a bad value is refused with its line number, and the API
 * key and the OAuth token never appear together.
 *
 * The values are secrets: no error text made here ever holds one, and every
 * buffer that held one is wiped before it is freed. */
#ifndef CONVOCATE_AGENT_CLAUDE_ENV_H
#define CONVOCATE_AGENT_CLAUDE_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/claude_fields.h"

#define CLAUDE_ENV_FILE_MAX (16 * 1024)
#define CLAUDE_ENV_HINT_MIN 12 /* shorter secrets get no visible characters */

typedef enum {
    CLAUDE_API_KEY,
    CLAUDE_OAUTH_TOKEN,
    CLAUDE_BASE_URL,
    CLAUDE_MODEL,
    CLAUDE_ENV_KEYS
} claude_env_key;

typedef struct {
    bool has[CLAUDE_ENV_KEYS];
    char value[CLAUDE_ENV_KEYS][CLAUDE_VALUE_MAX + 1];
} claude_env;

/* "ANTHROPIC_API_KEY" and so on. */
const char *claude_env_key_name(claude_env_key k);

void claude_env_init(claude_env *env);
/* Zeroes every value in a way the compiler may not drop. */
void claude_env_wipe(claude_env *env);

/* Sets one key after checking the value is a claude.env value; -1 when not. */
int claude_env_set(claude_env *env, claude_env_key k, const char *value);

/* Parses len bytes of claude.env text. 0, or -1 with err like
 * `claude.env line 3: unknown key "FOO"`. */
int claude_env_parse(const char *text, size_t len, claude_env *out, char *err, size_t errlen);

/* The file's text, one line per key present, in the order of the enum.
 * malloc'd; the caller wipes and frees it. NULL when out of memory or when
 * the set is not one parse would accept (both secrets). */
char *claude_env_encode(const claude_env *env, size_t *len);

/* Loads and validates path: 1 loaded, 0 no such file, -1 with err (a
 * symlink, not a regular file, too large, unreadable or invalid). */
int claude_env_load(const char *path, claude_env *out, char *err, size_t errlen);

/* Writes path atomically, mode 0600, owned by the caller. */
int claude_env_save(const char *path, const claude_env *env, char *err, size_t errlen);
/* Removes path (absent is fine) and makes that durable. */
int claude_env_remove(const char *path, char *err, size_t errlen);

/* "…" followed by the secret's last 4 characters; "…" alone for a secret
 * shorter than CLAUDE_ENV_HINT_MIN, so a short one is not half shown. */
void claude_env_hint(const char *secret, char *out, size_t size);

#endif
