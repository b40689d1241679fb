/* The table as the UI thread keeps it between snapshots: an index from a
 * session's UUID to its row, the `/` filter and the rows it lets through,
 * and the counts the title shows. A whole snapshot rebuilds it in O(n); one
 * activity update patches it in O(log n) (plus moving an array of indices
 * when the row enters or leaves the filter), so ten thousand rows cost
 * nothing per event. No curses here. */
#ifndef CONVOCATE_SHELL_TUI_TABLE_H
#define CONVOCATE_SHELL_TUI_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "shell/tui/model.h"

#define FILTER_TEXT_MAX 64
#define TABLE_NONE ((size_t)-1)

typedef struct {
    size_t *slots; /* open addressing: row index + 1, 0 = empty */
    size_t cap;    /* a power of two, at least twice the rows */
    char filter[FILTER_TEXT_MAX + 1];
    size_t *shown; /* indices into snap->rows the filter lets through, ascending */
    size_t n_shown;
    size_t waiting;      /* rows waiting for the operator (their agent not silent) */
    bool any_autonomous; /* some row runs without permission prompts */
} tui_table;

/* Rebuilds t for snap (index, filter, counts); -1 out of memory (t is then
 * empty but valid). */
int table_rebuild(tui_table *t, const tui_snapshot *snap);
void table_free(tui_table *t);
/* The index in snap->rows of the session uuid, or TABLE_NONE. */
size_t table_find(const tui_table *t, const tui_snapshot *snap, const char *uuid);
/* Where row index idx is among the shown rows, or TABLE_NONE when the
 * filter hides it. */
size_t table_pos_of(const tui_table *t, size_t idx);
/* Sets the filter text and recomputes which rows it lets through. */
int table_set_filter(tui_table *t, const tui_snapshot *snap, const char *text);
/* After one row's activity changed from was: counts and filter, in place. */
void table_row_changed(tui_table *t, const tui_snapshot *snap, size_t idx, const tui_activity *was);
/* The word for a row's state the filter matches: running, stopped, ... */
const char *table_state_word(char state);
/* Whether row matches the filter text (case-insensitive; "" matches all). */
bool table_row_matches(const tui_row *row, const char *text);

#endif
