/* CONVOCATE_LS_TIMING=FILE: where one `convocate ls` spends its time, for
 * the fleet bench. One line appended per run:
 *   ls answers MS merged MS printed MS freed MS cpu MS agents N sessions N via WHO
 * the first four are wall-clock milliseconds since the command began (every
 * agent's list in and prepared; merged and sorted; printed; everything
 * freed; a phase the run did not go through reads 0), cpu the process's
 * user+sys milliseconds so far, WHO "agents" when the CLI asked them itself
 * or "status-serve" when its ls service answered. Without the variable
 * every call is a no-op. */
#ifndef CONVOCATE_SHELL_LS_TIMING_H
#define CONVOCATE_SHELL_LS_TIMING_H

#include <stddef.h>

enum ls_phase { LS_ANSWERS, LS_MERGED, LS_PRINTED, LS_FREED, LS_PHASES };

void ls_timing_begin(void);
void ls_timing_mark(enum ls_phase phase);
/* Appends the line (best effort: a file that cannot be opened is skipped). */
void ls_timing_end(size_t agents, size_t sessions, const char *via);

#endif
