/* The TUI's reading of a peek's SGR escapes (sgr.c) and of activity objects
 * (activity.c): styles, colour mapping, skipped sequences, bounded input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shell/tui/activity.h"
#include "shell/tui/sgr.h"

/* The style after applying params to a fresh one. */
static sgr_style styled(const char *params)
{
    sgr_style st;
    sgr_reset(&st);
    sgr_apply(&st, params, strlen(params));
    return st;
}

static void test_attributes_on_and_off(void **state)
{
    (void)state;
    sgr_style st = styled("1;4;7");
    assert_true(st.bold && st.underline && st.reverse);
    assert_false(st.dim || st.italic);
    sgr_apply(&st, "22;24", 5);
    assert_false(st.bold || st.underline);
    assert_true(st.reverse);
    sgr_apply(&st, "27", 2);
    assert_false(st.reverse);
    st = styled("2;3");
    assert_true(st.dim && st.italic);
}

static void test_reset_by_zero_and_by_empty_list(void **state)
{
    (void)state;
    sgr_style st = styled("1;31;42");
    sgr_apply(&st, "0", 1);
    assert_int_equal(st.fg, -1);
    assert_int_equal(st.bg, -1);
    assert_false(st.bold);
    st = styled("1;31");
    sgr_apply(&st, "", 0); /* ESC[m */
    assert_int_equal(st.fg, -1);
    assert_false(st.bold);
}

static void test_basic_and_bright_colours(void **state)
{
    (void)state;
    sgr_style st = styled("31;44");
    assert_int_equal(st.fg, 1);
    assert_int_equal(st.bg, 4);
    assert_false(st.bold);
    st = styled("92;103");
    assert_int_equal(st.fg, 2);
    assert_true(st.bold); /* a bright foreground comes out bold */
    assert_int_equal(st.bg, 3);
    sgr_apply(&st, "39;49", 5);
    assert_int_equal(st.fg, -1);
    assert_int_equal(st.bg, -1);
}

static void test_256_and_truecolour_map_to_the_nearest_basic(void **state)
{
    (void)state;
    sgr_style st = styled("38;5;196;48;5;21");
    assert_int_equal(st.fg, 1); /* 196 = pure red in the cube */
    assert_int_equal(st.bg, 4); /* 21 = pure blue */
    st = styled("38;5;9");
    assert_int_equal(st.fg, 1);
    assert_true(st.bold);
    st = styled("38;2;250;250;10;48;2;0;0;0");
    assert_int_equal(st.fg, 3); /* yellow */
    assert_int_equal(st.bg, 0);
    st = styled("38;5;255");
    assert_int_equal(st.fg, 7); /* light grey */
    st = styled("38;5;233");
    assert_int_equal(st.fg, 0);
    st = styled("38:2:0:200:200");
    assert_int_equal(st.fg, 6); /* cyan, colon form */
    bool bright;
    assert_int_equal(sgr_nearest_256(300, &bright), -1);
}

static void test_malformed_lists_change_nothing_harmful(void **state)
{
    (void)state;
    sgr_style st = styled("38;5");
    assert_int_equal(st.fg, -1);
    st = styled("?25");
    assert_int_equal(st.fg, -1);
    assert_false(st.bold);
    st = styled("1;99999999999999;31");
    assert_true(st.bold);
    assert_int_equal(st.fg, 1);
    char many[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(many, "1;");
    st = styled(many); /* more parameters than kept: no overrun */
    assert_true(st.bold);
}

/* Walks text and returns the plain text seen, newlines as '|', with the
 * style at the end in *end. */
static void walk(const char *text, char *out, size_t size, sgr_style *end)
{
    sgr_reset(end);
    size_t len = strlen(text), used = 0;
    for (size_t k = 0; k < len;) {
        sgr_token kind;
        size_t n = sgr_next(text + k, len - k, end, &kind);
        assert_true(n >= 1 && n <= len - k);
        if (kind == SGR_TEXT && used + n < size) {
            memcpy(out + used, text + k, n);
            used += n;
        } else if (kind == SGR_NEWLINE && used + 1 < size) {
            out[used++] = '|';
        }
        k += n;
    }
    out[used] = '\0';
}

static void test_tokens_split_text_from_escapes(void **state)
{
    (void)state;
    char out[200];
    sgr_style st;
    walk("ab\033[1;32mgr\xc3\xa9\033[0m\ncd\033]0;title\007x\033[2Jy\033(Bz\r\n", out, sizeof out,
         &st);
    assert_string_equal(out, "abgr\xc3\xa9|cdxyz|");
    assert_int_equal(st.fg, -1);
    walk("\033[31mred", out, sizeof out, &st);
    assert_string_equal(out, "red");
    assert_int_equal(st.fg, 1);
    walk("cut\033[3", out, sizeof out, &st); /* a sequence cut off at the end */
    assert_string_equal(out, "cut");
    walk("\033", out, sizeof out, &st);
    assert_string_equal(out, "");
    walk("a\033]8;;http://x\033\\link\033]8;;\033\\b", out, sizeof out, &st);
    assert_string_equal(out, "alinkb");
}

static void test_activity_object(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s,s:s,s:s,s:f,s:f,s:s}", "state", "waiting", "since",
                          "2026-11-27T15:00:00.123Z", "detail", "needs\nyou", "cost_usd", 0.42,
                          "context_pct", 37.0, "model", "m");
    tui_activity a;
    assert_true(activity_from_json(&a, o));
    assert_true(activity_is_waiting(&a));
    assert_string_equal(a.detail, "needs?you");
    assert_true(a.has_cost && a.has_context);
    char words[40];
    activity_words(words, sizeof words, &a, a.since + 185);
    assert_string_equal(words, "waiting 3m");
    activity_words(words, sizeof words, &a, a.since + 12);
    assert_string_equal(words, "waiting 12s");
    activity_words(words, sizeof words, &a, a.since + 3700);
    assert_string_equal(words, "waiting 1h");
    json_decref(o);
    o = json_pack("{s:s,s:s,s:n,s:f}", "state", "sleeping", "since", "x", "cost_usd", "context_pct",
                  300.0);
    assert_false(activity_from_json(&a, o)); /* not one of the five states */
    json_decref(o);
    assert_false(activity_from_json(&a, json_null()));
    activity_words(words, sizeof words, &a, 0);
    assert_string_equal(words, "-");
    o = json_pack("{s:s,s:s,s:n,s:f}", "state", "idle", "since", "2026-11-27 15:00", "cost_usd",
                  "context_pct", 300.0);
    assert_true(activity_from_json(&a, o));
    assert_int_equal(a.since, 0);
    assert_false(a.has_cost || a.has_context); /* null and out of range */
    activity_words(words, sizeof words, &a, 100);
    assert_string_equal(words, "idle");
    json_decref(o);
    assert_int_equal(activity_parse_time("1970-01-01T00:01:40Z"), 100);
    assert_int_equal(activity_parse_time("1970-01-01T00:01:40+02:00"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attributes_on_and_off),
        cmocka_unit_test(test_reset_by_zero_and_by_empty_list),
        cmocka_unit_test(test_basic_and_bright_colours),
        cmocka_unit_test(test_256_and_truecolour_map_to_the_nearest_basic),
        cmocka_unit_test(test_malformed_lists_change_nothing_harmful),
        cmocka_unit_test(test_tokens_split_text_from_escapes),
        cmocka_unit_test(test_activity_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
