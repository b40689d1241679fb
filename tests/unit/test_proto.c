/* Unit tests for src/proto: the RPC and attach header codecs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/attach_header.h"
#include "proto/rpc.h"

static void test_request_decode_ok(void **state)
{
    rpc_request req;
    char err[RPC_ERR_LEN];
    const char *line = "{\"op\":\"get\",\"params\":{\"id\":\"x\"}}\n";
    assert_int_equal(rpc_request_decode(line, strlen(line), &req, err, sizeof err), 0);
    assert_string_equal(req.op, "get");
    assert_true(json_is_object(req.params));
    rpc_request_clear(&req);
    line = "{\"op\":\"ping\"}";
    assert_int_equal(rpc_request_decode(line, strlen(line), &req, err, sizeof err), 0);
    assert_true(json_is_null(req.params));
    rpc_request_clear(&req);
}

static void test_request_decode_rejects(void **state)
{
    rpc_request req;
    char err[RPC_ERR_LEN];
    const char *bad[] = {"",
                         "[]",
                         "{\"op\":1}",
                         "{\"op\":\"\"}",
                         "{\"op\":\"x\",\"extra\":1}",
                         "{\"op\":\"a\",\"op\":\"b\"}",
                         "{\"op\":\"ping\"} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_int_equal(rpc_request_decode(bad[i], strlen(bad[i]), &req, err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
    char *huge = malloc(RPC_MAX_LINE + 2);
    memset(huge, ' ', RPC_MAX_LINE + 1);
    huge[RPC_MAX_LINE + 1] = '\0';
    assert_int_equal(rpc_request_decode(huge, RPC_MAX_LINE + 1, &req, err, sizeof err), -1);
    assert_non_null(strstr(err, "too long"));
    free(huge);
}

static void test_response_encode(void **state)
{
    char *ok = rpc_response_ok(json_pack("{s:i}", "n", 1));
    assert_string_equal(ok, "{\"ok\":true,\"result\":{\"n\":1}}\n");
    free(ok);
    char *bad = rpc_response_error("session \"x\" not found");
    assert_string_equal(bad, "{\"ok\":false,\"error\":\"session \\\"x\\\" not found\"}\n");
    free(bad);
    char *null_result = rpc_response_ok(NULL);
    assert_string_equal(null_result, "{\"ok\":true,\"result\":null}\n");
    free(null_result);
}

static void test_params_accessors(void **state)
{
    char err[RPC_ERR_LEN];
    json_t *p =
        json_pack("{s:s, s:i, s:b, s:i}", "name", "web", "port", 8080, "flag", 1, "big", 99999);
    const char *name = NULL;
    long long port = 0;
    int flag = 0;
    assert_int_equal(params_get_string(p, "name", 64, &name, err, sizeof err), 1);
    assert_string_equal(name, "web");
    assert_int_equal(params_get_string(p, "missing", 64, &name, err, sizeof err), 0);
    assert_int_equal(params_get_string(p, "port", 64, &name, err, sizeof err), -1);
    assert_non_null(strstr(err, "decode params"));
    assert_int_equal(params_get_int(p, "port", -1, 65535, &port, err, sizeof err), 1);
    assert_int_equal(port, 8080);
    assert_int_equal(params_get_int(p, "big", -1, 65535, &port, err, sizeof err), -1);
    assert_int_equal(params_get_bool(p, "flag", &flag, err, sizeof err), 1);
    assert_int_equal(flag, 1);
    const char *allowed[] = {"name", "port", NULL};
    assert_int_equal(params_only_keys(p, allowed, err, sizeof err), -1);
    json_decref(p);
}

static void test_attach_header(void **state)
{
    attach_header h;
    char err[256];
    const char *line = "{\"id\":\"6ba7b810-9dad-41d1-80b4-00c04fd430c8\",\"cols\":120,"
                       "\"rows\":40,\"future\":true}";
    assert_int_equal(attach_header_decode(line, strlen(line), &h, err, sizeof err), 0);
    assert_string_equal(h.id, "6ba7b810-9dad-41d1-80b4-00c04fd430c8");
    assert_int_equal(h.cols, 120);
    assert_int_equal(h.rows, 40);
    line = "{\"id\":\"6ba7b810-9dad-41d1-80b4-00c04fd430c8\"}";
    assert_int_equal(attach_header_decode(line, strlen(line), &h, err, sizeof err), 0);
    assert_int_equal(h.cols, 80);
    assert_int_equal(h.rows, 24);
    line = "{\"id\":\"../etc\"}";
    assert_int_equal(attach_header_decode(line, strlen(line), &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid id"));
    line = "{\"id\":\"6ba7b810-9dad-41d1-80b4-00c04fd430c8\",\"cols\":\"wide\"}";
    assert_int_equal(attach_header_decode(line, strlen(line), &h, err, sizeof err), -1);
}

/* An answer built as text (list's) is framed byte for byte as
 * rpc_response_ok frames the same value; a buffer that hit its limit or
 * could not grow gives no line at all, never a cut one. */
static void test_response_from_text(void **state)
{
    (void)state;
    const char *value = "[{\"uuid\":\"x\",\"n\":1,\"ok\":true},{\"s\":\"caf\xc3\xa9\"}]";
    char *want = rpc_response_ok(json_loads(value, 0, NULL));
    textbuf b;
    textbuf_init(&b, 1024, 0);
    rpc_response_ok_open(&b);
    textbuf_append_str(&b, "[{\"uuid\":\"x\",");
    textbuf_appendf(&b, "\"n\":%d,\"ok\":%s}", 1, "true");
    textbuf_append_str(&b, ",{\"s\":\"caf\xc3\xa9\"}]");
    char *got = rpc_response_ok_close(&b);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
    free(want);

    textbuf_init(&b, 8, 0);
    textbuf_append_str(&b, "12345678");
    assert_false(b.failed);
    textbuf_append_str(&b, "9");
    assert_true(b.failed && b.over_limit);
    textbuf_append_str(&b, ""); /* stays failed */
    assert_null(textbuf_take(&b, NULL));
    textbuf_init(&b, 1024, 16);
    char piece[300];
    memset(piece, 'a', sizeof piece - 1);
    piece[sizeof piece - 1] = '\0';
    textbuf_appendf(&b, "%s", piece); /* longer than a formatted piece may be */
    assert_true(b.failed && !b.over_limit);
    textbuf_free(&b);
    textbuf_init(&b, 1024, 0);
    textbuf_reserve(&b, 4096); /* capped at the limit, not failed */
    textbuf_append(&b, "ab", 2);
    size_t len = 0;
    char *text = textbuf_take(&b, &len);
    assert_int_equal(len, 2);
    assert_string_equal(text, "ab");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_decode_ok), cmocka_unit_test(test_request_decode_rejects),
        cmocka_unit_test(test_response_encode),   cmocka_unit_test(test_params_accessors),
        cmocka_unit_test(test_attach_header),     cmocka_unit_test(test_response_from_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
