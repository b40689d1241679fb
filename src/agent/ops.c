/* STUB: replaced by the agent ops implementation. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "proto/rpc.h"

struct agent {
    agent_config cfg;
};

agent *agent_new(const agent_config *cfg, char *err, size_t errlen)
{
    agent *a = calloc(1, sizeof *a);
    if (a)
        a->cfg = *cfg;
    else
        snprintf(err, errlen, "out of memory");
    return a;
}
void agent_free(agent *a) { free(a); }
void agent_announce_start(agent *a) { (void)a; }
void agent_announce_shutdown(agent *a, const char *reason) { (void)a; (void)reason; }
const char *agent_id(const agent *a) { (void)a; return "stub0000"; }
const agent_config *agent_cfg(const agent *a) { return &a->cfg; }
char *agent_rpc_handle(agent *a, const char *line, size_t len)
{
    (void)a;
    rpc_request req;
    char err[RPC_ERR_LEN];
    if (rpc_request_decode(line, len, &req, err, sizeof err) < 0)
        return rpc_response_error(err);
    char *resp;
    if (strcmp(req.op, "ping") == 0)
        resp = rpc_response_ok(json_pack("{s:s}", "agent_id", "stub0000"));
    else {
        snprintf(err, sizeof err, "unknown op \"%s\"", req.op);
        resp = rpc_response_error(err);
    }
    rpc_request_clear(&req);
    return resp;
}
int agent_attach_prepare(agent *a, const char *uuid, char *err, size_t errlen)
{
    (void)a; (void)uuid;
    snprintf(err, errlen, "attach not implemented");
    return -1;
}
void agent_attach_enter(agent *a, const char *uuid) { (void)a; (void)uuid; }
void agent_attach_leave(agent *a, const char *uuid) { (void)a; (void)uuid; }
