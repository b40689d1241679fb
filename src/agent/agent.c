/* The agent object: its life cycle (identity, settings, store, emitter and
 * engine, adoption of running containers), its announcements, and the
 * state every connection shares (settings snapshot, attach counts). The
 * op table and its handlers are in ops.c and ops_lifecycle.c. */
#include "agent/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/array.h"
#include "common/fileio.h"
#include "common/hostport.h"
#include "common/layout.h"
#include "common/log.h"
#include "version.h"

/* ---- shared state ---- */

agent_settings agent_settings_now(agent *a)
{
    pthread_mutex_lock(&a->settings_mu);
    agent_settings s = a->settings;
    pthread_mutex_unlock(&a->settings_mu);
    return s;
}

int agent_attached_count(agent *a, const char *uuid)
{
    int n = 0;
    pthread_mutex_lock(&a->attach_mu);
    for (size_t i = 0; i < a->n_attached; i++)
        if (strcmp(a->attached[i].uuid, uuid) == 0)
            n = a->attached[i].count;
    pthread_mutex_unlock(&a->attach_mu);
    return n;
}

void agent_image_tag(agent *a, char *out, size_t size)
{
    char path[PATH_BUF];
    if (snprintf(path, sizeof path, "%s/current-image", a->etc_dir) >= (int)sizeof path ||
        read_line_file(path, out, size) < 0)
        out[0] = '\0';
}

/* ---- attach counting ---- */

void agent_attach_enter(agent *a, const char *uuid)
{
    memory_rest_note(&a->rest);
    if (!uuid_v4_is_valid(uuid))
        return;
    pthread_mutex_lock(&a->attach_mu);
    size_t i = 0;
    while (i < a->n_attached && strcmp(a->attached[i].uuid, uuid) != 0)
        i++;
    if (i < a->n_attached) {
        a->attached[i].count++;
    } else if (grow_array(&a->attached, &a->cap_attached, a->n_attached + 1, sizeof *a->attached,
                          16) == 0) {
        memcpy(a->attached[i].uuid, uuid, UUID_STR_LEN);
        a->attached[i].count = 1;
        a->n_attached++;
    } else {
        log_error("attach count for %s: out of memory", uuid);
    }
    pthread_mutex_unlock(&a->attach_mu);
}

void agent_attach_leave(agent *a, const char *uuid)
{
    memory_rest_note(&a->rest); /* the relay's buffers are being freed */
    pthread_mutex_lock(&a->attach_mu);
    for (size_t i = 0; i < a->n_attached; i++) {
        if (strcmp(a->attached[i].uuid, uuid) != 0)
            continue;
        if (--a->attached[i].count <= 0)
            a->attached[i] = a->attached[--a->n_attached];
        break;
    }
    pthread_mutex_unlock(&a->attach_mu);
}

/* ---- life cycle of the agent object ---- */

static int load_identity(agent *a, char *err, size_t errlen)
{
    char path[PATH_BUF];
    if (root_path(a->etc_dir, sizeof a->etc_dir, "/etc/convocate-agent") < 0 ||
        snprintf(path, sizeof path, "%s/agent-id", a->etc_dir) >= (int)sizeof path ||
        snprintf(a->settings_path, sizeof a->settings_path, "%s/settings.json", a->etc_dir) >=
            (int)sizeof a->settings_path) {
        snprintf(err, errlen, "--root path is too long");
        return -1;
    }
    char id[64];
    if (read_line_file(path, id, sizeof id) < 0 || !agent_id_is_valid(id)) {
        snprintf(err, errlen, "%s is missing or not 8 of [a-z0-9]: run convocate-agent install",
                 path);
        return -1;
    }
    memcpy(a->agent_id, id, AGENT_ID_LEN + 1);
    return 0;
}

/* A write of settings.json or claude.env cut short by a crash leaves its
 * temporary beside the file (the file itself is whole: SPEC 4). Nothing
 * else writes them, so what is there now is debris; claude.env's may hold
 * a secret. */
static void remove_state_leftovers(const agent *a)
{
    static const char *const files[] = {"settings.json", "claude.env"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[PATH_BUF];
        if (snprintf(path, sizeof path, "%s/%s", a->etc_dir, files[i]) >= (int)sizeof path)
            continue;
        int n = atomic_write_leftovers_remove(path);
        if (n > 0)
            log_info("removed %d temporar%s of %s left by an interrupted write", n,
                     n == 1 ? "y" : "ies", path);
    }
}

static int open_store(agent *a, char *err, size_t errlen)
{
    char home[PATH_BUF], meta[PATH_BUF];
    if (root_path(home, sizeof home, "/home/claude") < 0 ||
        root_path(meta, sizeof meta, "%s", AGENT_SESSIONS_DIR) < 0) {
        snprintf(err, errlen, "--root path is too long");
        return -1;
    }
    /* Only root can give homes to claude; a developer's unprivileged run
     * keeps its own ownership instead of failing every create. */
    uid_t uid = geteuid() == 0 ? a->cfg.claude_uid : KEEP_OWNER;
    a->store = store_open(home, meta, uid, a->cfg.claude_gid, err, errlen);
    if (a->store == NULL)
        return -1;
    a->locks = lock_watch_open(home);
    return 0;
}

/* Running containers of this agent are taken as they are: never restarted,
 * never stopped (SPEC 6.4). */
static void adopt_running(agent *a)
{
    char err[256];
    if (docker_ping(a->docker, err, sizeof err) < 0) {
        log_warn("container engine unreachable at %s: %s", a->cfg.docker_host, err);
        return;
    }
    int n = agent_count_running(a);
    log_info("adopted %d running session container%s", n, n == 1 ? "" : "s");
}

/* Where status events go (SPEC 8.3): --shell-host, else the shell-host file
 * that init-agent wrote, as "host[:port]". False, with one log line, when
 * there is no shell or no client key yet: the agent then serves RPCs and
 * keeps its events local. */
static bool shell_peer_config(const agent_config *cfg, pinned_peer_config *out)
{
    char line[300], path[PATH_BUF];
    memset(out, 0, sizeof *out);
    if (cfg->shell_host[0] != '\0')
        snprintf(line, sizeof line, "%s", cfg->shell_host);
    else if (root_path(path, sizeof path, "/etc/convocate-agent/shell-host") < 0 ||
             read_line_file(path, line, sizeof line) < 0 || line[0] == '\0') {
        log_info("status: no shell host configured (--shell-host or %s): events stay local",
                 "/etc/convocate-agent/shell-host");
        return false;
    }
    if (parse_host_port(line, cfg->shell_port, out->host, sizeof out->host, &out->port) < 0) {
        log_warn("status: shell host \"%s\" is not host[:port]: events stay local", line);
        return false;
    }
    if (access(cfg->shell_key, R_OK) != 0 || access(cfg->shell_known_host, R_OK) != 0) {
        log_warn("status: %s or %s is missing (run convocate-host init-agent): events stay local",
                 cfg->shell_key, cfg->shell_known_host);
        return false;
    }
    snprintf(out->user, sizeof out->user, "claude");
    snprintf(out->key_path, sizeof out->key_path, "%s", cfg->shell_key);
    snprintf(out->pinned_key_path, sizeof out->pinned_key_path, "%s", cfg->shell_known_host);
    out->call_timeout_s = 10;
    return true;
}

agent *agent_new(const agent_config *cfg, char *err, size_t errlen)
{
    agent *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    pthread_mutex_init(&a->settings_mu, NULL);
    pthread_mutex_init(&a->attach_mu, NULL);
    memory_rest_init(&a->rest);
    capacity_meter_init(&a->meter);
    capacity_meter_on_tick(&a->meter, memory_rest_tick_hook, &a->rest);
    if (load_identity(a, err, errlen) < 0)
        goto fail;
    remove_state_leftovers(a);
    if (settings_load(a->settings_path, &a->settings, err, errlen) < 0 ||
        open_store(a, err, errlen) < 0)
        goto fail;
    pinned_peer_config shell;
    bool to_shell = shell_peer_config(cfg, &shell);
    a->events = emitter_new(a->agent_id, cfg->events_log, to_shell ? &shell : NULL, err, errlen);
    if (a->events == NULL)
        goto fail;
    a->docker = docker_new(cfg->docker_host, err, errlen);
    if (a->docker == NULL)
        goto fail;
    adopt_running(a);
    char spool[PATH_BUF];
    if (root_path(spool, sizeof spool, ACTIVITY_SPOOL_DIR) < 0 ||
        (a->activity =
             activity_new(spool, a->events, cfg->claude_uid, cfg->claude_gid, err, errlen)) == NULL)
        goto fail;
    activity_adopt_running(a->activity, a->docker, a->agent_id);
    a->watch = engine_watch_start(a);
    return a;
fail:
    agent_free(a);
    return NULL;
}

void agent_free(agent *a)
{
    if (a == NULL)
        return;
    activity_free(a->activity);
    engine_watch_stop(a->watch);
    emitter_free(a->events);
    docker_free(a->docker);
    lock_watch_close(a->locks);
    store_close(a->store);
    capacity_meter_destroy(&a->meter);
    pthread_mutex_destroy(&a->settings_mu);
    pthread_mutex_destroy(&a->attach_mu);
    free(a->attached);
    free(a);
}

void agent_announce_start(agent *a)
{
    char image[256];
    agent_image_tag(a, image, sizeof image);
    emitter_publish(a->events, "agent.started", NULL,
                    json_pack("{s:s, s:s}", "version", CONVOCATE_VERSION, "image_tag", image));
    emitter_set_heartbeat(a->events, agent_settings_now(a).heartbeat_s);
}

void agent_announce_shutdown(agent *a, const char *reason)
{
    emitter_publish(a->events, "agent.shutdown", NULL, json_pack("{s:s}", "reason", reason));
}

const char *agent_id(const agent *a)
{
    return a->agent_id;
}

const agent_config *agent_cfg(const agent *a)
{
    return &a->cfg;
}
