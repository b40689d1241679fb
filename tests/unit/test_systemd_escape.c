/* systemd_escape_path(): the mount unit's name must be what systemd derives
 * from the mount point (checked against `systemd-escape --path` by hand:
 * the expected strings below are its output), or systemd ignores the unit. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "provision/systemd_escape.h"

static void expect_escaped(const char *path, const char *want)
{
    char out[128];
    assert_int_equal(systemd_escape_path(path, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_plain_paths(void **state)
{
    (void)state;
    expect_escaped("/home/claude", "home-claude");
    expect_escaped("/home/claude/", "home-claude");
    expect_escaped("//home//claude", "home-claude");
    expect_escaped("/", "-");
    expect_escaped("/srv/a_b:c.d", "srv-a_b:c.d");
}

static void test_special_bytes_are_hex_escaped(void **state)
{
    (void)state;
    expect_escaped("/a-b/.c d/\xc3\xa9", "a\\x2db-.c\\x20d-\\xc3\\xa9");
    expect_escaped("/.hidden", "\\x2ehidden");
    expect_escaped("/x\\y", "x\\x5cy");
}

static void test_mount_unit_name(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(systemd_mount_unit_name("/home/claude", out, sizeof out), 0);
    assert_string_equal(out, "home-claude.mount");
    assert_int_equal(systemd_mount_unit_name("/home/claude", out, 17), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

static void test_refused_paths(void **state)
{
    (void)state;
    char out[64];
    const char *bad[] = {"home/claude", "", "/a/../b", "/a/./b", "/..", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        assert_int_equal(systemd_escape_path(bad[i], out, sizeof out), -1);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(systemd_escape_path("/home/claude", out, 11), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    assert_int_equal(systemd_escape_path("/home/claude", out, 12), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_paths),
        cmocka_unit_test(test_special_bytes_are_hex_escaped),
        cmocka_unit_test(test_mount_unit_name),
        cmocka_unit_test(test_refused_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
