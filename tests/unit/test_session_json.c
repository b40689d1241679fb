/* Unit tests for `ls --json`'s per-session rendering (shell/session_json):
 * the joined pieces are byte for byte what jansson prints for the whole
 * array, for nested values, escapes (a newline inside a string must not be
 * indented), unicode, empty containers and an empty list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/session_json.h"

/* What the old `ls --json` printed: json_dumpf of the array and a newline. */
static char *whole_array_text(json_t *array)
{
    char *body = json_dumps(array, JSON_INDENT(2));
    assert_non_null(body);
    char *text = malloc(strlen(body) + 2);
    assert_non_null(text);
    sprintf(text, "%s\n", body);
    free(body);
    return text;
}

/* The new path: each element rendered alone, then printed as one array. */
static char *pieces_text(json_t *array)
{
    size_t n = json_array_size(array);
    char **items = calloc(n ? n : 1, sizeof *items);
    assert_non_null(items);
    for (size_t i = 0; i < n; i++) {
        items[i] = session_json_render(json_array_get(array, i));
        assert_non_null(items[i]);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(session_json_print(out, items, n), 0);
    fclose(out);
    /* status-serve announces this many bytes before it prints them */
    assert_int_equal(session_json_length(items, n), len);
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return text;
}

static void assert_same_as_jansson(json_t *array)
{
    char *want = whole_array_text(array), *got = pieces_text(array);
    assert_string_equal(got, want);
    free(want);
    free(got);
    json_decref(array);
}

static void sessions_with_every_kind_of_value(void **state)
{
    (void)state;
    json_error_t e;
    json_t *a = json_loads(
        "[{\"uuid\": \"6861cb06-0000-4000-8000-000000000001\", \"name\": \"a-1\","
        "  \"port\": 8080, \"autonomous\": false, \"error\": null, \"cost\": 1.25,"
        "  \"activity\": {\"state\": \"busy\", \"tools\": [\"Bash\", {\"n\": 2}], \"x\": {}},"
        "  \"empty\": [], \"agent\": \"78umgvmm\"},"
        " {\"name\": \"line\\nbreak and \\\"quotes\\\" and caf\\u00e9 \\u2603\"},"
        " {}]",
        0, &e);
    assert_non_null(a);
    assert_same_as_jansson(a);
}

static void one_session_and_none(void **state)
{
    (void)state;
    assert_same_as_jansson(json_pack("[{s:s}]", "name", "solo"));
    assert_same_as_jansson(json_array());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sessions_with_every_kind_of_value),
        cmocka_unit_test(one_session_and_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
