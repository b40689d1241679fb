/* rsyslog_apparmor_merge(): convocate's block in the site-local AppArmor
 * file is added once, replaced in place, and never touches the operator's
 * own lines around it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/pki/rsyslog_apparmor.h"

static char *merge(const char *in, size_t *len)
{
    char *out = rsyslog_apparmor_merge(in, in ? strlen(in) : 0, len);
    assert_non_null(out);
    assert_int_equal(strlen(out), *len);
    return out;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *at = strstr(text, needle); at; at = strstr(at + 1, needle))
        n++;
    return n;
}

static void test_empty_file_gets_one_block(void **state)
{
    (void)state;
    size_t len;
    char *out = merge(NULL, &len);
    assert_true(strncmp(out, RSYSLOG_APPARMOR_BEGIN, strlen(RSYSLOG_APPARMOR_BEGIN)) == 0);
    assert_int_equal(count(out, RSYSLOG_APPARMOR_END "\n"), 1);
    assert_non_null(strstr(out, "/etc/convocate/rsyslog-ca/server.key r,"));
    assert_non_null(strstr(out, "/etc/convocate-agent/rsyslog-tls/client.key r,"));
    assert_null(strstr(out, "ca.key")); /* the CA key stays out of rsyslog's reach */
    free(out);
}

static void test_merge_is_idempotent(void **state)
{
    (void)state;
    size_t len1, len2;
    char *once = merge("  /srv/mine r,\n", &len1);
    char *twice = merge(once, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(once, twice, len1);
    free(once);
    free(twice);
}

static void test_operator_lines_are_kept_around_the_block(void **state)
{
    (void)state;
    const char *in = "  /srv/before r,\n" RSYSLOG_APPARMOR_BEGIN " old\n"
                     "  /old/rule r,\n" RSYSLOG_APPARMOR_END "\n  /srv/after r,\n";
    size_t len;
    char *out = merge(in, &len);
    assert_true(strncmp(out, "  /srv/before r,\n" RSYSLOG_APPARMOR_BEGIN, 17 + 17) == 0);
    assert_null(strstr(out, "/old/rule"));
    assert_non_null(strstr(out, RSYSLOG_APPARMOR_END "\n  /srv/after r,\n"));
    assert_int_equal(count(out, RSYSLOG_APPARMOR_BEGIN), 1);
    free(out);
}

static void test_missing_final_newline_is_added_before_the_block(void **state)
{
    (void)state;
    size_t len;
    char *out = merge("  /srv/mine r,", &len);
    assert_true(strncmp(out, "  /srv/mine r,\n" RSYSLOG_APPARMOR_BEGIN, 15 + 17) == 0);
    free(out);
}

static void test_a_mention_inside_a_line_is_not_a_marker(void **state)
{
    (void)state;
    size_t len;
    char *out = merge("  # see " RSYSLOG_APPARMOR_BEGIN " below\n", &len);
    assert_int_equal(count(out, RSYSLOG_APPARMOR_BEGIN), 2);
    assert_true(strncmp(out, "  # see ", 8) == 0);
    free(out);
}

static void test_begin_without_end_is_refused(void **state)
{
    (void)state;
    const char *in = "  /srv/mine r,\n" RSYSLOG_APPARMOR_BEGIN "\n  /x r,\n";
    size_t len;
    assert_null(rsyslog_apparmor_merge(in, strlen(in), &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_file_gets_one_block),
        cmocka_unit_test(test_merge_is_idempotent),
        cmocka_unit_test(test_operator_lines_are_kept_around_the_block),
        cmocka_unit_test(test_missing_final_newline_is_added_before_the_block),
        cmocka_unit_test(test_a_mention_inside_a_line_is_not_a_marker),
        cmocka_unit_test(test_begin_without_end_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
