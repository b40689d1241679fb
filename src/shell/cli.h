/* One-shot CLI forms of the TUI's actions (SPEC 2): ls, agents, new, attach,
 * kill, restart, delete, bg, override, clone, edit. Exit codes: 0 ok,
 * 1 runtime failure (one line on stderr), 2 usage error. */
#ifndef CONVOCATE_SHELL_CLI_H
#define CONVOCATE_SHELL_CLI_H

#include <stdbool.h>

#include "ssh/registry.h"

/* One line "convocate: <what failed>" on stderr; returns 1, the exit code
 * of a runtime failure. Shared by every cli_*.c file. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Which registered agents a command acts on: skip[i] false for each. The
 * one named agent_id; with none named, every agent when every is set or
 * only one is registered, else a usage error asking for --agent or --all
 * (cmd names the command in it, e.g. "auth set"). 0, or the exit code
 * after one line on stderr. */
int cli_pick_agents(agent_registry *r, const char *agent_id, bool every, const char *cmd,
                    bool *skip);

/* True when cmd names a CLI command. */
bool cli_is_command(const char *cmd);
/* argv[0] is the command name; getopt state is reset inside. */
int cli_run(int argc, char **argv);

#endif
