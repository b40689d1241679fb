/* The container engine driver: Docker Engine API v1.41 over the unix socket.
 *
 * Every call makes its own curl easy handle, so the driver holds no mutable
 * state shared between threads; the client object is only the socket path.
 * Every call has a connect timeout and an overall timeout, and every response
 * body is capped, so a wedged or hostile engine costs a bounded wait and
 * bounded memory. */
#include "agent/docker.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define API_PREFIX "http://localhost/v1.41"
#define BODY_MAX (8u * 1024u * 1024u)
#define CONNECT_TIMEOUT_S 5L
#define QUICK_TIMEOUT_S 15L  /* ping, inspect, list, exec bookkeeping */
#define CREATE_TIMEOUT_S 30L /* create and start may wait on image layers */
#define GONE_WAIT_S 30       /* after a stop: time for AutoRemove to finish */
#define EXEC_WAIT_S 10       /* tmux detach-client is instant; allow slack */
#define READY_WAIT_S 15      /* entrypoint: user, then tmux session */
#define NAME_PREFIX "convocate-session-"
#define SYSLOG_SOCKET "/dev/log"

struct docker_client {
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One HTTP exchange with the engine. */
typedef struct {
    long status;
    char *body; /* NUL-terminated, never NULL after a successful call */
    size_t len;
    bool overflow;
} docker_reply;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

docker_client *docker_new(const char *url, char *err, size_t errlen)
{
    const char *scheme = "unix://";
    if (url == NULL || strncmp(url, scheme, strlen(scheme)) != 0) {
        snprintf(err, errlen, "unsupported docker host \"%s\" (only unix:///path sockets)",
                 url ? url : "");
        return NULL;
    }
    const char *path = url + strlen(scheme);
    if (path[0] != '/') {
        snprintf(err, errlen, "docker host \"%s\" must name an absolute socket path", url);
        return NULL;
    }
    if (pthread_once(&curl_once, curl_init_once) != 0 || curl_init_rc < 0) {
        snprintf(err, errlen, "libcurl could not be initialised");
        return NULL;
    }
    docker_client *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (snprintf(d->socket_path, sizeof d->socket_path, "%s", path) >= (int)sizeof d->socket_path) {
        snprintf(err, errlen, "docker socket path \"%s\" is too long", path);
        free(d);
        return NULL;
    }
    return d;
}

void docker_free(docker_client *d)
{
    free(d);
}

static size_t collect_body(char *data, size_t size, size_t nmemb, void *userp)
{
    docker_reply *r = userp;
    size_t n = size * nmemb;
    if (n > BODY_MAX - r->len) {
        r->overflow = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    char *grown = realloc(r->body, r->len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + r->len, data, n);
    r->body = grown;
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static void reply_clear(docker_reply *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* A transport failure, in words an operator can act on. */
static void describe_transport_error(const docker_client *d, CURL *curl, CURLcode rc,
                                     const docker_reply *r, char *err, size_t errlen)
{
    long os_errno = 0;
    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    if (rc == CURLE_COULDNT_CONNECT) {
        snprintf(err, errlen, "docker engine unreachable at %s: %s (is dockerd running?)",
                 d->socket_path, os_errno ? strerror((int)os_errno) : "connection failed");
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(err, errlen, "docker engine at %s did not answer in time", d->socket_path);
    } else if (rc == CURLE_WRITE_ERROR && r->overflow) {
        snprintf(err, errlen, "docker engine reply over %u bytes refused", BODY_MAX);
    } else {
        snprintf(err, errlen, "docker engine at %s: %s", d->socket_path, curl_easy_strerror(rc));
    }
}

/* Sends one request; path starts with '/' and is already URL-safe. Returns 0
 * when the engine answered (any HTTP status, in reply->status), -1 with err
 * filled when it could not be reached or the exchange failed. */
static int docker_call(docker_client *d, const char *method, const char *path,
                       const char *json_body, long timeout_s, docker_reply *reply, char *err,
                       size_t errlen)
{
    memset(reply, 0, sizeof *reply);
    char url[2048];
    if (snprintf(url, sizeof url, "%s%s", API_PREFIX, path) >= (int)sizeof url) {
        snprintf(err, errlen, "docker request path too long");
        return -1;
    }
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    int rc = -1;
    if (curl == NULL) {
        snprintf(err, errlen, "out of memory (curl handle)");
        goto out;
    }
    if (json_body != NULL) {
        headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (headers == NULL) {
            snprintf(err, errlen, "out of memory (curl headers)");
            goto out;
        }
    }
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, d->socket_path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* we run in worker threads */
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, reply);
    if (json_body != NULL) {
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    }
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        describe_transport_error(d, curl, cc, reply, err, errlen);
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
    if (reply->body == NULL) {
        reply->body = calloc(1, 1);
        if (reply->body == NULL) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    if (rc < 0)
        reply_clear(reply);
    curl_slist_free_all(headers);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return rc;
}

/* The engine's own words for a failed request: {"message":"..."}. */
static void describe_engine_error(const docker_reply *r, const char *what, char *err, size_t errlen)
{
    json_t *root = json_loadb(r->body, r->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(root, "message"));
    if (msg != NULL && *msg != '\0')
        snprintf(err, errlen, "%s: %s", what, msg);
    else
        snprintf(err, errlen, "%s: docker engine answered HTTP %ld", what, r->status);
    json_decref(root);
}

int docker_ping(docker_client *d, char *err, size_t errlen)
{
    docker_reply r;
    if (docker_call(d, "GET", "/_ping", NULL, QUICK_TIMEOUT_S, &r, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (r.status != 200) {
        describe_engine_error(&r, "docker ping", err, errlen);
        rc = -1;
    }
    reply_clear(&r);
    return rc;
}

/* ---- run contract ------------------------------------------------------ */

static int wait_session_ready(docker_client *d, const char *name, char *err, size_t errlen);

static void container_name(char *out, size_t size, const char *uuid)
{
    snprintf(out, size, NAME_PREFIX "%s", uuid);
}

/* The syslog driver makes dockerd dial the host's syslog socket at container
 * start and fail the start when nobody listens; probing it ourselves turns
 * that into a fallback to the default driver instead of a failed session. */
static bool host_syslog_listening(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", SYSLOG_SOCKET);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (!ok && errno == EPROTOTYPE) {
        close(fd);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

static int add_log_config(json_t *host_config, const char *name)
{
    static atomic_bool warned;
    if (!host_syslog_listening()) {
        if (!atomic_exchange(&warned, true))
            log_warn("no syslog listening at %s: session containers use the engine's "
                     "default log driver",
                     SYSLOG_SOCKET);
        return 0;
    }
    json_t *log = json_pack("{s:s, s:{s:s}}", "Type", "syslog", "Config", "tag", name);
    return log ? json_object_set_new(host_config, "LogConfig", log) : -1;
}

static int add_mount(json_t *mounts, const char *source, const char *target, bool read_only)
{
    if (source == NULL || *source == '\0')
        return 0;
    json_t *m = json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source", source, "Target",
                          target, "ReadOnly", read_only);
    return m ? json_array_append_new(mounts, m) : -1;
}

static json_t *session_mounts(const docker_run_spec *s)
{
    json_t *mounts = json_array();
    if (mounts == NULL)
        return NULL;
    if (add_mount(mounts, s->home_dir, "/home/claude", false) < 0 ||
        add_mount(mounts, s->claude_dir, "/home/claude/.claude-shared", true) < 0 ||
        add_mount(mounts, s->ssh_dir, "/home/claude/.ssh", true) < 0 ||
        add_mount(mounts, s->gitconfig, "/home/claude/.gitconfig", true) < 0 ||
        add_mount(mounts, s->claude_bin, "/usr/local/bin/claude", true) < 0 ||
        add_mount(mounts, s->claude_env, "/run/convocate/claude.env", true) < 0 ||
        add_mount(mounts, s->docker_sock, "/var/run/docker.sock", false) < 0) {
        json_decref(mounts);
        return NULL;
    }
    return mounts;
}

static bool protocol_valid(const char *protocol)
{
    return protocol == NULL || strcmp(protocol, "tcp") == 0 || strcmp(protocol, "udp") == 0;
}

/* "8080/tcp" -> [{"HostPort":"8080"}] in HostConfig, and the same key in
 * ExposedPorts so the binding is honoured. */
static int add_port(json_t *config, json_t *host_config, const docker_run_spec *s)
{
    if (s->port <= 0)
        return 0;
    char key[32], host_port[16];
    snprintf(key, sizeof key, "%d/%s", s->port, s->protocol ? s->protocol : "tcp");
    snprintf(host_port, sizeof host_port, "%d", s->port);
    json_t *exposed = json_pack("{s:{}}", key);
    json_t *bindings = json_pack("{s:[{s:s}]}", key, "HostPort", host_port);
    if (exposed == NULL || bindings == NULL) {
        json_decref(exposed);
        json_decref(bindings);
        return -1;
    }
    int rc = json_object_set_new(config, "ExposedPorts", exposed);
    return json_object_set_new(host_config, "PortBindings", bindings) | rc;
}

static int add_limits(json_t *host_config, const docker_run_spec *s)
{
    int rc = 0;
    if (s->dns_server != NULL && *s->dns_server != '\0')
        rc |= json_object_set_new(host_config, "Dns", json_pack("[s]", s->dns_server));
    if (s->cgroup_parent != NULL && *s->cgroup_parent != '\0')
        rc |= json_object_set_new(host_config, "CgroupParent", json_string(s->cgroup_parent));
    if (s->cpus > 0)
        rc |=
            json_object_set_new(host_config, "NanoCpus", json_integer((json_int_t)(s->cpus * 1e9)));
    if (s->memory_mb > 0)
        rc |= json_object_set_new(host_config, "Memory",
                                  json_integer((json_int_t)s->memory_mb * 1024 * 1024));
    return rc;
}

static json_t *session_host_config(const docker_run_spec *s, const char *name)
{
    json_t *hc = json_pack("{s:b, s:b, s:o*}", "AutoRemove", 1, "Privileged", 0, "Mounts",
                           session_mounts(s));
    if (hc == NULL || json_object_get(hc, "Mounts") == NULL || add_limits(hc, s) != 0 ||
        add_log_config(hc, name) != 0) {
        json_decref(hc);
        return NULL;
    }
    return hc;
}

/* Non-secret settings only: credentials reach a session through the
 * claude.env mount, never through its config (SPEC 14). */
static json_t *session_env(const docker_run_spec *s)
{
    char uid_env[32], gid_env[32], id_env[64], model_env[96];
    snprintf(uid_env, sizeof uid_env, "CLAUDE_UID=%u", s->claude_uid);
    snprintf(gid_env, sizeof gid_env, "CLAUDE_GID=%u", s->claude_gid);
    snprintf(id_env, sizeof id_env, "CONVOCATE_SESSION_ID=%s", s->uuid);
    snprintf(model_env, sizeof model_env, "CONVOCATE_MODEL=%.64s", s->model ? s->model : "");
    return json_pack("[s,s,s,s,s]", uid_env, gid_env, id_env, model_env,
                     s->autonomous ? "CONVOCATE_AUTONOMOUS=1" : "CONVOCATE_AUTONOMOUS=0");
}

static char *session_create_body(const docker_run_spec *s, const char *name)
{
    char hostname[64];
    snprintf(hostname, sizeof hostname, "convocate-%.8s", s->uuid);
    json_t *config =
        json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:s}, s:b, s:b, s:b, s:b, s:b}", "Image", s->image,
                  "Hostname", hostname, "WorkingDir", "/home/claude", "Env", session_env(s),
                  "Labels", "convocate.session", s->uuid, "convocate.agent", s->agent_id, "Tty", 1,
                  "OpenStdin", 1, "AttachStdin", 0, "AttachStdout", 0, "AttachStderr", 0);
    json_t *hc = session_host_config(s, name);
    char *body = NULL;
    if (config != NULL && hc != NULL && add_port(config, hc, s) == 0 &&
        json_object_set(config, "HostConfig", hc) == 0)
        body = json_dumps(config, JSON_COMPACT);
    json_decref(hc);
    json_decref(config);
    return body;
}

static int remove_container(docker_client *d, const char *name, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/containers/%s?force=1", name);
    docker_reply r;
    if (docker_call(d, "DELETE", path, NULL, QUICK_TIMEOUT_S, &r, err, errlen) < 0)
        return -1;
    int rc = 0;
    /* 409: removal already in progress (AutoRemove got there first). */
    if (r.status != 204 && r.status != 404 && r.status != 409) {
        describe_engine_error(&r, "remove container", err, errlen);
        rc = -1;
    }
    reply_clear(&r);
    return rc;
}

/* POST /containers/create; a leftover stopped container of the same name (a
 * start that failed earlier) is removed and the create retried once. */
static int create_container(docker_client *d, const docker_run_spec *s, const char *name,
                            const char *body, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/containers/create?name=%s", name);
    for (int attempt = 0; attempt < 2; attempt++) {
        docker_reply r;
        if (docker_call(d, "POST", path, body, CREATE_TIMEOUT_S, &r, err, errlen) < 0)
            return -1;
        long status = r.status;
        if (status == 201) {
            reply_clear(&r);
            return 0;
        }
        if (status != 409 || attempt > 0) {
            describe_engine_error(&r, "create container", err, errlen);
            reply_clear(&r);
            return -1;
        }
        reply_clear(&r);
        bool running = false;
        if (docker_session_running(d, s->uuid, &running, err, errlen) < 0)
            return -1;
        if (running) {
            snprintf(err, errlen, "container %s is already running", name);
            return -1;
        }
        log_info("removing leftover stopped container %s", name);
        if (remove_container(d, name, err, errlen) < 0)
            return -1;
    }
    return -1;
}

static int start_container(docker_client *d, const char *name, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/containers/%s/start", name);
    docker_reply r;
    if (docker_call(d, "POST", path, NULL, CREATE_TIMEOUT_S, &r, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (r.status != 204 && r.status != 304) {
        describe_engine_error(&r, "start container", err, errlen);
        rc = -1;
    }
    reply_clear(&r);
    return rc;
}

int docker_start_session(docker_client *d, const docker_run_spec *spec, char *err, size_t errlen)
{
    if (spec == NULL || spec->uuid == NULL || !uuid_v4_is_valid(spec->uuid) ||
        spec->image == NULL || spec->agent_id == NULL || spec->home_dir == NULL) {
        snprintf(err, errlen, "incomplete container run spec");
        return -1;
    }
    if (spec->port < 0 || spec->port > 65535 ||
        (spec->port > 0 && !protocol_valid(spec->protocol))) {
        snprintf(err, errlen, "invalid port %d/%s for the container", spec->port,
                 spec->protocol ? spec->protocol : "");
        return -1;
    }
    char name[64];
    container_name(name, sizeof name, spec->uuid);
    char *body = session_create_body(spec, name);
    if (body == NULL) {
        snprintf(err, errlen, "out of memory building the container spec");
        return -1;
    }
    int rc = create_container(d, spec, name, body, err, errlen);
    free(body);
    if (rc < 0)
        return -1;
    if (start_container(d, name, err, errlen) < 0) {
        /* Leave nothing behind: a never-started container is not auto-removed. */
        char ignored[256];
        if (remove_container(d, name, ignored, sizeof ignored) < 0)
            log_warn("%s: %s", name, ignored);
        return -1;
    }
    if (wait_session_ready(d, name, err, errlen) < 0)
        return -1;
    log_info("started %s (image %s)", name, spec->image);
    return 0;
}

/* ---- inspection, stop -------------------------------------------------- */

/* GET /containers/<name>/json: *exists and *running from State. */
static int inspect_state(docker_client *d, const char *name, bool *exists, bool *running, char *err,
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

int docker_session_running(docker_client *d, const char *uuid, bool *running, char *err,
                           size_t errlen)
{
    *running = false;
    if (!uuid_v4_is_valid(uuid)) {
        snprintf(err, errlen, "invalid id \"%s\"", uuid);
        return -1;
    }
    char name[64];
    container_name(name, sizeof name, uuid);
    bool exists;
    return inspect_state(d, name, &exists, running, err, errlen);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* After a stop, AutoRemove deletes the container asynchronously; wait for it
 * so a restart right after a kill does not collide with the old name. A
 * stopped container that lingers (not ours to auto-remove) is removed. */
static int wait_until_gone(docker_client *d, const char *name, char *err, size_t errlen)
{
    double deadline = monotonic_s() + GONE_WAIT_S;
    int stopped_polls = 0;
    while (monotonic_s() < deadline) {
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
    if (!uuid_v4_is_valid(uuid)) {
        snprintf(err, errlen, "invalid id \"%s\"", uuid);
        return -1;
    }
    if (grace_s < 0)
        grace_s = 0;
    char name[64], path[256];
    container_name(name, sizeof name, uuid);
    snprintf(path, sizeof path, "/containers/%s/stop?t=%d", name, grace_s);
    docker_reply r;
    /* The engine answers only after the grace period and the SIGKILL. */
    if (docker_call(d, "POST", path, NULL, grace_s + QUICK_TIMEOUT_S, &r, err, errlen) < 0)
        return -1;
    long status = r.status;
    if (status == 404) {
        reply_clear(&r);
        return 0;
    }
    if (status != 204 && status != 304) {
        describe_engine_error(&r, "stop container", err, errlen);
        reply_clear(&r);
        return -1;
    }
    reply_clear(&r);
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

/* ---- exec: detach tmux clients ----------------------------------------- */

/* Creates an exec of cmd_json (a constant JSON array: never built from
 * input) run as user claude in container name; its id in id. */
static int exec_create(docker_client *d, const char *name, const char *cmd_json, char *id,
                       size_t idlen, char *err, size_t errlen)
{
    char path[256], body[512];
    snprintf(path, sizeof path, "/containers/%s/exec", name);
    snprintf(body, sizeof body,
             "{\"User\":\"claude\",\"AttachStdin\":false,\"AttachStdout\":false,"
             "\"AttachStderr\":false,\"Tty\":false,\"Cmd\":%s}",
             cmd_json);
    docker_reply r;
    if (docker_call(d, "POST", path, body, QUICK_TIMEOUT_S, &r, err, errlen) < 0)
        return -1;
    int rc = -1;
    if (r.status == 201) {
        json_t *root = json_loadb(r.body, r.len, 0, NULL);
        const char *exec_id = json_string_value(json_object_get(root, "Id"));
        if (exec_id != NULL && strspn(exec_id, "0123456789abcdef") == strlen(exec_id) &&
            snprintf(id, idlen, "%s", exec_id) < (int)idlen)
            rc = 0;
        else
            snprintf(err, errlen, "docker engine sent an unreadable exec reply");
        json_decref(root);
    } else if (r.status == 404 || r.status == 409) {
        snprintf(err, errlen, "container %s is not running", name);
    } else {
        describe_engine_error(&r, "exec in container", err, errlen);
    }
    reply_clear(&r);
    return rc;
}

static int exec_start_detached(docker_client *d, const char *id, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/exec/%s/start", id);
    docker_reply r;
    if (docker_call(d, "POST", path, "{\"Detach\":true,\"Tty\":false}", QUICK_TIMEOUT_S, &r, err,
                    errlen) < 0)
        return -1;
    int rc = 0;
    if (r.status != 200 && r.status != 204) {
        describe_engine_error(&r, "start exec", err, errlen);
        rc = -1;
    }
    reply_clear(&r);
    return rc;
}

/* Polls GET /exec/<id>/json until the process has ended; its exit code. */
static int exec_wait(docker_client *d, const char *id, long *exit_code, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof path, "/exec/%s/json", id);
    double deadline = monotonic_s() + EXEC_WAIT_S;
    while (monotonic_s() < deadline) {
        docker_reply r;
        if (docker_call(d, "GET", path, NULL, QUICK_TIMEOUT_S, &r, err, errlen) < 0)
            return -1;
        if (r.status != 200) {
            describe_engine_error(&r, "inspect exec", err, errlen);
            reply_clear(&r);
            return -1;
        }
        json_t *root = json_loadb(r.body, r.len, 0, NULL);
        bool running = json_is_true(json_object_get(root, "Running"));
        json_t *code = json_object_get(root, "ExitCode");
        bool done = root != NULL && !running && json_is_integer(code);
        if (done)
            *exit_code = (long)json_integer_value(code);
        json_decref(root);
        reply_clear(&r);
        if (done)
            return 0;
        sleep_ms(50);
    }
    snprintf(err, errlen, "tmux detach-client did not finish within %d s", EXEC_WAIT_S);
    return -1;
}

/* Runs cmd_json as claude inside the container and waits for its exit code. */
static int run_exec(docker_client *d, const char *name, const char *cmd_json, long *exit_code,
                    char *err, size_t errlen)
{
    char exec_id[128];
    *exit_code = -1;
    if (exec_create(d, name, cmd_json, exec_id, sizeof exec_id, err, errlen) < 0 ||
        exec_start_detached(d, exec_id, err, errlen) < 0 ||
        exec_wait(d, exec_id, exit_code, err, errlen) < 0)
        return -1;
    return 0;
}

/* `tmux detach-client -s claude` alone fails with "no current client" when
 * nobody is attached; guarding it with the session's attached count makes
 * "nothing to detach" a success. Still one argv, no shell. */
#define DETACH_ALL_CMD                                                                             \
    "[\"tmux\",\"if-shell\",\"-F\",\"-t\",\"claude\",\"#{session_attached}\","                     \
    "\"detach-client -s claude\"]"

int docker_detach_clients(docker_client *d, const char *uuid, char *err, size_t errlen)
{
    if (!uuid_v4_is_valid(uuid)) {
        snprintf(err, errlen, "invalid id \"%s\"", uuid);
        return -1;
    }
    char name[64];
    container_name(name, sizeof name, uuid);
    long exit_code;
    if (run_exec(d, name, DETACH_ALL_CMD, &exit_code, err, errlen) < 0)
        return -1;
    if (exit_code != 0) {
        snprintf(err, errlen, "tmux detach-client failed in %s (exit %ld)", name, exit_code);
        return -1;
    }
    return 0;
}

/* A started container is usable once its entrypoint has made the claude user
 * and the tmux session: an attach or a background right after a start must
 * find them. Errors while polling mean "not yet"; a container that stops
 * means its entrypoint failed. */
static int wait_session_ready(docker_client *d, const char *name, char *err, size_t errlen)
{
    double deadline = monotonic_s() + READY_WAIT_S;
    while (monotonic_s() < deadline) {
        long exit_code;
        char ignored[256];
        if (run_exec(d, name, "[\"tmux\",\"has-session\",\"-t\",\"claude\"]", &exit_code, ignored,
                     sizeof ignored) == 0 &&
            exit_code == 0)
            return 0;
        bool exists, running;
        if (inspect_state(d, name, &exists, &running, err, errlen) < 0)
            return -1;
        if (!running) {
            snprintf(err, errlen,
                     "container %s stopped right after starting: its entrypoint failed "
                     "(is the image a convocate session image?)",
                     name);
            return -1;
        }
        sleep_ms(100);
    }
    log_warn("%s: tmux session not up after %d s; leaving it running", name, READY_WAIT_S);
    return 0;
}
