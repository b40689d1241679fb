/* Unit tests for the order of `convocate ls` (SPEC 12): newest
 * last_accessed first, sessions without one last, every session kept,
 * and a fleet's worth of sessions in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/sessions.h"

static json_t *session(const char *name, const char *last_accessed)
{
    json_t *s = json_pack("{s:s}", "name", name);
    if (last_accessed != NULL)
        json_object_set_new(s, "last_accessed", json_string(last_accessed));
    return s;
}

static const char *name_of(json_t *s)
{
    return json_string_value(json_object_get(s, "name"));
}

static void newest_first_and_missing_last(void **state)
{
    (void)state;
    json_t *all[] = {
        session("old", "2026-01-01T10:00:00Z"),
        session("none", NULL),
        session("newest", "2026-11-27T18:00:00Z"),
        session("middle", "2026-06-30T23:59:59Z"),
    };
    assert_int_equal(sessions_sort_newest_first(all, 4), 0);
    assert_string_equal(name_of(all[0]), "newest");
    assert_string_equal(name_of(all[1]), "middle");
    assert_string_equal(name_of(all[2]), "old");
    assert_string_equal(name_of(all[3]), "none");
    for (size_t i = 0; i < 4; i++)
        json_decref(all[i]);
}

static void nothing_to_sort(void **state)
{
    (void)state;
    assert_int_equal(sessions_sort_newest_first(NULL, 0), 0);
}

/* Ten thousand sessions in a scrambled order come out newest first, each
 * exactly once. */
static void a_fleet_in_order(void **state)
{
    (void)state;
    enum { N = 10000 };
    json_t **all = calloc(N, sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < N; i++) {
        size_t k = (i * 7919) % N; /* 7919 is prime: a permutation of 0..N-1 */
        char name[16], when[32];
        snprintf(name, sizeof name, "s%zu", k);
        snprintf(when, sizeof when, "2026-11-%02zuT%02zu:%02zu:%02zuZ", 1 + k / 3600 % 28,
                 k / 60 % 60, k % 60, k % 60);
        all[i] = session(name, when);
    }
    assert_int_equal(sessions_sort_newest_first(all, N), 0);
    int *seen = calloc(N, sizeof *seen);
    assert_non_null(seen);
    for (size_t i = 0; i < N; i++) {
        if (i > 0)
            assert_true(strcmp(json_string_value(json_object_get(all[i - 1], "last_accessed")),
                               json_string_value(json_object_get(all[i], "last_accessed"))) >= 0);
        seen[atoi(name_of(all[i]) + 1)]++;
    }
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(seen[i], 1);
        json_decref(all[i]);
    }
    free(seen);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(newest_first_and_missing_last),
        cmocka_unit_test(nothing_to_sort),
        cmocka_unit_test(a_fleet_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
