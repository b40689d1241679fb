/* The session names this shell last saw, for completion: `convocate ls
 * --names` prints them from a per-user cache without any network call, so
 * a tab press never waits for an SSH round trip.
 *
 * Every list answer an agent gives (`ls` and every CLI command that
 * resolves a name, and the TUI's refresh; not `ls --json` when status-serve's
 * ls service answered it, since the CLI then never decodes the sessions)
 * rewrites that agent's file
 * $XDG_CACHE_HOME/convocate/<names dir>/<agent-id> (default ~/.cache),
 * one name a line, by rename. <names dir> is "names" for the real root and
 * "names-<hash of --root>" otherwise, so test and demo roots stay apart.
 * `ls --names` prints the union for the agents still registered, sorted,
 * and, when the newest file is older than NAMES_CACHE_STALE_S (or there is
 * none), starts one detached `ls` in the background that refreshes the
 * cache for the next tab press: it never waits for it. */
#ifndef CONVOCATE_SHELL_NAMES_CACHE_H
#define CONVOCATE_SHELL_NAMES_CACHE_H

#include <jansson.h>
#include <stdbool.h>

#define NAMES_CACHE_STALE_S 30

/* Records the names in one agent's "list" answer (an array of session
 * objects); NULL (the agent did not answer) keeps what was there. Best
 * effort: a cache that cannot be written is skipped without a word. Safe on
 * several threads at once for different agents (a file each). */
void names_cache_store(const char *agent_id, json_t *list);

/* True when argv (argv[0] "ls") asks for --names. */
bool names_cache_wanted(int argc, char **argv);

/* `convocate ls --names`: the exit code. */
int names_cache_main(int argc, char **argv);

#endif
