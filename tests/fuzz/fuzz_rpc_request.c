/* The convocate-agent-rpc request line (proto/rpc.c), the first thing the
 * agent decodes from any shell key, and the params accessors every op
 * uses. A decoded request must encode and decode back to itself. */
#include <string.h>

#include "fuzz.h"
#include "proto/rpc.h"

static void poke_params(json_t *params)
{
    static const char *const allowed[] = {"id", "name", "port", "force", NULL};
    char err[RPC_ERR_LEN];
    const char *s = NULL;
    long long n = 0;
    int b = 0;
    if (params_expect_object(params, 1, err, sizeof err) < 0)
        return;
    params_only_keys(params, allowed, err, sizeof err);
    if (params_get_string(params, "name", 64, &s, err, sizeof err) == 1)
        FUZZ_CHECK(s != NULL && strlen(s) <= 64);
    if (params_get_int(params, "port", -1, 65535, &n, err, sizeof err) == 1)
        FUZZ_CHECK(n >= -1 && n <= 65535);
    params_get_bool(params, "force", &b, err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_request req, again;
    char err[RPC_ERR_LEN] = "";
    if (rpc_request_decode((const char *)data, size, &req, err, sizeof err) < 0) {
        FUZZ_CHECK(err[0] != '\0'); /* a refusal always says why */
        return 0;
    }
    FUZZ_CHECK(req.op[0] != '\0' && strlen(req.op) < RPC_MAX_OP && req.params != NULL);
    poke_params(req.params);
    char *line = rpc_request_encode(req.op, req.params);
    FUZZ_CHECK(line != NULL);
    FUZZ_CHECK(rpc_request_decode(line, strlen(line), &again, err, sizeof err) == 0);
    FUZZ_CHECK(strcmp(again.op, req.op) == 0 && json_equal(again.params, req.params));
    rpc_request_clear(&again);
    free(line);
    rpc_request_clear(&req);
    return 0;
}
