/* Unit tests of the activity spool line parser (SPEC 16): what a session
 * may write, and everything it must not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proto/activity_line.h"

static int parse(const char *line, activity_line *l)
{
    char err[128];
    return activity_line_parse(line, strlen(line), l, err, sizeof err);
}

static void state_lines(void **unused)
{
    activity_line l;
    assert_int_equal(parse("{\"ts\":1700000000123,\"state\":\"waiting\",\"detail\":\"Bash\"}", &l),
                     0);
    assert_int_equal(l.kind, ACTIVITY_LINE_STATE);
    assert_int_equal(l.state, ACTIVITY_WAITING);
    assert_string_equal(l.detail, "Bash");
    assert_true(l.ts_ms == 1700000000123LL);
    assert_int_equal(parse("{\"ts\":1,\"state\":\"idle\"}", &l), 0);
    assert_string_equal(l.detail, "");
    for (int s = ACTIVITY_IDLE; s <= ACTIVITY_SHELL; s++) {
        char line[128];
        snprintf(line, sizeof line, "{\"ts\":1,\"state\":\"%s\",\"detail\":\"\"}",
                 activity_state_name((activity_state)s));
        assert_int_equal(parse(line, &l), 0);
        assert_int_equal(l.state, s);
    }
}

static void status_lines(void **unused)
{
    activity_line l;
    assert_int_equal(
        parse("{\"ts\":5,\"cost_usd\":0.0123,\"context_pct\":42.5,\"model\":\"claude-x\"}", &l), 0);
    assert_int_equal(l.kind, ACTIVITY_LINE_STATUS);
    assert_true(l.has_cost && l.has_context);
    assert_true(l.cost_usd > 0.0122 && l.cost_usd < 0.0124);
    assert_true(l.context_pct == 42.5);
    assert_string_equal(l.model, "claude-x");
    assert_int_equal(parse("{\"ts\":5,\"cost_usd\":0,\"context_pct\":null,\"model\":null}", &l), 0);
    assert_true(l.has_cost && !l.has_context);
    assert_string_equal(l.model, "");
}

static void refused_lines(void **unused)
{
    static const char *const bad[] = {
        "",
        "garbage",
        "[1,2]",
        "{\"state\":\"idle\"}",                                   /* no ts */
        "{\"ts\":\"1\",\"state\":\"idle\"}",                      /* ts not a number */
        "{\"ts\":-1,\"state\":\"idle\"}",                         /* negative */
        "{\"ts\":1,\"state\":\"dancing\"}",                       /* unknown state */
        "{\"ts\":1,\"state\":7}",                                 /* state not a string */
        "{\"ts\":1,\"state\":\"idle\",\"detail\":5}",             /* detail not a string */
        "{\"ts\":1,\"state\":\"idle\",\"extra\":1}",              /* unknown key */
        "{\"ts\":1,\"state\":\"idle\",\"state\":\"working\"}",    /* duplicate */
        "{\"ts\":1}",                                             /* neither shape */
        "{\"ts\":1,\"cost_usd\":-2}",                             /* negative cost */
        "{\"ts\":1,\"context_pct\":101}",                         /* over 100 % */
        "{\"ts\":1,\"cost_usd\":\"1\"}",                          /* cost not a number */
        "{\"ts\":1,\"cost_usd\":1,\"state\":\"idle\"}",           /* both shapes */
        "{\"ts\":1,\"state\":\"idle\",\"detail\":\"a\\u0000b\"}", /* NUL */
    };
    activity_line l;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (parse(bad[i], &l) == 0)
            fail_msg("accepted: %s", bad[i]);
}

static void bounds(void **unused)
{
    activity_line l;
    char line[2048], detail[800];
    /* 200 characters of detail pass, 201 do not; multi-byte ones count once. */
    memset(detail, 'd', 200);
    detail[200] = '\0';
    snprintf(line, sizeof line, "{\"ts\":1,\"state\":\"idle\",\"detail\":\"%s\"}", detail);
    assert_int_equal(parse(line, &l), 0);
    snprintf(line, sizeof line, "{\"ts\":1,\"state\":\"idle\",\"detail\":\"%sd\"}", detail);
    assert_int_equal(parse(line, &l), -1);
    detail[0] = '\0';
    for (int i = 0; i < 200; i++)
        strcat(detail, "\xc3\xa9"); /* é */
    snprintf(line, sizeof line, "{\"ts\":1,\"state\":\"idle\",\"detail\":\"%s\"}", detail);
    assert_int_equal(parse(line, &l), 0);
    /* A model of 65 characters is refused. */
    snprintf(line, sizeof line, "{\"ts\":1,\"model\":\"%065d\"}", 0);
    assert_int_equal(parse(line, &l), -1);
    /* A line of 1024 bytes or more (without its '\n') is refused unread. */
    memset(line, ' ', sizeof line);
    memcpy(line, "{\"ts\":1,\"state\":\"idle\"}", 23);
    assert_int_equal(activity_line_parse(line, 1023, &l, detail, sizeof detail), 0);
    assert_int_equal(activity_line_parse(line, 1024, &l, detail, sizeof detail), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_lines),
        cmocka_unit_test(status_lines),
        cmocka_unit_test(refused_lines),
        cmocka_unit_test(bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
