/* Unit tests for claude.env (SPEC 15): parse, every refusal with its line
 * number, the size bounds, encode, load (symlinks, FIFOs, directories), the
 * atomic 0600 save, the hint; the shared field rules (model, base URL); and
 * the shell's check of a secret read from a file. No error text may hold a
 * secret. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/claude_env.h"
#include "common/fileio.h"
#include "common/tree.h"
#include "proto/claude_fields.h"
#include "shell/secret_input.h"

#define SECRET "sk-ant-api03-SECRETVALUE-wxyz"

static claude_env env; /* 16 KiB: not on cmocka's stack */

static void expect_ok(const char *text)
{
    char err[512] = "";
    if (claude_env_parse(text, strlen(text), &env, err, sizeof err) != 0)
        fail_msg("refused \"%s\": %s", text, err);
}

/* Refused with exactly this error, and the error never holds SECRET. */
static void expect_refusal_n(const char *text, size_t len, const char *error)
{
    char err[512] = "";
    assert_int_equal(claude_env_parse(text, len, &env, err, sizeof err), -1);
    assert_string_equal(err, error);
    assert_null(strstr(err, "SECRETVALUE"));
    for (int k = 0; k < CLAUDE_ENV_KEYS; k++)
        assert_false(env.has[k]); /* nothing half-parsed is left */
}

static void expect_refusal(const char *text, const char *error)
{
    expect_refusal_n(text, strlen(text), error);
}

static void test_parse_accepts_the_format(void **state)
{
    expect_ok("# credentials\n"
              "\n"
              "ANTHROPIC_API_KEY=" SECRET "\n"
              "ANTHROPIC_BASE_URL=http://10.0.0.1:8080/v1?x=a=b\n"
              "#ANTHROPIC_API_KEY=commented out\n"
              "ANTHROPIC_MODEL=claude-sonnet-4");
    assert_true(env.has[CLAUDE_API_KEY]);
    assert_false(env.has[CLAUDE_OAUTH_TOKEN]);
    assert_string_equal(env.value[CLAUDE_API_KEY], SECRET);
    /* The value is the rest of the line verbatim: '=' included. */
    assert_string_equal(env.value[CLAUDE_BASE_URL], "http://10.0.0.1:8080/v1?x=a=b");
    assert_string_equal(env.value[CLAUDE_MODEL], "claude-sonnet-4"); /* no final newline */
    expect_ok("CLAUDE_CODE_OAUTH_TOKEN=sk-ant-oat01-abc\n");
    assert_true(env.has[CLAUDE_OAUTH_TOKEN]);
    expect_ok("");
    for (int k = 0; k < CLAUDE_ENV_KEYS; k++)
        assert_false(env.has[k]);
    expect_ok("ANTHROPIC_MODEL=m\n"); /* neither secret: valid, kind "none" */
}

static void test_parse_refusals_name_their_line(void **state)
{
    expect_refusal("# c\nANTHROPIC_MODEL=m\nFOO=bar\n", "claude.env line 3: unknown key \"FOO\"");
    expect_refusal("\n\nANTHROPIC_API_KEY\n", "claude.env line 3: no \"=\" (want KEY=VALUE)");
    expect_refusal("ANTHROPIC_MODEL=a\n#\nANTHROPIC_MODEL=b\n",
                   "claude.env line 3: key \"ANTHROPIC_MODEL\" repeated (first on line 1)");
    expect_refusal("ANTHROPIC_API_KEY=\n",
                   "claude.env line 1: ANTHROPIC_API_KEY has an empty value");
    expect_refusal("ANTHROPIC_API_KEY=sk SECRETVALUE\n",
                   "claude.env line 1: the value of ANTHROPIC_API_KEY holds a space, a control "
                   "character or a non-ASCII byte");
    expect_refusal("ANTHROPIC_API_KEY=SECRETVALUE\r\n",
                   "claude.env line 1: the value of ANTHROPIC_API_KEY holds a space, a control "
                   "character or a non-ASCII byte");
    expect_refusal("ANTHROPIC_MODEL=caf\xc3\xa9\n",
                   "claude.env line 1: the value of ANTHROPIC_MODEL holds a space, a control "
                   "character or a non-ASCII byte");
    expect_refusal_n("ANTHROPIC_MODEL=a\0b\n", 20,
                     "claude.env line 1: the value of ANTHROPIC_MODEL holds a space, a control "
                     "character or a non-ASCII byte");
    expect_refusal(" ANTHROPIC_MODEL=m\n",
                   "claude.env line 1: unknown key (not shown: not an environment variable name)");
    expect_refusal("anthropic_model=m\n", "claude.env line 1: unknown key \"anthropic_model\"");
    /* A secret pasted where a key belongs is never echoed. */
    expect_refusal("ANTHROPIC_MODEL=m\nsk-ant-SECRETVALUE=x\n",
                   "claude.env line 2: unknown key (not shown: not an environment variable name)");
    expect_refusal("ANTHROPIC_API_KEY=" SECRET "\n# x\nCLAUDE_CODE_OAUTH_TOKEN=" SECRET "\n",
                   "claude.env line 3: ANTHROPIC_API_KEY and CLAUDE_CODE_OAUTH_TOKEN cannot both "
                   "be set (the other is on line 1)");
    expect_refusal("CLAUDE_CODE_OAUTH_TOKEN=t\nANTHROPIC_API_KEY=" SECRET "\n",
                   "claude.env line 2: ANTHROPIC_API_KEY and CLAUDE_CODE_OAUTH_TOKEN cannot both "
                   "be set (the other is on line 1)");
}

static void test_size_bounds(void **state)
{
    static char text[CLAUDE_ENV_FILE_MAX + 64];
    char err[512];
    /* A value of exactly 4096 bytes is accepted, 4097 refused. */
    size_t n = (size_t)snprintf(text, sizeof text, "ANTHROPIC_API_KEY=");
    memset(text + n, 'k', CLAUDE_VALUE_MAX);
    text[n + CLAUDE_VALUE_MAX] = '\n';
    assert_int_equal(claude_env_parse(text, n + CLAUDE_VALUE_MAX + 1, &env, err, sizeof err), 0);
    assert_int_equal(strlen(env.value[CLAUDE_API_KEY]), CLAUDE_VALUE_MAX);
    memset(text + n, 'k', CLAUDE_VALUE_MAX + 1);
    text[n + CLAUDE_VALUE_MAX + 1] = '\n';
    expect_refusal_n(text, n + CLAUDE_VALUE_MAX + 2,
                     "claude.env line 1: the value of ANTHROPIC_API_KEY is longer than 4096 bytes");
    /* The whole file: 16384 bytes are accepted, 16385 refused. */
    memset(text, '#', CLAUDE_ENV_FILE_MAX + 1);
    for (size_t i = 99; i < CLAUDE_ENV_FILE_MAX; i += 100)
        text[i] = '\n';
    assert_int_equal(claude_env_parse(text, CLAUDE_ENV_FILE_MAX, &env, err, sizeof err), 0);
    expect_refusal_n(text, CLAUDE_ENV_FILE_MAX + 1, "claude.env is larger than 16384 bytes");
}

static void test_encode_round_trip(void **state)
{
    char err[512];
    claude_env_init(&env);
    assert_int_equal(claude_env_set(&env, CLAUDE_MODEL, "m1"), 0);
    assert_int_equal(claude_env_set(&env, CLAUDE_OAUTH_TOKEN, "tok"), 0);
    assert_int_equal(claude_env_set(&env, CLAUDE_BASE_URL, "has space"), -1);
    assert_int_equal(claude_env_set(&env, CLAUDE_BASE_URL, ""), -1);
    size_t len;
    char *text = claude_env_encode(&env, &len);
    assert_string_equal(text, "CLAUDE_CODE_OAUTH_TOKEN=tok\nANTHROPIC_MODEL=m1\n");
    assert_int_equal(len, strlen(text));
    claude_env again;
    assert_int_equal(claude_env_parse(text, len, &again, err, sizeof err), 0);
    assert_string_equal(again.value[CLAUDE_OAUTH_TOKEN], "tok");
    free(text);
    assert_int_equal(claude_env_set(&env, CLAUDE_API_KEY, "key"), 0);
    assert_null(claude_env_encode(&env, &len)); /* both secrets: never written */
    claude_env_wipe(&env);
    assert_false(env.has[CLAUDE_MODEL]);
    assert_int_equal(env.value[CLAUDE_OAUTH_TOKEN][0], '\0');
}

static char *make_dir(void)
{
    char tmpl[] = "/tmp/convocate-cenv-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

static void test_load_save_remove(void **state)
{
    char *dir = make_dir();
    char path[512], other[512], err[512];
    snprintf(path, sizeof path, "%s/claude.env", dir);
    assert_int_equal(claude_env_load(path, &env, err, sizeof err), 0); /* none */
    claude_env_init(&env);
    claude_env_set(&env, CLAUDE_API_KEY, SECRET);
    claude_env_set(&env, CLAUDE_BASE_URL, "https://llm.example:8443");
    assert_int_equal(claude_env_save(path, &env, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *text;
    assert_int_equal(read_file_bounded(path, 4096, &text, NULL), 0);
    assert_string_equal(text, "ANTHROPIC_API_KEY=" SECRET
                              "\nANTHROPIC_BASE_URL=https://llm.example:8443\n");
    free(text);
    claude_env_wipe(&env);
    assert_int_equal(claude_env_load(path, &env, err, sizeof err), 1);
    assert_string_equal(env.value[CLAUDE_API_KEY], SECRET);
    /* A symlink, a directory and a FIFO are refused without blocking. */
    snprintf(other, sizeof other, "%s/link", dir);
    assert_int_equal(symlink(path, other), 0);
    assert_int_equal(claude_env_load(other, &env, err, sizeof err), -1);
    assert_non_null(strstr(err, "symbolic link"));
    snprintf(other, sizeof other, "%s/fifo", dir);
    assert_int_equal(mkfifo(other, 0600), 0);
    assert_int_equal(claude_env_load(other, &env, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(claude_env_load(dir, &env, err, sizeof err), -1);
    /* An invalid file: the line-numbered error. */
    snprintf(other, sizeof other, "%s/bad.env", dir);
    assert_int_equal(atomic_write_file(other, "X=1\n", 4, 0600, KEEP_OWNER, 0), 0);
    assert_int_equal(claude_env_load(other, &env, err, sizeof err), -1);
    assert_string_equal(err, "claude.env line 1: unknown key \"X\"");
    assert_int_equal(claude_env_remove(path, err, sizeof err), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(claude_env_remove(path, err, sizeof err), 0); /* already gone: fine */
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

static void test_hint(void **state)
{
    char hint[16];
    claude_env_hint(SECRET, hint, sizeof hint);
    assert_string_equal(hint, "\xe2\x80\xa6wxyz");
    claude_env_hint("123456789012", hint, sizeof hint);
    assert_string_equal(hint, "\xe2\x80\xa6"
                              "9012");
    claude_env_hint("12345678901", hint, sizeof hint); /* short: nothing shown */
    assert_string_equal(hint, "\xe2\x80\xa6");
}

static void test_field_rules(void **state)
{
    assert_true(claude_model_is_valid("claude-opus-4-1_x.y"));
    assert_false(claude_model_is_valid(""));
    assert_false(claude_model_is_valid("a b"));
    assert_false(claude_model_is_valid("a/b"));
    char model[66];
    memset(model, 'm', 64);
    model[64] = '\0';
    assert_true(claude_model_is_valid(model));
    model[64] = 'm';
    model[65] = '\0';
    assert_false(claude_model_is_valid(model));

    const char *good[] = {"http://h",
                          "https://api.example.com/v1",
                          "http://10.0.0.1:8080",
                          "http://[::1]:9000/x",
                          "https://user@host",
                          "http://h/?q=#f"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(claude_base_url_is_valid(good[i]));
    const char *bad[] = {"",           "h",          "ftp://h",        "http://",    "http:///x",
                         "http://:80", "http://h:0", "http://h:65536", "http://h:",  "http://h:8a",
                         "http://h x", "HTTP://h",   "http://[::1",    "http://a]b", "http://u@",
                         "https://h\t"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (claude_base_url_is_valid(bad[i]))
            fail_msg("accepted \"%s\"", bad[i]);
    static char url[CLAUDE_BASE_URL_MAX + 2];
    memcpy(url, "http://h/", 9);
    memset(url + 9, 'p', CLAUDE_BASE_URL_MAX - 9);
    url[CLAUDE_BASE_URL_MAX] = '\0';
    assert_true(claude_base_url_is_valid(url));
    url[CLAUDE_BASE_URL_MAX] = 'p';
    assert_false(claude_base_url_is_valid(url));
}

static void expect_secret(const char *in, size_t len, const char *want)
{
    char out[SECRET_BUF], err[256] = "";
    int rc = secret_from_bytes(in, len, out, sizeof out, err, sizeof err);
    if (want == NULL) {
        assert_int_equal(rc, -1);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "SECRETVALUE"));
    } else {
        assert_int_equal(rc, 0);
        assert_string_equal(out, want);
    }
}

static void test_secret_input_rules(void **state)
{
    expect_secret(SECRET "\n", strlen(SECRET) + 1, SECRET);
    expect_secret(SECRET, strlen(SECRET), SECRET);
    expect_secret(SECRET "\n\n", strlen(SECRET) + 2, NULL); /* one newline trimmed, not two */
    expect_secret(SECRET "\r\n", strlen(SECRET) + 2, NULL);
    expect_secret("", 0, NULL);
    expect_secret("\n", 1, NULL);
    expect_secret("sk SECRETVALUE", 14, NULL);
    expect_secret("SECRETVALUE\0x", 13, NULL);
    static char big[CLAUDE_VALUE_MAX + 2];
    memset(big, 's', sizeof big);
    big[CLAUDE_VALUE_MAX] = '\n';
    char out[SECRET_BUF], err[256];
    assert_int_equal(secret_from_bytes(big, CLAUDE_VALUE_MAX + 1, out, sizeof out, err, sizeof err),
                     0);
    assert_int_equal(strlen(out), CLAUDE_VALUE_MAX);
    big[CLAUDE_VALUE_MAX] = 's';
    assert_int_equal(secret_from_bytes(big, CLAUDE_VALUE_MAX + 1, out, sizeof out, err, sizeof err),
                     -1);
    assert_string_equal(err, "is longer than 4096 bytes");
}

static void test_secret_read_from_a_file(void **state)
{
    char *dir = make_dir();
    char path[512], out[SECRET_BUF], err[600];
    snprintf(path, sizeof path, "%s/key", dir);
    assert_int_equal(atomic_write_file(path, SECRET "\n", strlen(SECRET) + 1, 0600, KEEP_OWNER, 0),
                     0);
    assert_int_equal(secret_read(path, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, SECRET);
    assert_int_equal(atomic_write_file(path, "a b\n", 4, 0600, KEEP_OWNER, 0), 0);
    assert_int_equal(secret_read(path, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "holds a space"));
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(secret_read(path, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_the_format),
        cmocka_unit_test(test_parse_refusals_name_their_line),
        cmocka_unit_test(test_size_bounds),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_load_save_remove),
        cmocka_unit_test(test_hint),
        cmocka_unit_test(test_field_rules),
        cmocka_unit_test(test_secret_input_rules),
        cmocka_unit_test(test_secret_read_from_a_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
