#include "shell/tui/table.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: UUIDs are random already; this only spreads their text. */
static size_t hash_uuid(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

const char *table_state_word(char state)
{
    switch (state) {
    case 'R':
        return "running";
    case 'C':
        return "connected";
    case 'L':
        return "locked";
    case 'O':
        return "orphan";
    case '?':
    case '!':
        return "broken";
    default:
        return "stopped";
    }
}

static bool is_waiting(const tui_row *row)
{
    return activity_is_waiting(&row->activity) && !row->activity_unknown;
}

bool table_row_matches(const tui_row *row, const char *text)
{
    if (text[0] == '\0')
        return true;
    const char *activity = row->activity_unknown ? "unknown"
                           : row->activity.known ? row->activity.state
                                                 : "";
    return strcasestr(row->name, text) || strcasestr(row->agent, text) ||
           strcasestr(table_state_word(row->state), text) || strcasestr(activity, text);
}

static void index_insert(tui_table *t, const tui_snapshot *snap, size_t idx)
{
    size_t mask = t->cap - 1;
    for (size_t k = hash_uuid(snap->rows[idx].uuid) & mask;; k = (k + 1) & mask) {
        if (t->slots[k] == 0) {
            t->slots[k] = idx + 1;
            return;
        }
        /* The same UUID twice (two agents list it): the first one wins. */
        if (strcmp(snap->rows[t->slots[k] - 1].uuid, snap->rows[idx].uuid) == 0)
            return;
    }
}

size_t table_find(const tui_table *t, const tui_snapshot *snap, const char *uuid)
{
    if (t->cap == 0 || uuid[0] == '\0')
        return TABLE_NONE;
    size_t mask = t->cap - 1;
    for (size_t k = hash_uuid(uuid) & mask; t->slots[k] != 0; k = (k + 1) & mask)
        if (strcmp(snap->rows[t->slots[k] - 1].uuid, uuid) == 0)
            return t->slots[k] - 1;
    return TABLE_NONE;
}

static int fill_shown(tui_table *t, const tui_snapshot *snap)
{
    free(t->shown);
    t->n_shown = 0;
    t->shown = malloc((snap->n_rows ? snap->n_rows : 1) * sizeof *t->shown);
    if (t->shown == NULL)
        return -1;
    for (size_t i = 0; i < snap->n_rows; i++)
        if (table_row_matches(&snap->rows[i], t->filter))
            t->shown[t->n_shown++] = i;
    return 0;
}

int table_rebuild(tui_table *t, const tui_snapshot *snap)
{
    free(t->slots);
    t->cap = 16;
    while (t->cap < snap->n_rows * 2)
        t->cap *= 2;
    t->slots = calloc(t->cap, sizeof *t->slots);
    t->waiting = 0;
    t->any_autonomous = false;
    if (t->slots == NULL) {
        t->cap = 0;
        t->n_shown = 0;
        return -1;
    }
    for (size_t i = 0; i < snap->n_rows; i++) {
        index_insert(t, snap, i);
        t->waiting += is_waiting(&snap->rows[i]);
        t->any_autonomous |= snap->rows[i].autonomous;
    }
    return fill_shown(t, snap);
}

void table_free(tui_table *t)
{
    free(t->slots);
    free(t->shown);
    memset(t, 0, sizeof *t);
}

/* The first position in shown whose row index is >= idx. */
static size_t lower_bound(const tui_table *t, size_t idx)
{
    size_t lo = 0, hi = t->n_shown;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->shown[mid] < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t table_pos_of(const tui_table *t, size_t idx)
{
    size_t pos = lower_bound(t, idx);
    return pos < t->n_shown && t->shown[pos] == idx ? pos : TABLE_NONE;
}

int table_set_filter(tui_table *t, const tui_snapshot *snap, const char *text)
{
    snprintf(t->filter, sizeof t->filter, "%s", text);
    return fill_shown(t, snap);
}

void table_row_changed(tui_table *t, const tui_snapshot *snap, size_t idx, const tui_activity *was)
{
    const tui_row *row = &snap->rows[idx];
    tui_row before = *row;
    before.activity = *was;
    t->waiting = t->waiting - is_waiting(&before) + is_waiting(row);
    if (t->shown == NULL)
        return;
    bool in = table_row_matches(row, t->filter);
    size_t pos = lower_bound(t, idx);
    bool was_in = pos < t->n_shown && t->shown[pos] == idx;
    if (in == was_in)
        return;
    /* shown has room for every row (fill_shown sized it so). */
    if (in) {
        memmove(&t->shown[pos + 1], &t->shown[pos], (t->n_shown - pos) * sizeof *t->shown);
        t->shown[pos] = idx;
        t->n_shown++;
    } else {
        memmove(&t->shown[pos], &t->shown[pos + 1], (t->n_shown - pos - 1) * sizeof *t->shown);
        t->n_shown--;
    }
}
