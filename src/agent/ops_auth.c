/* The Claude credential ops of SPEC 7 (auth-set, auth-get) and the check of
 * claude.env before every container start (SPEC 15).
 *
 * The secret arrives in auth-set's params, goes to claude.env (root 0600)
 * and nowhere else: answers carry its kind and a hint of its last
 * characters, errors name the field but never echo a value, the log says
 * what kind was stored, and no event is published. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/claude_env.h"
#include "agent/ops.h"
#include "common/log.h"
#include "proto/rpc.h"

#define HINT_LEN 16

/* Writers take turns, so each auth-set's answer describes the file it left. */
static pthread_mutex_t auth_mu = PTHREAD_MUTEX_INITIALIZER;

static int claude_env_path(agent *a, char *out, size_t size, char *err, size_t errlen)
{
    if (snprintf(out, size, "%s/claude.env", a->etc_dir) >= (int)size) {
        snprintf(err, errlen, "claude.env: --root path is too long");
        return -1;
    }
    return 0;
}

static const char *value_or_empty(const claude_env *env, claude_env_key k)
{
    return env->has[k] ? env->value[k] : "";
}

/* auth-get's result: what is set, never the secret itself. */
static json_t *auth_summary(const claude_env *env, char *err, size_t errlen)
{
    const char *kind = "none";
    char hint[HINT_LEN] = "";
    if (env->has[CLAUDE_API_KEY]) {
        kind = "api-key";
        claude_env_hint(env->value[CLAUDE_API_KEY], hint, sizeof hint);
    } else if (env->has[CLAUDE_OAUTH_TOKEN]) {
        kind = "oauth-token";
        claude_env_hint(env->value[CLAUDE_OAUTH_TOKEN], hint, sizeof hint);
    }
    json_t *obj =
        json_pack("{s:s, s:s, s:s, s:s}", "kind", kind, "hint", hint, "base_url",
                  value_or_empty(env, CLAUDE_BASE_URL), "model", value_or_empty(env, CLAUDE_MODEL));
    if (obj == NULL)
        snprintf(err, errlen, "auth: out of memory");
    return obj;
}

/* {"clear":true} alone, or no "clear" at all. */
static int parse_clear(json_t *params, bool *clear, char *err, size_t errlen)
{
    json_t *v = json_object_get(params, "clear");
    *clear = false;
    if (v == NULL)
        return 0;
    if (!json_is_true(v)) {
        snprintf(err, errlen, "decode params: \"clear\" must be true (or left out)");
        return -1;
    }
    if (json_object_size(params) != 1) {
        snprintf(err, errlen, "decode params: \"clear\" takes no other field");
        return -1;
    }
    *clear = true;
    return 0;
}

/* Exactly one of api_key and oauth_token; its value is never echoed. */
static int parse_secret(json_t *params, claude_env *env, char *err, size_t errlen)
{
    const char *key = NULL, *token = NULL;
    if (params_get_string(params, "api_key", CLAUDE_VALUE_MAX, &key, err, errlen) < 0 ||
        params_get_string(params, "oauth_token", CLAUDE_VALUE_MAX, &token, err, errlen) < 0)
        return -1;
    if ((key == NULL) == (token == NULL)) {
        snprintf(err, errlen,
                 "decode params: give exactly one of \"api_key\" and \"oauth_token\" "
                 "(or {\"clear\":true})");
        return -1;
    }
    claude_env_key k = key ? CLAUDE_API_KEY : CLAUDE_OAUTH_TOKEN;
    if (claude_env_set(env, k, key ? key : token) < 0) {
        snprintf(err, errlen,
                 "decode params: \"%s\" must be 1 to %d printable ASCII characters without "
                 "spaces",
                 key ? "api_key" : "oauth_token", CLAUDE_VALUE_MAX);
        return -1;
    }
    return 0;
}

/* base_url and model; "" or absent = not set. */
static int parse_options(json_t *params, claude_env *env, char *err, size_t errlen)
{
    const char *url = NULL, *model = NULL;
    if (params_get_string(params, "base_url", CLAUDE_BASE_URL_MAX, &url, err, errlen) < 0 ||
        params_get_string(params, "model", CLAUDE_MODEL_MAX, &model, err, errlen) < 0)
        return -1;
    if (url && url[0] && !claude_base_url_is_valid(url)) {
        snprintf(err, errlen,
                 "invalid base_url: want http:// or https:// and a host, at most %d "
                 "characters, no spaces",
                 CLAUDE_BASE_URL_MAX);
        return -1;
    }
    if (model && model[0] && !claude_model_is_valid(model)) {
        snprintf(err, errlen, "invalid model: use 1 to %d of A-Z a-z 0-9 . _ -", CLAUDE_MODEL_MAX);
        return -1;
    }
    if (url && url[0])
        claude_env_set(env, CLAUDE_BASE_URL, url);
    if (model && model[0])
        claude_env_set(env, CLAUDE_MODEL, model);
    return 0;
}

static int parse_auth_set(json_t *params, claude_env *env, bool *clear, char *err, size_t errlen)
{
    static const char *const keys[] = {"api_key", "oauth_token", "base_url",
                                       "model",   "clear",       NULL};
    if (params_expect_object(params, 0, err, errlen) < 0 ||
        params_only_keys(params, keys, err, errlen) < 0 ||
        parse_clear(params, clear, err, errlen) < 0)
        return -1;
    if (*clear)
        return 0;
    return parse_secret(params, env, err, errlen) < 0 ? -1
                                                      : parse_options(params, env, err, errlen);
}

int op_auth_set(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    char path[PATH_BUF];
    bool clear = false;
    claude_env *env = calloc(1, sizeof *env); /* 16 KiB: not on a worker's stack */
    if (env == NULL) {
        snprintf(err, errlen, "auth-set: out of memory");
        return -1;
    }
    int rc = parse_auth_set(params, env, &clear, err, errlen);
    if (rc == 0)
        rc = claude_env_path(a, path, sizeof path, err, errlen);
    if (rc == 0) {
        pthread_mutex_lock(&auth_mu);
        rc = clear ? claude_env_remove(path, err, errlen) : claude_env_save(path, env, err, errlen);
        pthread_mutex_unlock(&auth_mu);
    }
    if (rc == 0) {
        *result = auth_summary(env, err, errlen);
        rc = *result ? 0 : -1;
    }
    if (rc == 0 && clear)
        log_info("claude credentials cleared");
    else if (rc == 0)
        log_info("claude credentials set: %s %s",
                 json_string_value(json_object_get(*result, "kind")),
                 json_string_value(json_object_get(*result, "hint")));
    claude_env_wipe(env);
    free(env);
    return rc;
}

/* Nothing to do for the operator but fix or replace the file. */
static void explain_bad_file(const char *why, const char *path, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s (fix %s, or replace it with 'convocate auth set')", why, path);
}

int op_auth_get(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const none[] = {NULL};
    char path[PATH_BUF], why[RPC_ERR_LEN];
    if (params_expect_object(params, 1, err, errlen) < 0 ||
        (json_is_object(params) && params_only_keys(params, none, err, errlen) < 0) ||
        claude_env_path(a, path, sizeof path, err, errlen) < 0)
        return -1;
    claude_env *env = calloc(1, sizeof *env);
    if (env == NULL) {
        snprintf(err, errlen, "auth-get: out of memory");
        return -1;
    }
    pthread_mutex_lock(&auth_mu);
    int rc = claude_env_load(path, env, why, sizeof why);
    pthread_mutex_unlock(&auth_mu);
    if (rc < 0)
        explain_bad_file(why, path, err, errlen);
    else
        *result = auth_summary(env, err, errlen);
    rc = rc < 0 || *result == NULL ? -1 : 0;
    claude_env_wipe(env);
    free(env);
    return rc;
}

int agent_claude_env_mount(agent *a, char *path, size_t size, char *err, size_t errlen)
{
    char why[RPC_ERR_LEN];
    if (claude_env_path(a, path, size, err, errlen) < 0)
        return -1;
    claude_env *env = calloc(1, sizeof *env);
    if (env == NULL) {
        snprintf(err, errlen, "claude.env: out of memory");
        return -1;
    }
    pthread_mutex_lock(&auth_mu);
    int rc = claude_env_load(path, env, why, sizeof why);
    pthread_mutex_unlock(&auth_mu);
    claude_env_wipe(env);
    free(env);
    if (rc < 0) {
        explain_bad_file(why, path, err, errlen);
        return -1;
    }
    if (rc == 0)
        path[0] = '\0'; /* none: nothing to mount */
    return 0;
}
