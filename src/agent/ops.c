/* The op dispatcher and the read-only ops (ping, list, get, settings-get,
 * settings-set). The session lifecycle ops live in ops_lifecycle.c, the
 * agent object in agent.c. */
#include "agent/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/engine_watch.h"
#include "agent/lock.h"
#include "agent/test_hooks.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "proto/rpc.h"
#include "version.h"

#define ID_SHOWN_MAX 64

/* ---- small shared helpers ---- */

int params_get_id(json_t *params, const char *key, const char **out, char *err, size_t errlen)
{
    /* Any length is read so that a long id is refused as an invalid id. */
    int rc = params_get_string(params, key, RPC_MAX_LINE, out, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        snprintf(err, errlen, "decode params: \"%s\" is required", key);
        return -1;
    }
    if (!uuid_v4_is_valid(*out)) {
        bool long_id = strlen(*out) > ID_SHOWN_MAX;
        snprintf(err, errlen, "invalid id \"%.*s%s\"", ID_SHOWN_MAX, *out, long_id ? "..." : "");
        return -1;
    }
    return 0;
}

/* Ops that take no params accept null or an empty object. */
static int expect_no_params(json_t *params, char *err, size_t errlen)
{
    static const char *const none[] = {NULL};
    if (params_expect_object(params, 1, err, errlen) < 0)
        return -1;
    return json_is_object(params) ? params_only_keys(params, none, err, errlen) : 0;
}

static bool session_is_locked(agent *a, const char *uuid)
{
    char path[PATH_BUF];
    return store_lock_path(a->store, uuid, path, sizeof path) == 0 && lock_is_held(path);
}

static const char *state_char(bool valid, bool running, int attached, bool locked)
{
    if (!valid)
        return "!"; /* SPEC 6.2: its metadata does not parse or validate */
    if (running)
        return attached > 0 ? "C" : "R";
    return locked ? "L" : "-";
}

json_t *session_object(agent *a, const store_entry *e, bool running, bool held_by_caller)
{
    json_t *obj = e->valid ? session_to_json(&e->meta)
                           : json_pack("{s:s, s:s}", "uuid", e->uuid, "error", e->error);
    if (obj == NULL)
        return NULL;
    int attached = running ? agent_attached_count(a, e->uuid) : 0;
    bool locked = !held_by_caller && session_is_locked(a, e->uuid);
    /* The effective value: the session's own, else the agent's default. */
    bool autonomous =
        e->valid && session_autonomous(&e->meta, agent_settings_now(a).default_autonomous);
    if ((e->valid && json_object_set_new(obj, "autonomous", json_boolean(autonomous)) < 0) ||
        json_object_set_new(obj, "running", json_boolean(running)) < 0 ||
        json_object_set_new(obj, "attached", json_integer(attached)) < 0 ||
        json_object_set_new(obj, "locked", json_boolean(locked)) < 0 ||
        json_object_set_new(obj, "state",
                            json_string(state_char(e->valid, running, attached, locked))) < 0 ||
        json_object_set_new(obj, "activity",
                            running ? activity_json(a->activity, e->uuid) : json_null()) < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* ---- read-only ops ---- */

/* Which of this agent's sessions run now: from the engine watch's table
 * while its stream is up (no engine round trip), else one engine query. An
 * engine error counts as "nothing runs", with a log line (SPEC 7). */
static int running_sessions(agent *a, docker_session_info **out, size_t *n)
{
    char err[256];
    if (engine_watch_running_sessions(a->watch, out, n) == 0)
        return 0;
    *out = NULL;
    *n = 0;
    if (docker_list_sessions(a->docker, a->agent_id, out, n, err, sizeof err) < 0) {
        log_warn("container engine: %s; sessions shown as not running", err);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

static bool is_running(const docker_session_info *info, size_t n, const char *uuid)
{
    for (size_t i = 0; i < n; i++)
        if (info[i].running && strcmp(info[i].uuid, uuid) == 0)
            return true;
    return false;
}

/* From the engine watch's table when its stream is up: ping and admission
 * then cost no engine round trip. Else one engine query. */
int agent_count_running(agent *a)
{
    int watched = engine_watch_running_count(a->watch);
    if (watched >= 0)
        return watched;
    docker_session_info *info;
    size_t n, running = 0;
    running_sessions(a, &info, &n);
    for (size_t i = 0; i < n; i++)
        running += info[i].running;
    free(info);
    return (int)running;
}

/* ping's answer, given the running session count. */
static json_t *ping_result(agent *a, int running)
{
    char image[256], now[RFC3339_LEN];
    capacity_snapshot snap = {0};
    char why[256];
    agent_image_tag(a, image, sizeof image);
    rfc3339_format(time(NULL), now);
    if (capacity_measure(&a->meter, &snap, why, sizeof why) < 0)
        log_warn("%s", why);
    agent_settings s = agent_settings_now(a);
    json_t *result =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:f, s:f, s:i, s:i}}", "agent_id", a->agent_id,
                  "version", CONVOCATE_VERSION, "server_time", now, "image_tag", image, "capacity",
                  "cpu_pct", snap.cpu_pct, "mem_pct", snap.mem_pct, "threshold_pct",
                  s.admission_threshold_pct, "sessions", running);
    if (result == NULL)
        return NULL;
    /* Spool lines dropped and files refused (SPEC 16): a hostile or broken
     * session shows here without flooding the log. */
    json_object_set_new(result, "activity_dropped",
                        json_integer((json_int_t)activity_dropped(a->activity)));
    /* Directory scans of the session store since start: list and get
     * answer from memory, so this moves only at start (issue 13). */
    json_object_set_new(result, "store_scans", json_integer((json_int_t)store_scans(a->store)));
    return result;
}

static int op_ping(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    if (expect_no_params(params, err, errlen) < 0)
        return -1;
    *result = ping_result(a, agent_count_running(a));
    return *result ? 0 : (snprintf(err, errlen, "ping: out of memory"), -1);
}

static int op_list(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    if (expect_no_params(params, err, errlen) < 0)
        return -1;
    docker_session_info *info;
    size_t n_info, n;
    store_entry *entries;
    running_sessions(a, &info, &n_info);
    if (store_list(a->store, &entries, &n, err, errlen) < 0) {
        free(info);
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *obj =
            session_object(a, &entries[i], is_running(info, n_info, entries[i].uuid), false);
        if (obj == NULL || json_array_append_new(arr, obj) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    store_entries_free(entries, n);
    free(info);
    *result = arr;
    return arr ? 0 : (snprintf(err, errlen, "list: out of memory"), -1);
}

bool agent_session_running(agent *a, const char *uuid)
{
    bool running = false;
    char err[256];
    if (docker_session_running(a->docker, uuid, &running, err, sizeof err) < 0) {
        log_warn("container engine: %s; session %s shown as not running", err, uuid);
        return false;
    }
    return running;
}

static int op_get(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", NULL};
    const char *id;
    store_entry e;
    if (params_expect_object(params, 0, err, errlen) < 0 ||
        params_only_keys(params, keys, err, errlen) < 0 ||
        params_get_id(params, "id", &id, err, errlen) < 0 ||
        store_get(a->store, id, &e, err, errlen) < 0)
        return -1;
    *result = session_object(a, &e, agent_session_running(a, id), false);
    store_entry_clear(&e);
    return *result ? 0 : (snprintf(err, errlen, "get: out of memory"), -1);
}

/* Takes in a home without metadata, e.g. one migrate-session untarred
 * (SPEC 6.5): its session.json becomes the session's metadata. */
static int op_adopt(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", NULL};
    const char *id;
    store_entry e = {.valid = true};
    if (params_expect_object(params, 0, err, errlen) < 0 ||
        params_only_keys(params, keys, err, errlen) < 0 ||
        params_get_id(params, "id", &id, err, errlen) < 0 ||
        store_adopt(a->store, id, &e.meta, err, errlen) < 0)
        return -1;
    memcpy(e.uuid, id, UUID_STR_LEN);
    *result = session_object(a, &e, agent_session_running(a, id), false);
    if (*result != NULL)
        emitter_publish(a->events, "container.created", id, json_incref(*result));
    store_entry_clear(&e);
    return *result ? 0 : (snprintf(err, errlen, "adopt: out of memory"), -1);
}

static int op_settings_get(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    if (expect_no_params(params, err, errlen) < 0)
        return -1;
    agent_settings s = agent_settings_now(a);
    *result = settings_to_json(&s);
    return *result ? 0 : (snprintf(err, errlen, "settings: out of memory"), -1);
}

static int op_settings_set(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    if (params_expect_object(params, 0, err, errlen) < 0)
        return -1;
    pthread_mutex_lock(&a->settings_mu);
    agent_settings next = a->settings;
    int rc = settings_apply(&next, params, err, errlen);
    if (rc == 0)
        rc = settings_save(a->settings_path, &next, err, errlen);
    if (rc == 0) {
        a->settings = next;
        /* Published under settings_mu so agent.settings events keep the order
         * in which the settings were written. */
        emitter_publish(a->events, "agent.settings", NULL, settings_to_json(&next));
    }
    pthread_mutex_unlock(&a->settings_mu);
    if (rc < 0)
        return -1;
    emitter_set_heartbeat(a->events, next.heartbeat_s);
    *result = settings_to_json(&next);
    return *result ? 0 : (snprintf(err, errlen, "settings: out of memory"), -1);
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    op_handler fn;
} op_table[] = {
    {"ping", op_ping},
    {"list", op_list},
    {"get", op_get},
    {"adopt", op_adopt},
    {"create", op_create},
    {"edit", op_edit},
    {"clone", op_clone},
    {"delete", op_delete},
    {"kill", op_kill},
    {"background", op_background},
    {"restart", op_restart},
    {"override", op_override},
    {"settings-get", op_settings_get},
    {"settings-set", op_settings_set},
    {"test-emit", op_test_emit}, /* answers as unknown without --test-hooks */
    {"auth-set", op_auth_set},
    {"auth-get", op_auth_get},
    {"peek", op_peek},
    {"send", op_send},
};

op_handler ops_find(const char *name)
{
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
        if (strcmp(op_table[i].name, name) == 0)
            return op_table[i].fn;
    return NULL;
}

static char *response_or_oom(char *line)
{
    /* The contract says never NULL: a constant answer when even that failed. */
    return line ? line : strdup("{\"ok\":false,\"error\":\"out of memory\"}\n");
}

#define QUICK_LINE_MAX 256 /* a ping line is about 30 bytes */

char *agent_rpc_quick(agent *a, const char *line, size_t len)
{
    /* Decoding runs on the connection's thread: only a line that can be a
     * ping is decoded here, so a large request never is twice. */
    if (len > QUICK_LINE_MAX || memmem(line, len, "\"ping\"", 6) == NULL)
        return NULL;
    rpc_request req;
    char err[RPC_ERR_LEN];
    if (rpc_request_decode(line, len, &req, err, sizeof err) < 0)
        return NULL;
    char *resp = NULL;
    int running = engine_watch_running_count(a->watch);
    if (strcmp(req.op, "ping") == 0 && expect_no_params(req.params, err, sizeof err) == 0 &&
        running >= 0 && capacity_meter_has_sample(&a->meter)) {
        json_t *result = ping_result(a, running);
        resp = result ? rpc_response_ok(result) : NULL;
    }
    rpc_request_clear(&req);
    return resp;
}

char *agent_rpc_handle(agent *a, const char *line, size_t len)
{
    rpc_request req;
    char err[RPC_ERR_LEN];
    if (rpc_request_decode(line, len, &req, err, sizeof err) < 0)
        return response_or_oom(rpc_response_error(err));
    op_handler fn = ops_find(req.op);
    json_t *result = NULL;
    char *resp;
    if (fn == NULL) {
        snprintf(err, sizeof err, "unknown op \"%s\"", req.op);
        resp = rpc_response_error(err);
    } else if (fn(a, req.params, &result, err, sizeof err) < 0) {
        log_debug("op %s failed: %s", req.op, err);
        resp = rpc_response_error(err);
    } else {
        resp = rpc_response_ok(result);
    }
    rpc_request_clear(&req);
    return response_or_oom(resp);
}
