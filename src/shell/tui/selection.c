#include "shell/tui/selection.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/tui/notify.h"
#include "shell/tui/text.h"
#include "shell/tui/view.h"

const tui_row *app_shown(const tui_app *app, size_t pos)
{
    return &app->snap.rows[app->table.shown[pos]];
}

const tui_row *app_selected(const tui_app *app)
{
    return app->selected < app->table.n_shown ? app_shown(app, app->selected) : NULL;
}

static void remember_selected(tui_app *app)
{
    const tui_row *row = app_selected(app);
    snprintf(app->selected_uuid, sizeof app->selected_uuid, "%s", row ? row->uuid : "");
}

/* Puts the selection back on its session (by UUID) when that is shown;
 * otherwise on the row now at its old position. O(1) + O(log n). */
static void reselect(tui_app *app)
{
    size_t idx = table_find(&app->table, &app->snap, app->selected_uuid);
    size_t pos = idx == TABLE_NONE ? TABLE_NONE : table_pos_of(&app->table, idx);
    if (pos != TABLE_NONE) {
        app->selected = pos;
        return;
    }
    if (app->selected >= app->table.n_shown)
        app->selected = app->table.n_shown ? app->table.n_shown - 1 : 0;
    /* The remembered session stays the one to come back to while the
     * filter hides it; with no filter it is gone, so the new row counts. */
    if (app->table.filter[0] == '\0' || idx == TABLE_NONE)
        remember_selected(app);
}

/* The row set changed: a new copy, sorted, indexed and filtered: O(n log n),
 * but only when a list came back (itself n rows over the network). */
static void take_whole_snapshot(tui_app *app)
{
    tui_snapshot fresh;
    if (model_snapshot(app->model, &fresh) < 0)
        return; /* out of memory: keep showing the last one */
    tui_table table = {0};
    snprintf(table.filter, sizeof table.filter, "%s", app->table.filter);
    if (table_rebuild(&table, &fresh) < 0) {
        table_free(&table);
        snapshot_free(&fresh);
        return;
    }
    tui_snapshot before = app->snap;
    tui_table before_table = app->table;
    app->snap = fresh;
    app->table = table;
    notify_transitions(app, &before, &before_table);
    table_free(&before_table);
    snapshot_free(&before);
}

/* One activity update: patch that row, its counts and its place in the
 * filter; rows are sorted by last access, which activity does not touch. */
static void apply_delta(tui_app *app, const tui_delta *d)
{
    size_t idx = table_find(&app->table, &app->snap, d->uuid);
    if (idx == TABLE_NONE)
        return;
    tui_row *row = &app->snap.rows[idx];
    tui_activity was = row->activity;
    row->activity = d->activity;
    notify_row(app, row, &was);
    table_row_changed(&app->table, &app->snap, idx, &was);
}

void selection_sync(tui_app *app)
{
    tui_delta *deltas;
    size_t n;
    if (app->model == NULL)
        return;
    if (app->snap.rows == NULL || model_take_deltas(app->model, app->snap.gen, &deltas, &n) < 0) {
        take_whole_snapshot(app);
    } else {
        for (size_t i = 0; i < n; i++)
            apply_delta(app, &deltas[i]);
        free(deltas);
        model_agent_views(app->model, &app->snap);
    }
    reselect(app);
}

static void move_selection(tui_app *app, long step)
{
    if (app->table.n_shown == 0)
        return;
    long target = (long)app->selected + step;
    if (target < 0)
        target = 0;
    if (target >= (long)app->table.n_shown)
        target = (long)app->table.n_shown - 1;
    app->selected = (size_t)target;
    remember_selected(app);
}

bool selection_motion_key(tui_app *app, wint_t key)
{
    /* A page is one screen of rows: the row at the bottom becomes the top. */
    int height = view_table_height(app);
    long page = height > 1 ? height - 1 : 1;
    long all = (long)app->table.n_shown;
    switch (key) {
    case KEY_UP:
        move_selection(app, -1);
        return true;
    case KEY_DOWN:
        move_selection(app, 1);
        return true;
    case KEY_PPAGE:
        move_selection(app, -page);
        return true;
    case KEY_NPAGE:
        move_selection(app, page);
        return true;
    case KEY_HOME:
        move_selection(app, -all);
        return true;
    case KEY_END:
        move_selection(app, all);
        return true;
    default:
        return false;
    }
}

void selection_next_waiting(tui_app *app)
{
    size_t n = app->table.n_shown;
    for (size_t step = 1; step <= n; step++) {
        size_t k = (app->selected + step) % n;
        const tui_row *row = app_shown(app, k);
        if (activity_is_waiting(&row->activity) && !row->activity_unknown) {
            move_selection(app, (long)k - (long)app->selected);
            app_status(app, false, "%s on %s is waiting.", row->name, row->agent);
            return;
        }
    }
    app_status(app, false,
               app->table.filter[0] ? "no session shown is waiting" : "no session is waiting");
}

void filter_open(tui_app *app)
{
    app->mode = MODE_FILTER;
}

/* Narrows (or widens) the table to text and keeps the selection on its
 * session when that is still shown. */
static void apply_filter(tui_app *app, const char *text)
{
    if (table_set_filter(&app->table, &app->snap, text) < 0)
        app_status(app, true, "out of memory filtering the table");
    reselect(app);
}

void filter_key(tui_app *app, bool is_key, wint_t key)
{
    char text[sizeof app->table.filter];
    snprintf(text, sizeof text, "%s", app->table.filter);
    if (!is_key && key == 27) {
        app->mode = MODE_TABLE;
        apply_filter(app, "");
        app_status(app, false, "Filter cleared: all %zu sessions shown.", app->snap.n_rows);
    } else if ((!is_key && (key == '\n' || key == '\r')) || (is_key && key == KEY_ENTER)) {
        app->mode = MODE_TABLE;
        if (text[0])
            app_status(app, false,
                       "%zu of %zu sessions match \"%s\" (/ to change, Esc there "
                       "to clear).",
                       app->table.n_shown, app->snap.n_rows, text);
    } else if ((is_key && key == KEY_BACKSPACE) || (!is_key && (key == 127 || key == 8))) {
        text_drop_last(text);
        apply_filter(app, text);
    } else if (!is_key && key >= 0x20 && key != 127) {
        if (text_append_wchar(text, sizeof text, key))
            apply_filter(app, text);
    }
}
