#include "proto/rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson's text without its "near '<input>'" part: a request may carry a
 * secret (auth-set), and an error must never hand it back or log it. The
 * column says where the problem is instead. */
static const char *decode_error_text(json_error_t *jerr)
{
    char *near = strstr(jerr->text, " near '");
    if (near != NULL)
        snprintf(near, sizeof jerr->text - (size_t)(near - jerr->text), " at column %d",
                 jerr->column);
    return jerr->text;
}

int rpc_request_decode(const char *line, size_t len, rpc_request *req, char *err, size_t errlen)
{
    memset(req, 0, sizeof *req);
    if (len > RPC_MAX_LINE) {
        snprintf(err, errlen, "request line too long (limit %d bytes)", RPC_MAX_LINE);
        return -1;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "decode request: %s", decode_error_text(&jerr));
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "decode request: not a JSON object");
        goto fail;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "op") != 0 && strcmp(key, "params") != 0) {
            snprintf(err, errlen, "decode request: unknown field \"%.64s\"", key);
            goto fail;
        }
    }
    json_t *op = json_object_get(root, "op");
    if (!json_is_string(op) || json_string_length(op) == 0) {
        snprintf(err, errlen, "decode request: \"op\" must be a non-empty string");
        goto fail;
    }
    if (json_string_length(op) >= RPC_MAX_OP) {
        snprintf(err, errlen, "unknown op \"%.64s\"", json_string_value(op));
        goto fail;
    }
    memcpy(req->op, json_string_value(op), json_string_length(op) + 1);
    json_t *params = json_object_get(root, "params");
    req->params = params ? json_incref(params) : json_null();
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    return -1;
}

void rpc_request_clear(rpc_request *req)
{
    json_decref(req->params);
    req->params = NULL;
}

char *json_line(json_t *obj)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(obj);
    if (body == NULL)
        return NULL;
    size_t n = strlen(body);
    char *line = malloc(n + 2);
    if (line) {
        memcpy(line, body, n);
        line[n] = '\n';
        line[n + 1] = '\0';
    }
    free(body);
    return line;
}

char *rpc_request_encode(const char *op, json_t *params)
{
    return json_line(json_pack("{s:s, s:O}", "op", op, "params", params ? params : json_null()));
}

char *rpc_response_ok(json_t *result)
{
    return json_line(json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_null()));
}

/* What json_line makes of {"ok":true,"result":…} around the result. */
#define RESPONSE_OK_OPEN "{\"ok\":true,\"result\":"
#define RESPONSE_OK_CLOSE "}\n"

void rpc_response_ok_open(textbuf *b)
{
    textbuf_append_str(b, RESPONSE_OK_OPEN);
}

char *rpc_response_ok_close(textbuf *b)
{
    textbuf_append_str(b, RESPONSE_OK_CLOSE);
    return textbuf_take(b, NULL);
}

char *rpc_response_error(const char *text)
{
    return json_line(json_pack("{s:b, s:s}", "ok", 0, "error", text));
}

int params_expect_object(json_t *params, int null_ok, char *err, size_t errlen)
{
    if (json_is_object(params) || (null_ok && (params == NULL || json_is_null(params))))
        return 0;
    snprintf(err, errlen, "decode params: expected a JSON object");
    return -1;
}

int params_only_keys(json_t *params, const char *const *allowed, char *err, size_t errlen)
{
    const char *key;
    json_t *value;
    json_object_foreach(params, key, value)
    {
        int known = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                known = 1;
        if (!known) {
            snprintf(err, errlen, "decode params: unknown field \"%.64s\"", key);
            return -1;
        }
    }
    return 0;
}

int params_get_string(json_t *params, const char *key, size_t max_len, const char **out, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(params, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "decode params: \"%s\" must be a string", key);
        return -1;
    }
    if (json_string_length(v) > max_len || strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, errlen, "decode params: \"%s\" is too long or holds a NUL", key);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

int params_get_int(json_t *params, const char *key, long long min, long long max, long long *out,
                   char *err, size_t errlen)
{
    json_t *v = json_object_get(params, key);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v)) {
        snprintf(err, errlen, "decode params: \"%s\" must be an integer", key);
        return -1;
    }
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        snprintf(err, errlen, "decode params: \"%s\" must be between %lld and %lld", key, min, max);
        return -1;
    }
    *out = n;
    return 1;
}

int params_get_bool(json_t *params, const char *key, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(params, key);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "decode params: \"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}
