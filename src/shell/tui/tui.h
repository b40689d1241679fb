/* The operator's terminal UI (SPEC 12): `convocate` with no command. */
#ifndef CONVOCATE_SHELL_TUI_TUI_H
#define CONVOCATE_SHELL_TUI_TUI_H

/* Runs the UI on the controlling terminal until Q; returns the exit code. */
int tui_run(void);

#endif
