/* shell_quote_argv(): the only way a command string for an SSH exec
 * channel is built. Checked twice: the exact text, and a round trip
 * through a real /bin/sh that must give back every word unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/spawn.h"
#include "provision/shell_quote.h"

static void expect_quoted(char *const argv[], const char *want)
{
    char *got = shell_quote_argv(argv);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_plain_words_stay_bare(void **state)
{
    char *argv[] = {"stat", "-c", "/etc/convocate/domain", "a,b:c+d_e.f", NULL};
    expect_quoted(argv, "stat -c /etc/convocate/domain a,b:c+d_e.f");
}

static void test_special_words_are_quoted(void **state)
{
    char *argv[] = {"echo", "", "two words", "$(id)", "`id`", "a;b", "~", "*", "x=y", NULL};
    expect_quoted(argv, "echo '' 'two words' '$(id)' '`id`' 'a;b' '~' '*' 'x=y'");
}

static void test_single_quotes_are_escaped(void **state)
{
    char *argv[] = {"it's", "'", "''", NULL};
    expect_quoted(argv, "'it'\\''s' ''\\''' ''\\'''\\'''");
}

static void test_newline_stays_inside_quotes(void **state)
{
    char *argv[] = {"a\nb", "\t", NULL};
    expect_quoted(argv, "'a\nb' '\t'");
}

static void test_empty_argv(void **state)
{
    char *argv[] = {NULL};
    assert_null(shell_quote_argv(argv));
    assert_null(shell_quote_argv(NULL));
}

static void test_word_into_small_buffer(void **state)
{
    char buf[6] = "";
    size_t need = shell_quote_word("a b c", buf, sizeof buf);
    assert_int_equal(need, 7); /* 'a b c' */
    assert_string_equal(buf, "'a b ");
}

/* The words come back from sh exactly, each as [word]. */
static void round_trip(char *const words[])
{
    size_t n = 0;
    while (words[n] != NULL)
        n++;
    char **argv = calloc(n + 3, sizeof *argv);
    assert_non_null(argv);
    argv[0] = "printf";
    argv[1] = "[%s]";
    memcpy(argv + 2, words, (n + 1) * sizeof *argv);
    char *cmd = shell_quote_argv(argv);
    assert_non_null(cmd);
    char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    char *out = NULL;
    assert_int_equal(spawn_capture(sh, &out, 1 << 16), 0);
    size_t want_len = 1;
    for (size_t i = 0; i < n; i++)
        want_len += strlen(words[i]) + 2;
    char *want = calloc(1, want_len);
    assert_non_null(want);
    for (size_t i = 0; i < n; i++) {
        strcat(want, "[");
        strcat(want, words[i]);
        strcat(want, "]");
    }
    assert_string_equal(out, want);
    free(want);
    free(out);
    free(cmd);
    free(argv);
}

static void test_round_trip_through_sh(void **state)
{
    char *words[] = {"plain",
                     "",
                     "two words",
                     "it's",
                     "'",
                     "\"double\"",
                     "$(touch /tmp/convocate-quote-pwned)",
                     "`touch /tmp/convocate-quote-pwned`",
                     "$HOME ${PATH} $1 $@",
                     "line one\nline two\n",
                     "back\\slash \\' \\\\",
                     "; rm -rf / & | > < ( ) { } * ? [a] ~ # ! %",
                     "-n",
                     "x=y",
                     "\t\r",
                     NULL};
    round_trip(words);
    FILE *f = fopen("/tmp/convocate-quote-pwned", "r");
    assert_null(f); /* nothing was executed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_words_stay_bare),
        cmocka_unit_test(test_special_words_are_quoted),
        cmocka_unit_test(test_single_quotes_are_escaped),
        cmocka_unit_test(test_newline_stays_inside_quotes),
        cmocka_unit_test(test_empty_argv),
        cmocka_unit_test(test_word_into_small_buffer),
        cmocka_unit_test(test_round_trip_through_sh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
