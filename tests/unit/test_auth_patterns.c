/* Unit tests for from="..." address pattern lists (common/addr_pattern.c)
 * and the options field of authorized_keys lines (ssh/auth_options.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/addr_pattern.h"
#include "ssh/auth_options.h"

static void test_addresses_blocks_and_wildcards(void **state)
{
    (void)state;
    assert_true(addr_pattern_match("127.0.0.2", "127.0.0.2"));
    assert_false(addr_pattern_match("127.0.0.2", "127.0.0.3"));
    assert_true(addr_pattern_match("10.0.0.0/8", "10.200.3.4"));
    assert_false(addr_pattern_match("10.0.0.0/8", "11.0.0.1"));
    assert_true(addr_pattern_match("0.0.0.0/0", "192.0.2.1"));
    assert_true(addr_pattern_match("127.0.0.*", "127.0.0.9"));
    assert_false(addr_pattern_match("127.0.0.?", "127.0.0.19"));
    assert_true(addr_pattern_match("127.0.0.??", "127.0.0.19"));
    assert_true(addr_pattern_match("*", "::1"));
    assert_true(addr_pattern_match("fd00::/8", "fd12::5"));
    assert_false(addr_pattern_match("fd00::/8", "10.0.0.1"));
    /* One address, two spellings. */
    assert_true(addr_pattern_match("0:0::1", "::1"));
    assert_true(addr_pattern_match("10.0.0.0/8", "::ffff:10.1.1.1"));
    /* Names are never resolved. */
    assert_false(addr_pattern_match("localhost", "127.0.0.1"));
}

static void test_negation_wins(void **state)
{
    (void)state;
    const char *list = "127.0.0.0/24,!127.0.0.3";
    assert_true(addr_pattern_match(list, "127.0.0.2"));
    assert_false(addr_pattern_match(list, "127.0.0.3"));
    assert_false(addr_pattern_match(list, "10.0.0.1"));
    /* A list of negations alone lets nobody in, as in sshd. */
    assert_false(addr_pattern_match("!10.0.0.1", "127.0.0.1"));
    assert_false(addr_pattern_match("*,!127.0.0.*", "127.0.0.5"));
}

static void test_malformed_lists(void **state)
{
    (void)state;
    char err[160];
    static const char *const bad[] = {"",       ",",         "a,,b", "10.0.0.1/8",  "10.0.0.0/33",
                                      "::/129", "10.0.0.0/", "/8",   "10.0.0.0/8x", "!",
                                      "a b",    "a\"b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(addr_pattern_check(bad[i], err, sizeof err), -1);
        assert_false(addr_pattern_match(bad[i], "10.0.0.1"));
    }
    assert_int_equal(addr_pattern_check("127.0.0.1,10.0.0.0/8,!10.0.0.9,*.lan", err, sizeof err),
                     0);
    char *huge = malloc(ADDR_PATTERN_MAX_LEN + 2);
    assert_non_null(huge);
    memset(huge, '*', ADDR_PATTERN_MAX_LEN + 1);
    huge[ADDR_PATTERN_MAX_LEN + 1] = '\0';
    assert_int_equal(addr_pattern_check(huge, err, sizeof err), -1);
    free(huge);
}

static void test_glob_does_not_blow_up(void **state)
{
    (void)state;
    /* A pattern of many stars against a long miss ends quickly (no
     * recursion, no exponential backtracking). */
    char pat[200];
    memset(pat, 0, sizeof pat);
    for (int i = 0; i < 99; i++)
        strcat(pat, "*1");
    assert_false(addr_pattern_match(pat, "1111:1111:1111:1111:1111:1111:1111:1112"));
}

static enum auth_options_result parse(const char *opts, char **from, char *why)
{
    return auth_options_parse(opts, strlen(opts), from, why, 256);
}

static void test_options_field(void **state)
{
    (void)state;
    char *from = NULL, why[256];
    assert_int_equal(parse("from=\"127.0.0.2,!10.0.0.0/8\"", &from, why), AUTH_OPTIONS_OK);
    assert_string_equal(from, "127.0.0.2,!10.0.0.0/8");
    free(from);
    assert_int_equal(parse("FROM=\"::1\"", &from, why), AUTH_OPTIONS_OK);
    assert_string_equal(from, "::1");
    free(from);

    static const struct {
        const char *opts, *names;
    } refused[] = {
        {"command=\"/bin/sh\"", "\"command\""},
        {"restrict", "\"restrict\""},
        {"from=\"127.0.0.1\",no-pty", "\"no-pty\""},
        {"from=\"127.0.0.1\",from=\"::1\"", "twice"},
        {"from=127.0.0.1", "malformed"},
        {"from=\"127.0.0.1\",", "malformed"},
        {"from=\"127.0.0.1", "malformed"},
        {"from", "needs a value"},
        {"from=\"10.0.0.1/8\"", "not a valid address"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        from = NULL;
        assert_int_equal(parse(refused[i].opts, &from, why), AUTH_OPTIONS_REFUSED);
        assert_null(from);
        assert_non_null(strstr(why, refused[i].names));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses_blocks_and_wildcards),
        cmocka_unit_test(test_negation_wins),
        cmocka_unit_test(test_malformed_lists),
        cmocka_unit_test(test_glob_does_not_blow_up),
        cmocka_unit_test(test_options_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
