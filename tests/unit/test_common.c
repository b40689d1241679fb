/* Unit tests for src/common: uuid, paths, atomic writes, tree copy/remove. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "common/tree.h"
#include "common/ids.h"

static void test_uuid_generate_is_valid_and_unique(void **state)
{
    char a[UUID_STR_LEN], b[UUID_STR_LEN];
    assert_int_equal(uuid_v4_generate(a), 0);
    assert_int_equal(uuid_v4_generate(b), 0);
    assert_true(uuid_v4_is_valid(a));
    assert_true(uuid_v4_is_valid(b));
    assert_string_not_equal(a, b);
}

static void test_uuid_rejects_non_canonical(void **state)
{
    assert_false(uuid_v4_is_valid(NULL));
    assert_false(uuid_v4_is_valid(""));
    assert_false(uuid_v4_is_valid("../x"));
    /* version 1 */
    assert_false(uuid_v4_is_valid("6ba7b810-9dad-11d1-80b4-00c04fd430c8"));
    /* upper case */
    assert_false(uuid_v4_is_valid("6BA7B810-9DAD-41D1-80B4-00C04FD430C8"));
    /* bad variant */
    assert_false(uuid_v4_is_valid("6ba7b810-9dad-41d1-c0b4-00c04fd430c8"));
    /* trailing data */
    assert_false(uuid_v4_is_valid("6ba7b810-9dad-41d1-80b4-00c04fd430c8/"));
    assert_true(uuid_v4_is_valid("6ba7b810-9dad-41d1-80b4-00c04fd430c8"));
}

static void test_random_alnum(void **state)
{
    char id[9];
    assert_int_equal(random_alnum(id, 8), 0);
    assert_int_equal(strlen(id), 8);
    for (int i = 0; i < 8; i++)
        assert_true((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9'));
}

static void test_root_path(void **state)
{
    char out[PATH_BUF];
    assert_int_equal(paths_set_root("/tmp/r//"), 0);
    assert_int_equal(root_path(out, sizeof out, "/etc/%s", "x"), 0);
    assert_string_equal(out, "/tmp/r/etc/x");
    assert_int_equal(paths_set_root("/"), 0);
    assert_int_equal(root_path(out, sizeof out, "/etc/x"), 0);
    assert_string_equal(out, "/etc/x");
    char small[8];
    assert_int_equal(root_path(small, sizeof small, "/etc/longer"), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/convocate-unit-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void test_atomic_write_and_bounded_read(void **state)
{
    char *dir = make_tmpdir();
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/state.json", dir);
    assert_int_equal(atomic_write_file(path, "old", 3, 0644, KEEP_OWNER, 0), 0);
    assert_int_equal(atomic_write_file(path, "new!", 4, 0600, KEEP_OWNER, 0), 0);
    char *buf;
    size_t len;
    assert_int_equal(read_file_bounded(path, 100, &buf, &len), 0);
    assert_int_equal(len, 4);
    assert_string_equal(buf, "new!");
    free(buf);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Over the bound: refused, not truncated. */
    assert_int_equal(read_file_bounded(path, 3, &buf, &len), -1);
    assert_int_equal(errno, EFBIG);
    /* Symlinks are refused. */
    char link[PATH_BUF];
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(read_file_bounded(link, 100, &buf, &len), -1);
    /* No temporary file is left behind. */
    char cmd[PATH_BUF + 64];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp- >/dev/null", dir);
    assert_int_not_equal(system(cmd), 0);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

/* What a process killed inside atomic_write_file leaves, and what must stay:
 * the file itself, a neighbour's temporary, names that only look alike, a
 * directory of the temporary's name, and the target of a symlink. */
/* The read buffer starts at the file's stat size and grows: a file of
 * exactly max bytes, one byte over, one larger than the first buffer, and
 * a /proc file whose stat size (0) is less than what it holds. */
static void test_bounded_read_sizes(void **state)
{
    char *dir = make_tmpdir();
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/f", dir);
    static char big[5000];
    memset(big, 'k', sizeof big);
    assert_int_equal(atomic_write_file(path, big, sizeof big, 0600, KEEP_OWNER, 0), 0);
    char *buf;
    size_t len;
    assert_int_equal(read_file_bounded(path, sizeof big, &buf, &len), 0);
    assert_int_equal(len, sizeof big);
    assert_int_equal(buf[len], '\0');
    assert_memory_equal(buf, big, sizeof big);
    free(buf);
    assert_int_equal(read_file_bounded(path, sizeof big - 1, &buf, &len), -1);
    assert_int_equal(errno, EFBIG);
    assert_int_equal(read_file_bounded("/proc/self/status", 1 << 20, &buf, &len), 0);
    assert_true(len > 300 && strlen(buf) == len);
    assert_non_null(strstr(buf, "\nVmRSS:"));
    free(buf);
    /* a /proc file longer than max is refused, not cut */
    assert_int_equal(read_file_bounded("/proc/self/status", 300, &buf, &len), -1);
    assert_int_equal(errno, EFBIG);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

static void test_atomic_write_leftovers_remove(void **state)
{
    char *dir = make_tmpdir();
    static const char *const gone[] = {"state.json.tmp-Ab3dEf7h", "state.json.tmp-00000000",
                                       "state.json.tmp-linklink"};
    static const char *const kept[] = {"state.json", "other.json.tmp-Ab3dEf7h",
                                       "state.json.tmp-short", "state.json.tmp-toolong12",
                                       "target"};
    char path[PATH_BUF];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, gone[i]);
        write_text(path, "{\"torn", 0600);
    }
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, kept[i]);
        write_text(path, "{}", 0644);
    }
    snprintf(path, sizeof path, "%s/%s", dir, gone[2]);
    assert_int_equal(symlink("target", path), 0);
    snprintf(path, sizeof path, "%s/state.json.tmp-dirdir00", dir);
    assert_int_equal(mkdir(path, 0700), 0);

    snprintf(path, sizeof path, "%s/state.json", dir);
    assert_int_equal(atomic_write_leftovers_remove(path), 3);
    struct stat st;
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, gone[i]);
        assert_int_equal(lstat(path, &st), -1);
    }
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, kept[i]);
        assert_int_equal(lstat(path, &st), 0);
    }
    snprintf(path, sizeof path, "%s/state.json.tmp-dirdir00", dir);
    assert_int_equal(lstat(path, &st), 0);
    snprintf(path, sizeof path, "%s/missing/state.json", dir);
    assert_int_equal(atomic_write_leftovers_remove(path), -1);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

static void test_tree_copy_keeps_links_modes_and_skips_sockets(void **state)
{
    char *dir = make_tmpdir();
    char src[PATH_BUF], dst[PATH_BUF], p[PATH_BUF * 2];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/dst", dir);
    assert_int_equal(mkdir(src, 0755), 0);
    /* A deep chain: depth far beyond what recursion should be trusted with. */
    char deep[PATH_BUF];
    snprintf(deep, sizeof deep, "%s", src);
    for (int i = 0; i < 200; i++) {
        strcat(deep, "/d");
        assert_int_equal(mkdir(deep, 0755), 0);
    }
    snprintf(p, sizeof p, "%s/leaf", deep);
    write_text(p, "leaf", 0640);
    snprintf(p, sizeof p, "%s/script", src);
    write_text(p, "#!/bin/sh\n", 0750);
    snprintf(p, sizeof p, "%s/escape", src);
    assert_int_equal(symlink("/etc", p), 0);
    snprintf(p, sizeof p, "%s/ro", src);
    assert_int_equal(mkdir(p, 0500), 0);
    /* A socket must be skipped. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(src) + 6 < sizeof sa.sun_path);
    memcpy(sa.sun_path, src, strlen(src));
    memcpy(sa.sun_path + strlen(src), "/sock", 6);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    close(s);

    assert_int_equal(tree_copy(src, dst, (uid_t)-1, (gid_t)-1), 0);
    struct stat st;
    snprintf(p, sizeof p, "%s/script", dst);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);
    snprintf(p, sizeof p, "%s/escape", dst);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    snprintf(p, sizeof p, "%s/ro", dst);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0500);
    snprintf(p, sizeof p, "%s/sock", dst);
    assert_int_equal(lstat(p, &st), -1);
    size_t srclen = strlen(src);
    snprintf(p, sizeof p, "%s%s/leaf", dst, deep + srclen);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    /* Removing the copy must not follow the symlink to /etc. */
    assert_int_equal(tree_remove(dst), 0);
    assert_int_equal(lstat(dst, &st), -1);
    assert_int_equal(stat("/etc/hostname", &st) == 0 || stat("/etc/passwd", &st) == 0, 1);
    assert_int_equal(tree_remove(dir), 0);
    assert_int_equal(lstat(dir, &st), -1);
    assert_int_equal(tree_remove(dir), 0); /* missing is success */
    free(dir);
}

/* What a session could put where the agent reads: each refused on the
 * descriptor with its own errno, and a FIFO without waiting for a writer. */
static void test_read_untrusted_refuses_what_a_session_could_plant(void **state)
{
    (void)state;
    char dir[] = "/tmp/convocate-untrusted-XXXXXX";
    char path[PATH_BUF], *text = NULL;
    size_t len = 0;
    assert_non_null(mkdtemp(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    snprintf(path, sizeof path, "%s/ok", dir);
    assert_int_equal(atomic_write_file(path, "{}\n", 3, 0644, KEEP_OWNER, 0), 0);
    assert_int_equal(read_untrusted_at(dfd, "ok", 64, &text, &len), 0);
    assert_string_equal(text, "{}\n");
    assert_int_equal(len, 3);
    free(text);
    struct {
        const char *name;
        int err;
    } cases[] = {
        {"fifo", EINVAL}, {"link", ELOOP}, {"hard", EMLINK}, {"big", EFBIG}, {"missing", ENOENT}};
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0644), 0);
    snprintf(path, sizeof path, "%s/link", dir);
    assert_int_equal(symlink("ok", path), 0);
    snprintf(path, sizeof path, "%s/hard", dir);
    char ok[PATH_BUF];
    snprintf(ok, sizeof ok, "%s/ok", dir);
    assert_int_equal(link(ok, path), 0);
    char big[65];
    memset(big, 'x', sizeof big);
    snprintf(path, sizeof path, "%s/big", dir);
    assert_int_equal(atomic_write_file(path, big, sizeof big, 0644, KEEP_OWNER, 0), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errno = 0;
        assert_int_equal(read_untrusted_at(dfd, cases[i].name, 64, &text, &len), -1);
        if (errno != cases[i].err)
            fail_msg("%s: errno %d, expected %d", cases[i].name, errno, cases[i].err);
        assert_non_null(untrusted_read_error(errno));
    }
    close(dfd);
    tree_remove(dir);
}

static void test_rfc3339_roundtrip(void **state)
{
    char buf[RFC3339_LEN];
    rfc3339_format(1795514400, buf);
    assert_string_equal(buf, "2026-11-24T10:00:00Z");
    time_t t;
    assert_true(rfc3339_parse("2026-11-24T10:00:00Z", &t));
    assert_int_equal(t, 1795514400);
    assert_true(rfc3339_parse("2026-11-24T10:00:00.123Z", &t));
    assert_false(rfc3339_parse("2026-11-24T10:00:00+01:00", &t));
    assert_false(rfc3339_parse("yesterday", &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_generate_is_valid_and_unique),
        cmocka_unit_test(test_uuid_rejects_non_canonical),
        cmocka_unit_test(test_random_alnum),
        cmocka_unit_test(test_root_path),
        cmocka_unit_test(test_atomic_write_and_bounded_read),
        cmocka_unit_test(test_bounded_read_sizes),
        cmocka_unit_test(test_atomic_write_leftovers_remove),
        cmocka_unit_test(test_tree_copy_keeps_links_modes_and_skips_sockets),
        cmocka_unit_test(test_read_untrusted_refuses_what_a_session_could_plant),
        cmocka_unit_test(test_rfc3339_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
