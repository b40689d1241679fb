#include "ssh/registry.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hostport.h"
#include "common/fileio.h"
#include "common/paths.h"
#include "proto/rpc.h"

#define AGENT_PORT_DEFAULT 222
#define RESPONSE_MAX (16 * 1024 * 1024)

static int load_agent(agent_entry *e, const char *id)
{
    char path[PATH_BUF], line[300];
    memcpy(e->id, id, AGENT_ID_LEN); /* the caller checked agent_id_is_valid */
    e->id[AGENT_ID_LEN] = '\0';
    if (root_path(path, sizeof path, "/etc/convocate/agent-keys/%s/agent-host", id) < 0 ||
        read_line_file(path, line, sizeof line) < 0) {
        fprintf(stderr, "convocate: agent %s: cannot read %s: %s; skipping it\n", id, path,
                strerror(errno));
        return -1;
    }
    if (parse_host_port(line, AGENT_PORT_DEFAULT, e->host, sizeof e->host, &e->port) < 0) {
        fprintf(stderr, "convocate: agent %s: %s holds \"%s\", not host[:port]; skipping it\n", id,
                path, line);
        return -1;
    }
    pinned_peer_config cfg = {.port = e->port, .call_timeout_s = 60};
    snprintf(cfg.host, sizeof cfg.host, "%s", e->host);
    snprintf(cfg.user, sizeof cfg.user, "claude");
    if (root_path(cfg.key_path, sizeof cfg.key_path,
                  "/etc/convocate/agent-keys/%s/shell_to_agent_ed25519_key", id) < 0 ||
        root_path(cfg.pinned_key_path, sizeof cfg.pinned_key_path,
                  "/etc/convocate/agent-keys/%s/host_key.pub", id) < 0)
        return -1;
    e->peer = pinned_peer_new(&cfg);
    return e->peer ? 0 : -1;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(((const agent_entry *)a)->id, ((const agent_entry *)b)->id);
}

int registry_load(agent_registry *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    char dir[PATH_BUF];
    if (root_path(dir, sizeof dir, "/etc/convocate/agent-keys") < 0) {
        snprintf(err, errlen, "--root is too long");
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0; /* no agents registered yet */
        snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (!agent_id_is_valid(de->d_name)) {
            fprintf(stderr, "convocate: ignoring %s/%s: not an agent id\n", dir, de->d_name);
            continue;
        }
        agent_entry *grown = realloc(r->items, (r->n + 1) * sizeof *grown);
        if (grown == NULL) {
            closedir(d);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        r->items = grown;
        memset(&r->items[r->n], 0, sizeof r->items[r->n]);
        if (load_agent(&r->items[r->n], de->d_name) == 0)
            r->n++;
        else
            pinned_peer_free(r->items[r->n].peer);
    }
    closedir(d);
    qsort(r->items, r->n, sizeof *r->items, compare_ids);
    return 0;
}

void registry_free(agent_registry *r)
{
    for (size_t i = 0; i < r->n; i++)
        pinned_peer_free(r->items[i].peer);
    free(r->items);
    memset(r, 0, sizeof *r);
}

agent_entry *registry_find(agent_registry *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->items[i].id, id) == 0)
            return &r->items[i];
    return NULL;
}

json_t *agent_call(agent_entry *a, const char *op, json_t *params, char *err, size_t errlen)
{
    bool answered;
    return agent_call_answered(a, op, params, &answered, err, errlen);
}

json_t *agent_call_answered(agent_entry *a, const char *op, json_t *params, bool *answered,
                            char *err, size_t errlen)
{
    *answered = false;
    char *line = rpc_request_encode(op, params);
    if (line == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *resp = NULL;
    int rc = pinned_peer_request(a->peer, "convocate-agent-rpc", line, strlen(line), &resp,
                                 RESPONSE_MAX, err, errlen);
    free(line);
    if (rc < 0)
        return NULL;
    json_error_t jerr;
    json_t *root = json_loads(resp, 0, &jerr);
    free(resp);
    json_t *result = NULL;
    json_t *ok = json_object_get(root, "ok");
    if (!json_is_boolean(ok)) {
        snprintf(err, errlen, "agent %s sent an answer that is not an RPC response", a->id);
    } else if (json_is_true(ok)) {
        *answered = true;
        result = json_object_get(root, "result");
        result = json_incref(result ? result : json_null());
    } else {
        const char *text = json_string_value(json_object_get(root, "error"));
        *answered = true;
        snprintf(err, errlen, "%s", text ? text : "unspecified error");
    }
    json_decref(root);
    return result;
}

struct call_job {
    agent_entry *agent;
    const char *op;
    json_t *params;
    agent_reply *reply;
    size_t index;
    agent_reply_fn then;
    void *ctx;
};

static void *call_thread(void *arg)
{
    struct call_job *job = arg;
    job->reply->result =
        agent_call_answered(job->agent, job->op, job->params, &job->reply->answered,
                            job->reply->error, sizeof job->reply->error);
    if (job->then != NULL)
        job->then(job->index, job->reply, job->ctx);
    return NULL;
}

int agent_call_all(agent_registry *r, const char *op, json_t *params, agent_reply *replies)
{
    return agent_call_some_then(r, op, params, NULL, replies, NULL, NULL);
}

int agent_call_some(agent_registry *r, const char *op, json_t *params, const bool *skip,
                    agent_reply *replies)
{
    return agent_call_some_then(r, op, params, skip, replies, NULL, NULL);
}

int agent_call_some_then(agent_registry *r, const char *op, json_t *params, const bool *skip,
                         agent_reply *replies, agent_reply_fn then, void *ctx)
{
    if (r->n == 0)
        return 0;
    struct call_job *jobs = calloc(r->n, sizeof *jobs);
    pthread_t *threads = calloc(r->n, sizeof *threads);
    bool *started = calloc(r->n, sizeof *started);
    if (jobs == NULL || threads == NULL || started == NULL) {
        free(jobs);
        free(threads);
        free(started);
        return -1;
    }
    for (size_t i = 0; i < r->n; i++) {
        replies[i].result = NULL;
        replies[i].answered = false;
        snprintf(replies[i].error, sizeof replies[i].error, "%s", "not asked");
        if (skip != NULL && skip[i])
            continue;
        replies[i].error[0] = '\0';
        jobs[i] = (struct call_job){&r->items[i], op, params, &replies[i], i, then, ctx};
        started[i] = pthread_create(&threads[i], NULL, call_thread, &jobs[i]) == 0;
        if (!started[i])
            call_thread(&jobs[i]); /* no thread to be had: do it inline */
    }
    for (size_t i = 0; i < r->n; i++)
        if (started[i])
            pthread_join(threads[i], NULL);
    free(jobs);
    free(threads);
    free(started);
    return 0;
}

void agent_replies_clear(agent_reply *replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(replies[i].result);
        replies[i].result = NULL;
    }
}

void agent_hang_up(agent_entry *a)
{
    pinned_peer_hang_up(a->peer);
}
