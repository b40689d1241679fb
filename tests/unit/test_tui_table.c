/* The TUI's table index and filter (shell/tui/table.c): find by UUID, the
 * filter by name, agent and state word, and one row's activity change
 * moving it into or out of the filter and the waiting count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shell/tui/table.h"

#define N 5000

static tui_snapshot make_snapshot(size_t n)
{
    tui_snapshot s = {0};
    s.rows = calloc(n, sizeof *s.rows);
    assert_non_null(s.rows);
    s.n_rows = n;
    for (size_t i = 0; i < n; i++) {
        tui_row *r = &s.rows[i];
        snprintf(r->uuid, sizeof r->uuid, "%08zx-0000-4000-8000-%012zx", i * 7919, i);
        snprintf(r->name, sizeof r->name, "%s-%zu", i % 2 ? "Web" : "db", i);
        snprintf(r->agent, sizeof r->agent, "%s", i % 3 ? "agentaaa" : "agentbbb");
        r->state = i % 10 == 0 ? 'R' : '-';
    }
    return s;
}

static void set_activity(tui_row *r, const char *state)
{
    r->activity.known = state != NULL;
    snprintf(r->activity.state, sizeof r->activity.state, "%s", state ? state : "");
}

static void finds_every_row_by_uuid(void **unused)
{
    tui_snapshot s = make_snapshot(N);
    tui_table t = {0};
    assert_int_equal(table_rebuild(&t, &s), 0);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(table_find(&t, &s, s.rows[i].uuid), i);
    assert_int_equal(table_find(&t, &s, "nope"), TABLE_NONE);
    assert_int_equal(table_find(&t, &s, ""), TABLE_NONE);
    assert_int_equal(t.n_shown, N);
    table_free(&t);
    free(s.rows);
}

static void filters_by_name_agent_and_state_word(void **unused)
{
    tui_snapshot s = make_snapshot(N);
    tui_table t = {0};
    assert_int_equal(table_rebuild(&t, &s), 0);
    assert_int_equal(table_set_filter(&t, &s, "web"), 0); /* case-insensitive */
    assert_int_equal(t.n_shown, N / 2);
    for (size_t i = 1; i < t.n_shown; i++)
        assert_true(t.shown[i - 1] < t.shown[i]); /* the table's order kept */
    assert_int_equal(table_set_filter(&t, &s, "AGENTBBB"), 0);
    assert_int_equal(t.n_shown, (N + 2) / 3);
    assert_int_equal(table_set_filter(&t, &s, "running"), 0);
    assert_int_equal(t.n_shown, N / 10);
    assert_int_equal(table_pos_of(&t, 10), 1);
    assert_int_equal(table_pos_of(&t, 11), TABLE_NONE);
    assert_int_equal(table_set_filter(&t, &s, "stopped"), 0);
    assert_int_equal(t.n_shown, N - N / 10);
    assert_int_equal(table_set_filter(&t, &s, ""), 0);
    assert_int_equal(t.n_shown, N);
    table_free(&t);
    free(s.rows);
}

static void one_row_change_moves_it_in_and_out(void **unused)
{
    tui_snapshot s = make_snapshot(N);
    tui_table t = {0};
    assert_int_equal(table_rebuild(&t, &s), 0);
    assert_int_equal(table_set_filter(&t, &s, "waiting"), 0);
    assert_int_equal(t.n_shown, 0);
    size_t order[] = {4000, 7, 2500, 4999, 0};
    for (size_t k = 0; k < 5; k++) {
        tui_activity was = s.rows[order[k]].activity;
        set_activity(&s.rows[order[k]], "waiting");
        table_row_changed(&t, &s, order[k], &was);
    }
    assert_int_equal(t.n_shown, 5);
    assert_int_equal(t.waiting, 5);
    size_t expect[] = {0, 7, 2500, 4000, 4999};
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(t.shown[k], expect[k]);
    tui_activity was = s.rows[2500].activity;
    set_activity(&s.rows[2500], "working");
    table_row_changed(&t, &s, 2500, &was);
    assert_int_equal(t.n_shown, 4);
    assert_int_equal(t.waiting, 4);
    assert_int_equal(table_pos_of(&t, 4000), 2);
    /* a silent agent's waiting row counts as unknown, not waiting */
    s.rows[7].activity_unknown = true;
    assert_int_equal(table_rebuild(&t, &s), 0);
    assert_int_equal(t.waiting, 3);
    assert_int_equal(t.n_shown, 3);
    assert_int_equal(table_set_filter(&t, &s, "unknown"), 0);
    assert_int_equal(t.n_shown, 1);
    table_free(&t);
    free(s.rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_every_row_by_uuid),
        cmocka_unit_test(filters_by_name_agent_and_state_word),
        cmocka_unit_test(one_row_change_moves_it_in_and_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
