/* Unit tests for how `convocate settings` types a VALUE word as JSON
 * (docs/decisions.md): booleans, integers, decimals, quoted JSON strings,
 * and everything else as text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "shell/cli_settings.h"

static void assert_text(const char *word, const char *want)
{
    json_t *v = cli_settings_value(word);
    assert_non_null(v);
    assert_true(json_is_string(v));
    assert_string_equal(json_string_value(v), want);
    json_decref(v);
}

static void test_booleans(void **state)
{
    (void)state;
    assert_true(json_is_true(cli_settings_value("true")));
    assert_true(json_is_false(cli_settings_value("false")));
    assert_text("True", "True");
    assert_text("yes", "yes");
}

static void test_integers(void **state)
{
    (void)state;
    const struct {
        const char *word;
        json_int_t want;
    } cases[] = {{"0", 0}, {"90", 90}, {"-5", -5}, {"007", 7}, {"9223372036854775807", INT64_MAX}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *v = cli_settings_value(cases[i].word);
        assert_true(json_is_integer(v));
        assert_int_equal(json_integer_value(v), cases[i].want);
        json_decref(v);
    }
    /* Past 64 bits, a sign without digits, a plus, spaces: text. */
    assert_text("9223372036854775808", "9223372036854775808");
    assert_text("-", "-");
    assert_text("+5", "+5");
    assert_text(" 5", " 5");
    assert_text("5 ", "5 ");
}

static void test_decimals(void **state)
{
    (void)state;
    json_t *v = cli_settings_value("1.5");
    assert_true(json_is_real(v));
    assert_true(json_real_value(v) == 1.5);
    json_decref(v);
    v = cli_settings_value("2e3");
    assert_true(json_is_real(v) && json_real_value(v) == 2000.0);
    json_decref(v);
    v = cli_settings_value(".5");
    assert_true(json_is_real(v) && json_real_value(v) == 0.5);
    json_decref(v);
    assert_text("1.2.3", "1.2.3");
    assert_text("1e999", "1e999"); /* not finite */
    assert_text("nan", "nan");
    assert_text("inf", "inf");
    assert_text("e", "e");
    assert_text("10.0.0.53", "10.0.0.53");
}

static void test_strings(void **state)
{
    (void)state;
    assert_text("", "");
    assert_text("10.0.0.53", "10.0.0.53");
    assert_text("\"90\"", "90");
    assert_text("\"\"", "");
    assert_text("\"a\\\"b\"", "a\"b");
    assert_text("\"", "\""); /* one quote is not a quoted word */
    assert_null(cli_settings_value("\"unterminated\\\""));
    assert_null(cli_settings_value("\"a\" \"b\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_decimals),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
