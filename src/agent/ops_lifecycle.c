/* The session lifecycle ops of SPEC 7 (create, edit, clone, delete, kill,
 * background, restart, override) and the container start behind restart and
 * attach. Each op that changes a session holds that session's PID lock for
 * its whole duration, engine calls included; nothing else is held across an
 * engine call, so a slow stop of one session never delays another. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/disk_error.h"
#include "agent/lock.h"
#include "agent/ops.h"
#include "common/fileio.h"
#include "common/log.h"
#include "proto/claude_fields.h"
#include "proto/rpc.h"

#define PARAM_STRING_MAX 1024
#define SHOWN_MAX 64
#define IMAGE_TAG_MAX 255

/* ---- params ---- */

static int parse_name(json_t *params, bool required, session_changes *c, char *err, size_t errlen)
{
    int rc = params_get_string(params, "name", PARAM_STRING_MAX, &c->name, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0 && required) {
        snprintf(err, errlen, "decode params: \"name\" is required");
        return -1;
    }
    bool may_be_empty = !required; /* edit: an empty name keeps the old one */
    if (rc == 1 && !(may_be_empty && c->name[0] == '\0') && !session_name_is_valid(c->name)) {
        snprintf(err, errlen, "invalid name \"%.*s\": use 1 to %d of A-Z a-z 0-9 _ -", SHOWN_MAX,
                 c->name, SESSION_NAME_MAX);
        return -1;
    }
    return 0;
}

/* "model" ("" = none) and "autonomous" (true, false, or null = the agent's
 * default_autonomous), on create and edit (SPEC 15). */
static int parse_claude_changes(json_t *params, session_changes *c, char *err, size_t errlen)
{
    if (params_get_string(params, "model", PARAM_STRING_MAX, &c->model, err, errlen) < 0)
        return -1;
    if (c->model && c->model[0] && !claude_model_is_valid(c->model)) {
        snprintf(err, errlen,
                 "invalid model \"%.*s\": use 1 to %d of A-Z a-z 0-9 . _ - (\"\" for none)",
                 SHOWN_MAX, c->model, CLAUDE_MODEL_MAX);
        return -1;
    }
    json_t *v = json_object_get(params, "autonomous");
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v) && !json_is_null(v)) {
        snprintf(err, errlen, "decode params: \"autonomous\" must be true, false or null");
        return -1;
    }
    c->has_autonomous = true;
    c->autonomous = json_is_null(v) ? AUTONOMOUS_DEFAULT : json_is_true(v);
    return 0;
}

static int parse_changes(json_t *params, bool name_required, session_changes *c, char *err,
                         size_t errlen)
{
    long long port;
    memset(c, 0, sizeof *c);
    if (parse_name(params, name_required, c, err, errlen) < 0)
        return -1;
    int rc = params_get_int(params, "port", PORT_AUTO, PORT_MAX, &port, err, errlen);
    if (rc < 0)
        return -1;
    c->has_port = rc == 1;
    c->port = (int)(c->has_port ? port : PORT_NONE);
    if (params_get_string(params, "protocol", PARAM_STRING_MAX, &c->protocol, err, errlen) < 0 ||
        params_get_string(params, "dns_name", PARAM_STRING_MAX, &c->dns_name, err, errlen) < 0)
        return -1;
    if (c->protocol && !protocol_is_valid(c->protocol)) {
        snprintf(err, errlen, "invalid protocol \"%.*s\": use tcp or udp", SHOWN_MAX, c->protocol);
        return -1;
    }
    if (c->dns_name && c->dns_name[0] && !dns_label_is_valid(c->dns_name)) {
        snprintf(err, errlen,
                 "invalid dns name \"%.*s\": one lowercase label of a-z 0-9 and inner -, at "
                 "most %d",
                 SHOWN_MAX, c->dns_name, DNS_LABEL_MAX);
        return -1;
    }
    return parse_claude_changes(params, c, err, errlen);
}

/* A params object holding only the listed keys, and a valid id under id_key. */
static int parse_id_params(json_t *params, const char *const *keys, const char *id_key,
                           const char **id, char *err, size_t errlen)
{
    if (params_expect_object(params, 0, err, errlen) < 0 ||
        params_get_id(params, id_key, id, err, errlen) < 0)
        return -1;
    return params_only_keys(params, keys, err, errlen);
}

/* ---- holding a session for an op ---- */

typedef struct {
    store_entry entry;
    session_lock lock;
    char name[SESSION_NAME_MAX + 1]; /* for messages: the name, or the uuid */
} held_session;

static int lock_by_uuid(agent *a, const char *uuid, const char *name, session_lock *lk, char *err,
                        size_t errlen)
{
    char path[PATH_BUF];
    int rc = store_lock_path(a->store, uuid, path, sizeof path) < 0 ? -1 : lock_acquire(path, lk);
    if (rc == 1)
        snprintf(err, errlen, "session \"%s\" is locked", name);
    else if (rc < 0)
        disk_error(err, errlen, errno, "lock session \"%s\"", name);
    return rc == 0 ? 0 : -1;
}

static int hold_session(agent *a, const char *uuid, held_session *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (store_get(a->store, uuid, &h->entry, err, errlen) < 0)
        return -1;
    snprintf(h->name, sizeof h->name, "%s", h->entry.valid ? h->entry.meta.name : uuid);
    store_entry_clear(&h->entry);
    if (lock_by_uuid(a, uuid, h->name, &h->lock, err, errlen) < 0)
        return -1;
    /* Read again under the lock: it may have changed or gone meanwhile. */
    if (store_get(a->store, uuid, &h->entry, err, errlen) < 0) {
        lock_release(&h->lock);
        return -1;
    }
    return 0;
}

static void release_session(held_session *h)
{
    lock_release(&h->lock);
    store_entry_clear(&h->entry);
}

static int require_valid(const held_session *h, char *err, size_t errlen)
{
    if (h->entry.valid)
        return 0;
    snprintf(err, errlen, "session \"%s\" has an unreadable %s", h->entry.uuid, h->entry.error);
    return -1;
}

/* The session object as it will be once the caller drops its lock. */
static json_t *object_after(agent *a, const session_meta *m, bool running)
{
    store_entry e = {.valid = true, .meta = *m};
    memcpy(e.uuid, m->uuid, UUID_STR_LEN);
    return session_object(a, &e, running, true);
}

/* Publishes a container.* event carrying the session object and hands the
 * same object back as the op's result. */
static int publish_object(agent *a, const char *type, const session_meta *m, bool running,
                          json_t **result, char *err, size_t errlen)
{
    json_t *obj = object_after(a, m, running);
    if (obj == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    emitter_publish(a->events, type, m->uuid, json_incref(obj));
    *result = obj;
    return 0;
}

/* ---- starting a container ---- */

static int admit(agent *a, const agent_settings *s, char *err, size_t errlen)
{
    capacity_snapshot snap;
    char why[256];
    if (capacity_measure(&a->meter, &snap, why, sizeof why) < 0) {
        snprintf(err, errlen, "admission denied: cannot measure the host: %s", why);
        return -1;
    }
    /* The running count costs an engine query (~1 ms of a create). Without
     * per-session limits it cannot change the decision, so it is asked for
     * only to word a refusal. */
    bool limits = s->session_cpus > 0 || s->session_memory_mb > 0;
    admission_request req = {.threshold_pct = s->admission_threshold_pct,
                             .session_cpus = s->session_cpus,
                             .session_memory_mb = s->session_memory_mb,
                             .running = limits ? agent_count_running(a) : 0};
    if (capacity_admit(&snap, &req, err, errlen) == 0)
        return 0;
    if (!limits) {
        req.running = agent_count_running(a);
        capacity_admit(&snap, &req, err, errlen);
    }
    log_info("%s", err);
    return -1;
}

typedef struct {
    char image[IMAGE_TAG_MAX + 1];
    char home[PATH_BUF], claude_dir[PATH_BUF], ssh_dir[PATH_BUF], gitconfig[PATH_BUF];
    char claude_bin[PATH_BUF], docker_sock[PATH_BUF], claude_env[PATH_BUF], activity[PATH_BUF];
    docker_run_spec spec;
} run_plan;

static bool image_tag_is_valid(const char *tag)
{
    if (tag[0] == '\0' || tag[0] == '-')
        return false;
    for (const char *p = tag; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._:/@-", *p)))
            return false;
    return true;
}

/* Read at each start, so a running session keeps the tag it started with. */
static int read_current_image(agent *a, char *out, size_t size, char *err, size_t errlen)
{
    char path[PATH_BUF];
    if (snprintf(path, sizeof path, "%s/current-image", a->etc_dir) >= (int)sizeof path ||
        read_line_file(path, out, size) < 0 || !image_tag_is_valid(out)) {
        snprintf(err, errlen,
                 "no session image: %s is missing or invalid (run convocate-host update)", path);
        return -1;
    }
    return 0;
}

/* The host path under --root when it exists, else NULL (not mounted). */
static const char *optional_path(char *buf, size_t size, const char *host_path)
{
    struct stat st;
    if (root_path(buf, size, "%s", host_path) < 0 || stat(buf, &st) < 0)
        return NULL;
    return buf;
}

static const char *engine_socket(agent *a, char *buf, size_t size)
{
    const char *prefix = "unix://";
    const char *url = a->cfg.docker_host;
    if (strncmp(url, prefix, strlen(prefix)) != 0 ||
        snprintf(buf, size, "%s", url + strlen(prefix)) >= (int)size) {
        log_warn("docker_socket is on but %s is not a unix socket: not mounted", url);
        return NULL;
    }
    return buf;
}

static int plan_run(agent *a, const session_meta *m, const agent_settings *s, run_plan *p,
                    char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    char why[RPC_ERR_LEN];
    if (read_current_image(a, p->image, sizeof p->image, err, errlen) < 0)
        return -1;
    if (agent_claude_env_mount(a, p->claude_env, sizeof p->claude_env, why, sizeof why) < 0) {
        snprintf(err, errlen, "start session \"%s\": %s", m->name, why);
        return -1;
    }
    if (store_home_path(a->store, m->uuid, p->home, sizeof p->home) < 0) {
        snprintf(err, errlen, "start: path too long");
        return -1;
    }
    if (activity_prepare(a->activity, m->uuid, p->activity, sizeof p->activity, err, errlen) < 0)
        return -1;
    docker_run_spec *r = &p->spec;
    r->uuid = m->uuid;
    r->agent_id = a->agent_id;
    r->image = p->image;
    r->home_dir = p->home;
    r->claude_dir = optional_path(p->claude_dir, sizeof p->claude_dir, "/home/claude/.claude");
    r->ssh_dir = optional_path(p->ssh_dir, sizeof p->ssh_dir, "/home/claude/.ssh");
    r->gitconfig = optional_path(p->gitconfig, sizeof p->gitconfig, "/home/claude/.gitconfig");
    r->claude_bin = optional_path(p->claude_bin, sizeof p->claude_bin, "/usr/local/bin/claude");
    r->docker_sock =
        s->docker_socket ? engine_socket(a, p->docker_sock, sizeof p->docker_sock) : NULL;
    r->claude_env = p->claude_env[0] ? p->claude_env : NULL;
    r->activity = p->activity;
    r->model = m->model;
    r->autonomous = session_autonomous(m, s->default_autonomous);
    r->claude_uid = a->cfg.claude_uid;
    r->claude_gid = a->cfg.claude_gid;
    r->port = m->port;
    r->protocol = m->protocol;
    r->dns_server = s->dns_server;
    r->cpus = s->session_cpus;
    r->memory_mb = s->session_memory_mb;
    r->cgroup_parent = SESSION_SLICE;
    return 0;
}

static int start_container(agent *a, const session_meta *m, char *err, size_t errlen)
{
    agent_settings s = agent_settings_now(a);
    run_plan plan;
    char why[256];
    if (admit(a, &s, err, errlen) < 0 || plan_run(a, m, &s, &plan, err, errlen) < 0)
        return -1;
    log_debug("start %s: admitted, planned", m->uuid);
    engine_watch_op_start_begin(a->watch, m->uuid);
    int rc = docker_start_session(a->docker, &plan.spec, why, sizeof why);
    engine_watch_op_start_end(a->watch, m->uuid, rc == 0);
    if (rc < 0) {
        snprintf(err, errlen, "start session \"%s\": %s", m->name, why);
        return -1;
    }
    log_info("started session %s (%s) from %s", m->uuid, m->name, plan.image);
    return 0;
}

/* 0 with *running set, or -1 when the engine cannot say. */
static int engine_running(agent *a, const char *uuid, bool *running, char *err, size_t errlen)
{
    char why[256];
    if (docker_session_running(a->docker, uuid, running, why, sizeof why) < 0) {
        snprintf(err, errlen, "container engine: %s", why);
        return -1;
    }
    return 0;
}

static int stop_container(agent *a, const held_session *h, char *err, size_t errlen)
{
    char why[256];
    if (docker_stop_session(a->docker, h->entry.uuid, STOP_GRACE_S, why, sizeof why) < 0) {
        snprintf(err, errlen, "stop session \"%s\": %s", h->name, why);
        return -1;
    }
    activity_forget(a->activity, h->entry.uuid);
    return 0;
}

/* ---- ops ---- */

int op_create(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"name",  "port",       "protocol", "dns_name",
                                       "model", "autonomous", NULL};
    session_changes c;
    char uuid[UUID_STR_LEN];
    session_lock lk;
    session_meta m;
    if (params_expect_object(params, 0, err, errlen) < 0 ||
        params_only_keys(params, keys, err, errlen) < 0 ||
        parse_changes(params, true, &c, err, errlen) < 0)
        return -1;
    agent_settings s = agent_settings_now(a);
    if (admit(a, &s, err, errlen) < 0)
        return -1;
    if (uuid_v4_generate(uuid) < 0) {
        snprintf(err, errlen, "create: no randomness: %s", strerror(errno));
        return -1;
    }
    /* Locked from birth, so its created event precedes any other op's. */
    if (lock_by_uuid(a, uuid, c.name, &lk, err, errlen) < 0)
        return -1;
    int rc = store_create(a->store, uuid, &c, &m, err, errlen);
    if (rc == 0) {
        log_info("created session %s (%s)", uuid, m.name);
        rc = publish_object(a, "container.created", &m, false, result, err, errlen);
        session_meta_clear(&m);
    }
    lock_release(&lk);
    return rc;
}

int op_edit(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"id",       "name",  "port",       "protocol",
                                       "dns_name", "model", "autonomous", NULL};
    const char *id;
    session_changes c;
    held_session h;
    session_meta m;
    if (parse_id_params(params, keys, "id", &id, err, errlen) < 0 ||
        parse_changes(params, false, &c, err, errlen) < 0 ||
        hold_session(a, id, &h, err, errlen) < 0)
        return -1;
    int rc = store_edit(a->store, id, &c, &m, err, errlen);
    if (rc == 0) {
        rc = publish_object(a, "container.edited", &m, agent_session_running(a, id), result, err,
                            errlen);
        session_meta_clear(&m);
    }
    release_session(&h);
    return rc;
}

int op_clone(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"source_id", "name", NULL};
    const char *src;
    session_changes c;
    held_session h;
    char uuid[UUID_STR_LEN];
    session_lock lk;
    session_meta m;
    if (parse_id_params(params, keys, "source_id", &src, err, errlen) < 0 ||
        parse_changes(params, true, &c, err, errlen) < 0)
        return -1;
    agent_settings s = agent_settings_now(a);
    /* The source first: a missing one is "not found" however busy the host
     * is, and an operator's typo is not reported as a capacity problem. */
    if (hold_session(a, src, &h, err, errlen) < 0)
        return -1;
    int rc = require_valid(&h, err, errlen);
    if (rc == 0)
        rc = admit(a, &s, err, errlen);
    if (rc == 0 && uuid_v4_generate(uuid) < 0) {
        snprintf(err, errlen, "clone: no randomness: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0)
        rc = lock_by_uuid(a, uuid, c.name, &lk, err, errlen);
    if (rc == 0) {
        rc = store_clone(a->store, src, uuid, c.name, &m, err, errlen);
        if (rc == 0) {
            log_info("cloned session %s into %s (%s)", src, uuid, m.name);
            rc = publish_object(a, "container.created", &m, false, result, err, errlen);
            session_meta_clear(&m);
        }
        lock_release(&lk);
    }
    release_session(&h);
    return rc;
}

/* What delete and kill begin with: params["id"] read, the session held,
 * its container stopped. On failure nothing stays held. *published: the
 * engine watcher sent the stop's one container.stopped (by "operator"). */
static int hold_and_stop(agent *a, json_t *params, const char **id, held_session *h,
                         bool *published, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", NULL};
    if (parse_id_params(params, keys, "id", id, err, errlen) < 0 ||
        hold_session(a, *id, h, err, errlen) < 0)
        return -1;
    engine_watch_op_stop_begin(a->watch, *id);
    int rc = stop_container(a, h, err, errlen);
    *published = engine_watch_op_stop_end(a->watch, *id, rc == 0);
    if (rc < 0) {
        release_session(h);
        return -1;
    }
    return 0;
}

int op_delete(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    const char *id;
    held_session h;
    bool stop_published;
    if (hold_and_stop(a, params, &id, &h, &stop_published, err, errlen) < 0)
        return -1;
    int rc = store_delete(a->store, id, err, errlen);
    if (rc == 0) {
        log_info("deleted session %s (%s)", id, h.name);
        activity_remove(a->activity, id);
        emitter_publish(a->events, "container.deleted", id, NULL);
        *result = NULL;
    }
    release_session(&h); /* removes the lock file with the session */
    return rc;
}

int op_kill(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    const char *id;
    held_session h;
    bool stop_published;
    if (hold_and_stop(a, params, &id, &h, &stop_published, err, errlen) < 0)
        return -1;
    log_info("stopped session %s (%s)", id, h.name);
    if (!stop_published) /* nothing ran: the kill still gets its one event */
        emitter_publish(a->events, "container.stopped", id,
                        json_pack("{s:n, s:b, s:s}", "exit_code", "oom", 0, "by", "operator"));
    *result = NULL;
    release_session(&h);
    return 0;
}

int op_background(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", NULL};
    const char *id;
    store_entry e;
    bool running = false;
    char why[256];
    if (parse_id_params(params, keys, "id", &id, err, errlen) < 0 ||
        store_get(a->store, id, &e, err, errlen) < 0)
        return -1;
    const char *name = e.valid ? e.meta.name : id;
    int rc = engine_running(a, id, &running, err, errlen);
    if (rc == 0 && !running) {
        snprintf(err, errlen, "session \"%s\" is not running", name);
        rc = -1;
    }
    if (rc == 0 && docker_detach_clients(a->docker, id, why, sizeof why) < 0) {
        snprintf(err, errlen, "background session \"%s\": %s", name, why);
        rc = -1;
    }
    store_entry_clear(&e);
    *result = NULL;
    return rc;
}

/* Starts the held session's container unless it runs; *started says which. */
static int ensure_started(agent *a, held_session *h, bool refuse_running, bool *started, char *err,
                          size_t errlen)
{
    bool running = false;
    *started = false;
    if (require_valid(h, err, errlen) < 0 ||
        engine_running(a, h->entry.uuid, &running, err, errlen) < 0)
        return -1;
    if (running && refuse_running) {
        snprintf(err, errlen, "session \"%s\" already running", h->name);
        return -1;
    }
    if (running)
        return 0;
    if (start_container(a, &h->entry.meta, err, errlen) < 0)
        return -1;
    *started = true;
    return 0;
}

int op_restart(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", NULL};
    const char *id;
    held_session h;
    bool started;
    if (parse_id_params(params, keys, "id", &id, err, errlen) < 0 ||
        hold_session(a, id, &h, err, errlen) < 0)
        return -1;
    int rc = ensure_started(a, &h, true, &started, err, errlen);
    if (rc == 0) {
        json_t *obj = object_after(a, &h.entry.meta, true);
        emitter_publish(a->events, "container.started", id, obj);
        *result = NULL;
    }
    release_session(&h);
    return rc;
}

int op_override(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    static const char *const keys[] = {"id", NULL};
    const char *id;
    store_entry e;
    char path[PATH_BUF];
    if (parse_id_params(params, keys, "id", &id, err, errlen) < 0 ||
        store_get(a->store, id, &e, err, errlen) < 0)
        return -1;
    store_entry_clear(&e);
    if (store_lock_path(a->store, id, path, sizeof path) < 0 || lock_remove(path) < 0) {
        snprintf(err, errlen, "override %s: %s", id, strerror(errno));
        return -1;
    }
    log_info("override: removed the lock of session %s", id);
    *result = NULL;
    return 0;
}

int agent_attach_prepare(agent *a, const char *uuid, char *err, size_t errlen)
{
    held_session h;
    bool started;
    session_meta m;
    if (!uuid_v4_is_valid(uuid)) {
        snprintf(err, errlen, "invalid id \"%.*s%s\"", SHOWN_MAX, uuid,
                 strlen(uuid) > SHOWN_MAX ? "..." : "");
        return -1;
    }
    if (hold_session(a, uuid, &h, err, errlen) < 0)
        return -1;
    int rc = ensure_started(a, &h, false, &started, err, errlen);
    if (rc == 0 && started)
        emitter_publish(a->events, "container.started", uuid, object_after(a, &h.entry.meta, true));
    if (rc == 0 && store_touch(a->store, uuid, &m, err, errlen) == 0)
        session_meta_clear(&m);
    else if (rc == 0)
        log_warn("attach %s: cannot move last_accessed: %s", uuid, err);
    release_session(&h);
    return rc;
}
