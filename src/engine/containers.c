/* Session containers once they exist: whether one runs, stopping one (and
 * waiting until AutoRemove took it), and the list of an agent's sessions. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "engine/docker_internal.h"

#define GONE_WAIT_S 30 /* after a stop: time for AutoRemove to finish */

/* ---- inspection, stop -------------------------------------------------- */

/* GET /containers/<name>/json: *exists and *running from State. */
int inspect_state(docker_client *d, const char *name, bool *exists, bool *running, char *err,
                  size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/containers/%s/json", name);
    docker_reply r;
    if (docker_call(d, "GET", path, NULL, QUICK_TIMEOUT_S, &r, err, errlen) < 0)
        return -1;
    int rc = 0;
    *exists = false;
    *running = false;
    if (r.status == 200) {
        json_t *root = json_loadb(r.body, r.len, 0, NULL);
        json_t *state = json_object_get(root, "State");
        *exists = true;
        *running = json_is_true(json_object_get(state, "Running"));
        if (root == NULL) {
            snprintf(err, errlen, "docker engine sent an unreadable inspect reply");
            rc = -1;
        }
        json_decref(root);
    } else if (r.status != 404) {
        describe_engine_error(&r, "inspect container", err, errlen);
        rc = -1;
    }
    reply_clear(&r);
    return rc;
}

int session_container(const char *uuid, char name[ENGINE_CONTAINER_NAME_LEN], char *err,
                      size_t errlen)
{
    if (!uuid_v4_is_valid(uuid)) {
        snprintf(err, errlen, "invalid id \"%s\"", uuid);
        return -1;
    }
    engine_container_name(uuid, name);
    return 0;
}

int docker_session_running(docker_client *d, const char *uuid, bool *running, char *err,
                           size_t errlen)
{
    char name[ENGINE_CONTAINER_NAME_LEN];
    *running = false;
    if (session_container(uuid, name, err, errlen) < 0)
        return -1;
    bool exists;
    return inspect_state(d, name, &exists, running, err, errlen);
}

/* After a stop, AutoRemove deletes the container asynchronously; wait for it
 * so a restart right after a kill does not collide with the old name. A
 * stopped container that lingers (not ours to auto-remove) is removed. */
static int wait_until_gone(docker_client *d, const char *name, char *err, size_t errlen)
{
    int64_t deadline = monotonic_ms() + GONE_WAIT_S * 1000;
    int stopped_polls = 0;
    while (monotonic_ms() < deadline) {
        bool exists, running;
        if (inspect_state(d, name, &exists, &running, err, errlen) < 0)
            return -1;
        if (!exists)
            return 0;
        if (!running && ++stopped_polls == 20 && remove_container(d, name, err, errlen) < 0)
            return -1;
        sleep_ms(100);
    }
    snprintf(err, errlen, "container %s still present %d s after stopping", name, GONE_WAIT_S);
    return -1;
}

int docker_stop_session(docker_client *d, const char *uuid, int grace_s, char *err, size_t errlen)
{
    static const long ok[] = {204, 304, 404, 0};
    char name[ENGINE_CONTAINER_NAME_LEN], path[256];
    if (session_container(uuid, name, err, errlen) < 0)
        return -1;
    if (grace_s < 0)
        grace_s = 0;
    snprintf(path, sizeof path, "/containers/%s/stop?t=%d", name, grace_s);
    /* The engine answers only after the grace period and the SIGKILL. */
    long status;
    if (docker_expect(d, "POST", path, NULL, grace_s + QUICK_TIMEOUT_S, ok, &status,
                      "stop container", err, errlen) < 0)
        return -1;
    if (status == 404)
        return 0; /* no such container: nothing to stop */
    if (wait_until_gone(d, name, err, errlen) < 0)
        return -1;
    log_info("stopped %s", name);
    return 0;
}

/* ---- list -------------------------------------------------------------- */

static char *label_filter_query(const char *agent_id)
{
    char label[128];
    if (snprintf(label, sizeof label, "convocate.agent=%s", agent_id) >= (int)sizeof label)
        return NULL;
    json_t *filter = json_pack("{s:[s]}", "label", label);
    char *filter_json = filter ? json_dumps(filter, JSON_COMPACT) : NULL;
    char *escaped = filter_json ? curl_easy_escape(NULL, filter_json, 0) : NULL;
    char *query = NULL;
    if (escaped != NULL && asprintf(&query, "/containers/json?all=1&filters=%s", escaped) < 0)
        query = NULL;
    curl_free(escaped);
    free(filter_json);
    json_decref(filter);
    return query;
}

static int parse_session_list(const docker_reply *r, docker_session_info **out, size_t *n,
                              char *err, size_t errlen)
{
    json_t *root = json_loadb(r->body, r->len, 0, NULL);
    if (!json_is_array(root)) {
        json_decref(root);
        snprintf(err, errlen, "docker engine sent an unreadable container list");
        return -1;
    }
    size_t count = json_array_size(root), kept = 0;
    docker_session_info *list = calloc(count ? count : 1, sizeof *list);
    if (list == NULL) {
        json_decref(root);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *c = json_array_get(root, i);
        const char *uuid =
            json_string_value(json_object_get(json_object_get(c, "Labels"), "convocate.session"));
        const char *state = json_string_value(json_object_get(c, "State"));
        const char *image = json_string_value(json_object_get(c, "Image"));
        if (uuid == NULL || !uuid_v4_is_valid(uuid))
            continue; /* labelled by hand or by something else: not a session */
        docker_session_info *info = &list[kept++];
        snprintf(info->uuid, sizeof info->uuid, "%s", uuid);
        info->running = state != NULL && strcmp(state, "running") == 0;
        snprintf(info->image, sizeof info->image, "%s", image ? image : "");
    }
    json_decref(root);
    *out = list;
    *n = kept;
    return 0;
}

int docker_list_sessions(docker_client *d, const char *agent_id, docker_session_info **out,
                         size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    char *query = label_filter_query(agent_id);
    if (query == NULL) {
        snprintf(err, errlen, "cannot build the container list query");
        return -1;
    }
    docker_reply r;
    int rc = docker_call(d, "GET", query, NULL, QUICK_TIMEOUT_S, &r, err, errlen);
    free(query);
    if (rc < 0)
        return -1;
    if (r.status != 200) {
        describe_engine_error(&r, "list containers", err, errlen);
        rc = -1;
    } else {
        rc = parse_session_list(&r, out, n, err, errlen);
    }
    reply_clear(&r);
    return rc;
}
