/* convocate-agent-rpc wire format (SPEC 7): one JSON line each way.
 *   request:  {"op":"<name>","params":<json or null>}
 *   response: {"ok":true,"result":<json>} | {"ok":false,"error":"<text>"} */
#ifndef CONVOCATE_PROTO_RPC_H
#define CONVOCATE_PROTO_RPC_H

#include <jansson.h>
#include <stddef.h>

#include "common/textbuf.h"

#define RPC_MAX_LINE (1024 * 1024) /* a request line is at most 1 MiB */
#define RPC_MAX_OP 32
#define RPC_ERR_LEN 512
/* The most an answer assembled as text (rpc_response_ok_open) may hold:
 * four times what the shell reads of one answer, so only a runaway fails. */
#define RPC_TEXT_RESULT_MAX (64 * 1024 * 1024)

typedef struct {
    char op[RPC_MAX_OP];
    json_t *params; /* owned; JSON null when absent */
} rpc_request;

/* Decodes one request line (without or with its trailing newline). On error
 * fills err with the text to send back and returns -1. */
int rpc_request_decode(const char *line, size_t len, rpc_request *req, char *err, size_t errlen);
void rpc_request_clear(rpc_request *req);

/* obj as one compact JSON line ending in '\n'; obj is stolen (NULL gives
 * NULL). malloc'd. Every line the project sends is made here. */
char *json_line(json_t *obj);

/* Encodes a request line ending in '\n'; params is borrowed. malloc'd. */
char *rpc_request_encode(const char *op, json_t *params);

/* Encode a response line ending in '\n'; result is stolen. malloc'd. */
char *rpc_response_ok(json_t *result);
char *rpc_response_error(const char *text);

/* A success response whose result the caller encodes itself, for an answer
 * joined from pieces already encoded (list, issue 13): open writes
 * {"ok":true,"result": into b, the caller appends exactly one compact JSON
 * value, close ends the object and the line and gives the line (malloc'd)
 * or NULL when b failed. Same bytes as rpc_response_ok for that value. */
void rpc_response_ok_open(textbuf *b);
char *rpc_response_ok_close(textbuf *b);

/* Strict accessors for params objects. Each returns 0 when the key is absent
 * (leaving *out untouched), 1 when present and well typed, -1 with err filled
 * ("decode params: ...") when present with the wrong type or size. */
int params_get_string(json_t *params, const char *key, size_t max_len, const char **out, char *err,
                      size_t errlen);
int params_get_int(json_t *params, const char *key, long long min, long long max, long long *out,
                   char *err, size_t errlen);
int params_get_bool(json_t *params, const char *key, int *out, char *err, size_t errlen);
/* Refuses keys other than the listed ones (NULL-terminated list). */
int params_only_keys(json_t *params, const char *const *allowed, char *err, size_t errlen);
/* params must be an object (or null when null_ok). */
int params_expect_object(json_t *params, int null_ok, char *err, size_t errlen);

#endif
