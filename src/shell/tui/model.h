/* The session list the TUI shows, kept fresh off the UI thread: one thread per
 * agent asks for its list every 15 s (or at once when woken), so a slow or
 * dead agent only ever delays its own rows. One more thread scans the shell's
 * own /home/claude for orphans (SPEC 6.5) on the same beat; a snapshot shows
 * those no agent lists. The UI thread takes copies. */
#ifndef CONVOCATE_SHELL_TUI_MODEL_H
#define CONVOCATE_SHELL_TUI_MODEL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "ssh/registry.h"
#include "shell/tui/activity.h"

#define TUI_REFRESH_S 15
#define TUI_SLOW_S 20 /* an answer pending this long marks the agent "not answering" */

typedef struct {
    char uuid[40];
    char name[128];
    char agent[AGENT_ID_LEN + 1];
    long port;
    char protocol[8];
    char dns_name[128];
    char model[72];  /* "" = none */
    bool autonomous; /* the effective value the agent reports (SPEC 15) */
    char last_accessed[40];
    char state; /* '-', 'L', 'R', 'C', 'O' (orphan, agent ""), '!' broken metadata */
    bool stale; /* its agent did not answer the last list: shown greyed */
    char error[128];
    tui_activity activity;  /* SPEC 16; from list and session.activity events */
    bool activity_reported; /* the session object had an "activity" key */
    bool activity_unknown;  /* its agent is silent or unreachable: shown "unknown" */
} tui_row;

/* An agent's capacity as its last ping reported it (SPEC 7, 10). */
typedef struct {
    bool known;
    double cpu_pct, mem_pct;
    long threshold_pct, sessions;
} tui_capacity;

typedef struct {
    char id[AGENT_ID_LEN + 1];
    char addr[280];
    bool tried;      /* at least one list has come back or failed */
    bool answered;   /* at least one list came back, ever */
    bool reachable;  /* the last list came back */
    bool silent;     /* the status feed says no heartbeat lately */
    long pending_s;  /* seconds the current call has been waiting, 0 when idle */
    char error[256]; /* why the last list failed */
    tui_capacity capacity;
} tui_agent_view;

typedef struct {
    tui_row *rows; /* every agent's sessions, newest last_accessed first */
    size_t n_rows;
    tui_agent_view *agents; /* registry order */
    size_t n_agents;
    unsigned long gen; /* the model's row-set generation this copy shows */
} tui_snapshot;

/* One session.activity event applied since the last snapshot: the UI
 * patches that one row instead of copying and sorting every row again. */
typedef struct {
    char uuid[40];
    tui_activity activity;
} tui_delta;

typedef struct tui_model tui_model;

/* Takes ownership of nothing: reg must outlive the model. notify_fd is
 * written one byte whenever fresh data is ready (never blocks). */
tui_model *model_start(agent_registry *reg, int notify_fd);
/* Asks every agent (or the one named) for its list now. */
void model_refresh(tui_model *m, const char *agent_id);
/* Marks an agent silent or live, as reported by the status feed. */
void model_set_silent(tui_model *m, const char *agent_id, bool silent);
/* Applies a session.activity event's data to that session's row at once
 * (no round trip to the agent) and wakes the UI. */
void model_apply_activity(tui_model *m, const char *agent_id, const char *session_id, json_t *data);
/* Fills out with a copy of the current state; free it with snapshot_free.
 * O(n log n): call it only when model_take_deltas says the rows changed. */
int model_snapshot(tui_model *m, tui_snapshot *out);
/* The activity updates since the snapshot of generation seen_gen, handed
 * over (free *out); -1 when the row set changed since (a list came back, an
 * agent turned silent, too many updates queued): take a snapshot instead. */
int model_take_deltas(tui_model *m, unsigned long seen_gen, tui_delta **out, size_t *n);
/* Refreshes snap's agent views (health, timers, capacity) in place; O(agents). */
void model_agent_views(tui_model *m, tui_snapshot *snap);
void snapshot_free(tui_snapshot *s);
/* Stops the threads. Returns true when all have ended and reg may be freed;
 * false when one is still inside a network call (the process is exiting). */
bool model_stop(tui_model *m, int wait_ms);

/* Fills a row from a session object as list/create/edit return it. */
void row_from_json(tui_row *row, json_t *s, const char *agent_id);

#endif
