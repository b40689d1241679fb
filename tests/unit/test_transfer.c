/* The pure parts of update and the image transfer: which tags may reach a
 * command line, the streaming SHA-256 against a known vector and against
 * the whole-file digest, and the local runner's atomic streaming upload
 * with a watch that sees (and may change) every byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "common/tree.h"
#include "provision/digest.h"
#include "provision/image_transfer.h"
#include "provision/runner.h"

static void test_image_tags(void **state)
{
    assert_true(image_tag_is_valid("convocate:v0.1.0"));
    assert_true(image_tag_is_valid("convocate-test:de0caded4f0a58e2"));
    assert_true(image_tag_is_valid("registry.local:5000/team/img@sha256:abc"));
    assert_false(image_tag_is_valid(""));
    assert_false(image_tag_is_valid("-rf"));
    assert_false(image_tag_is_valid("a b"));
    assert_false(image_tag_is_valid("a;b"));
    assert_false(image_tag_is_valid("$(id)"));
    assert_false(image_tag_is_valid("a\nb"));
    char long_tag[300];
    memset(long_tag, 'a', sizeof long_tag - 1);
    long_tag[sizeof long_tag - 1] = '\0';
    assert_false(image_tag_is_valid(long_tag));
    long_tag[IMAGE_TAG_MAX] = '\0';
    assert_true(image_tag_is_valid(long_tag));
}

static void test_digest_known_vector(void **state)
{
    char hex[SHA256_HEX_LEN + 1];
    digest_sha256 *d = digest_begin();
    assert_non_null(d);
    /* "abc" in two pieces: streaming must equal one-shot. */
    assert_int_equal(digest_update(d, "a", 1), 0);
    assert_int_equal(digest_update(d, "bc", 2), 0);
    assert_int_equal(digest_end(d, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static char dir[64];

static int make_dir(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/convocate-unit-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int remove_dir(void **state)
{
    return tree_remove(dir);
}

typedef struct {
    size_t seen;
    bool flip;
} watch_state;

static void on_chunk(void *ctx, char *buf, size_t n)
{
    watch_state *w = ctx;
    w->seen += n;
    if (w->flip && n > 0) {
        buf[0] ^= 0x01;
        w->flip = false;
    }
}

static void test_local_upload(void **state)
{
    char src[128], dest[128], err[512], a[SHA256_HEX_LEN + 1], b[SHA256_HEX_LEN + 1];
    snprintf(src, sizeof src, "%s/src", dir);
    size_t len = 200000; /* several chunks */
    char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 7);
    assert_int_equal(atomic_write_file(src, data, len, 0644, KEEP_OWNER, 0), 0);
    runner *r = runner_local_new(dir, err, sizeof err);
    assert_non_null(r);

    watch_state ws = {0};
    upload_watch w = {.chunk = on_chunk, .ctx = &ws};
    assert_int_equal(r->ops->upload(r, src, "/usr/local/bin/convocate-agent", 0755, KEEP_OWNER, 0,
                                    &w, err, sizeof err),
                     0);
    assert_int_equal(ws.seen, len);
    snprintf(dest, sizeof dest, "%s/usr/local/bin/convocate-agent", dir);
    struct stat st;
    assert_int_equal(stat(dest, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_int_equal(digest_local_file(src, a, err, sizeof err), 0);
    assert_int_equal(digest_local_file(dest, b, err, sizeof err), 0);
    assert_string_equal(a, b);
    assert_int_equal(digest_target_file(r, "/usr/local/bin/convocate-agent", b, err, sizeof err),
                     0);
    assert_string_equal(a, b);

    /* A watch that changes a byte in flight changes what lands. */
    ws = (watch_state){.flip = true};
    assert_int_equal(r->ops->upload(r, src, "/usr/local/bin/convocate-agent", 0755, KEEP_OWNER, 0,
                                    &w, err, sizeof err),
                     0);
    assert_int_equal(digest_local_file(dest, b, err, sizeof err), 0);
    assert_string_not_equal(a, b);

    /* A missing source fails before anything is written. */
    assert_int_equal(r->ops->upload(r, "/nonexistent/convocate", "/x", 0644, KEEP_OWNER, 0, NULL,
                                    err, sizeof err),
                     -1);
    snprintf(dest, sizeof dest, "%s/x", dir);
    assert_int_equal(access(dest, F_OK), -1);
    runner_free(r);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_tags),
        cmocka_unit_test(test_digest_known_vector),
        cmocka_unit_test_setup_teardown(test_local_upload, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
