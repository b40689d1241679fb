/* Unit tests for what clone must not copy from a session home (SPEC 14):
 * setuid/setgid bits, and entries that stop being regular files between the
 * directory listing and the open (a FIFO swapped in must not block). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/paths.h"
#include "common/tree.h"

#define BLOCK_GUARD_S 10 /* a blocked open or read fails the test, never hangs it */

static char *make_tmpdir(void)
{
    char *dir = strdup("/tmp/cvtree-XXXXXX");
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    /* chmod after creation: the umask would eat the set-id bits otherwise. */
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static mode_t mode_of(const char *dir, const char *name)
{
    char p[PATH_BUF * 2];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(lstat(p, &st), 0);
    return st.st_mode;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "blocked: the copy waited on a FIFO\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static void guard_blocking(void)
{
    signal(SIGALRM, on_alarm);
    alarm(BLOCK_GUARD_S);
}

static void test_copy_drops_setuid_and_setgid(void **state)
{
    char *dir = make_tmpdir();
    char src[PATH_BUF], dst[PATH_BUF], p[PATH_BUF * 2];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/dst", dir);
    assert_int_equal(mkdir(src, 0755), 0);
    snprintf(p, sizeof p, "%s/suid", src);
    write_file(p, "#!/bin/sh\n", 04755);
    snprintf(p, sizeof p, "%s/sgid", src);
    write_file(p, "#!/bin/sh\n", 02750);
    snprintf(p, sizeof p, "%s/both", src);
    write_file(p, "x", 06711);
    snprintf(p, sizeof p, "%s/sticky", src);
    write_file(p, "x", 01644);
    snprintf(p, sizeof p, "%s/gdir", src);
    assert_int_equal(mkdir(p, 0750), 0);
    assert_int_equal(chmod(p, 02750), 0);
    assert_int_equal(mode_of(src, "suid") & 07777, 04755); /* the source really has them */

    /* With and without a chown: chown alone must not be what clears them. */
    uid_t uid = geteuid() == 0 ? 1337 : (uid_t)-1;
    assert_int_equal(tree_copy(src, dst, uid, uid == (uid_t)-1 ? (gid_t)-1 : 1337), 0);
    assert_int_equal(mode_of(dst, "suid") & 07777, 0755);
    assert_int_equal(mode_of(dst, "sgid") & 07777, 0750);
    assert_int_equal(mode_of(dst, "both") & 07777, 0711);
    assert_int_equal(mode_of(dst, "sticky") & 07777, 01644);
    assert_int_equal(mode_of(dst, "gdir") & 07777, 0750);
    assert_int_equal(tree_remove(dst), 0);
    assert_int_equal(tree_copy(src, dst, (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(mode_of(dst, "suid") & (S_ISUID | S_ISGID), 0);
    assert_int_equal(mode_of(dst, "both") & (S_ISUID | S_ISGID), 0);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

/* The step behind the listing: the entry was a file when listed and is a
 * FIFO now. It is skipped, nothing appears in the copy, and nothing blocks,
 * with no writer (a read would see EOF) and with a writer holding it open
 * (a read would wait for data). */
static void test_fifo_swapped_in_is_skipped(void **state)
{
    char *dir = make_tmpdir();
    char src[PATH_BUF], dst[PATH_BUF], p[PATH_BUF * 2];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/dst", dir);
    assert_int_equal(mkdir(src, 0755), 0);
    assert_int_equal(mkdir(dst, 0700), 0);
    snprintf(p, sizeof p, "%s/pipe", src);
    assert_int_equal(mkfifo(p, 0644), 0);
    int sfd = open(src, O_RDONLY | O_DIRECTORY), dfd = open(dst, O_RDONLY | O_DIRECTORY);
    assert_true(sfd >= 0 && dfd >= 0);

    guard_blocking();
    assert_int_equal(tree_copy_file_at(sfd, dfd, "pipe", (uid_t)-1, (gid_t)-1), 1);
    int writer = open(p, O_RDWR | O_NONBLOCK); /* keeps a writer present */
    assert_true(writer >= 0);
    assert_int_equal(tree_copy_file_at(sfd, dfd, "pipe", (uid_t)-1, (gid_t)-1), 1);
    alarm(0);
    close(writer);
    struct stat st;
    snprintf(p, sizeof p, "%s/pipe", dst);
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(errno, ENOENT);

    /* A regular file still copies through the same step. */
    snprintf(p, sizeof p, "%s/file", src);
    write_file(p, "data", 0640);
    assert_int_equal(tree_copy_file_at(sfd, dfd, "file", (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(mode_of(dst, "file") & 07777, 0640);
    close(sfd);
    close(dfd);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

typedef struct {
    char fifo[PATH_BUF * 2], name[PATH_BUF * 2];
    atomic_bool stop;
    long swaps;
} swapper;

/* Keeps swapping "x" between a regular file and a FIFO, as a hostile
 * session would; RENAME_EXCHANGE is atomic, so "x" always exists. */
static void *swap_loop(void *arg)
{
    swapper *s = arg;
    while (!atomic_load(&s->stop))
        if (renameat2(AT_FDCWD, s->name, AT_FDCWD, s->fifo, RENAME_EXCHANGE) == 0)
            s->swaps++;
    return NULL;
}

/* The whole copy under a live swap: every run finishes without blocking,
 * and "x" in the copy is either absent (skipped as a FIFO) or the regular
 * file with its content. */
static void test_copy_under_a_fifo_swap_never_blocks(void **state)
{
    char *dir = make_tmpdir();
    char src[PATH_BUF], dst[PATH_BUF], p[PATH_BUF * 2];
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/dst", dir);
    assert_int_equal(mkdir(src, 0755), 0);
    swapper s = {0};
    snprintf(s.name, sizeof s.name, "%s/x", src);
    snprintf(s.fifo, sizeof s.fifo, "%s/.fifo", dir);
    write_file(s.name, "data", 0644);
    assert_int_equal(mkfifo(s.fifo, 0644), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, swap_loop, &s), 0);
    guard_blocking();
    int skipped = 0;
    snprintf(p, sizeof p, "%s/x", dst);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(tree_copy(src, dst, (uid_t)-1, (gid_t)-1), 0);
        struct stat st;
        if (lstat(p, &st) == 0) {
            assert_true(S_ISREG(st.st_mode));
            assert_int_equal(st.st_size, 4);
        } else {
            skipped++;
        }
        assert_int_equal(tree_remove(dst), 0);
    }
    alarm(0);
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    print_message("# %d of 300 copies met the FIFO, %ld swaps\n", skipped, s.swaps);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_drops_setuid_and_setgid),
        cmocka_unit_test(test_fifo_swapped_in_is_skipped),
        cmocka_unit_test(test_copy_under_a_fifo_swap_never_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
