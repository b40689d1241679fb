/* Orphan sessions (SPEC 6.5): session directories under the shell host's own
 * /home/claude/<uuid>/, left from before agents existed, that no registered
 * agent lists. They are shown with state "O" and every action on them is
 * refused until `convocate-host migrate-session` moves them to an agent. */
#ifndef CONVOCATE_SHELL_ORPHANS_H
#define CONVOCATE_SHELL_ORPHANS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A directory with more entries than this is read only this far: the scan
 * runs on every `convocate ls` and every 15 s in the TUI, so a runaway
 * directory must not stall either. Real shells hold a handful. */
#define ORPHAN_SCAN_MAX 10000
/* session.json larger than this is listed with an error instead of read. */
#define ORPHAN_JSON_MAX (1024 * 1024)

/* An orphan's "agent": no agent has it. Empty, so nothing resolves it to a
 * registered agent by mistake; "state":"O" is what marks an orphan. */
#define ORPHAN_AGENT ""

/* Scans dir for orphan candidates: every entry whose name is a canonical
 * UUIDv4 and that is a real directory (symlinks are never followed). Each
 * becomes a session object like an agent's list entry: session.json's fields
 * plus "state":"O", "agent":"", "running":false, "attached":0,
 * "locked":false, and "error" when session.json is missing or does not
 * parse (the entry is still listed). A missing dir gives an empty array.
 * Returns a new array, or NULL when out of memory. */
json_t *orphans_scan_dir(const char *dir);

/* The same for the shell's own root_path("/home/claude"). */
json_t *orphans_scan(void);

/* True for a session object that is an orphan ("state":"O"). */
bool session_is_orphan(json_t *s);

/* The command that moves an orphan to an agent; the UUID goes last. */
#define ORPHAN_MIGRATE_CMD "convocate-host migrate-session --agent ID --session "

/* The one-line refusal for any action on an orphan, naming the command that
 * moves it to an agent. */
void orphan_refusal(char *out, size_t size, const char *name, const char *uuid);

#endif
