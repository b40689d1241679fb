/* The container engine driver: Docker Engine API v1.41 over the unix socket.
 *
 * Every call makes its own curl easy handle, so the driver holds no mutable
 * state shared between threads; the client object is only the socket path.
 * Every call has a connect timeout and an overall timeout, and every response
 * body is capped, so a wedged or hostile engine costs a bounded wait and
 * bounded memory. */
#include "engine/docker_internal.h"

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
#define SYSLOG_SOCKET "/dev/log"

struct docker_client {
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

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

const char *docker_socket_path(const docker_client *d)
{
    return d->socket_path;
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

void reply_clear(docker_reply *r)
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
int docker_call(docker_client *d, const char *method, const char *path, const char *json_body,
                long timeout_s, docker_reply *reply, char *err, size_t errlen)
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
void describe_engine_error(const docker_reply *r, const char *what, char *err, size_t errlen)
{
    json_t *root = json_loadb(r->body, r->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(root, "message"));
    if (msg != NULL && *msg != '\0')
        snprintf(err, errlen, "%s: %s", what, msg);
    else
        snprintf(err, errlen, "%s: docker engine answered HTTP %ld", what, r->status);
    json_decref(root);
}

int docker_expect(docker_client *d, const char *method, const char *path, const char *json_body,
                  long timeout_s, const long ok[], long *status, const char *what, char *err,
                  size_t errlen)
{
    docker_reply r;
    if (docker_call(d, method, path, json_body, timeout_s, &r, err, errlen) < 0)
        return -1;
    size_t i = 0;
    while (ok[i] != 0 && ok[i] != r.status)
        i++;
    int rc = ok[i] != 0 ? 0 : -1;
    if (rc < 0)
        describe_engine_error(&r, what, err, errlen);
    else if (status != NULL)
        *status = r.status;
    reply_clear(&r);
    return rc;
}

int docker_ping(docker_client *d, char *err, size_t errlen)
{
    static const long ok[] = {200, 0};
    return docker_expect(d, "GET", "/_ping", NULL, QUICK_TIMEOUT_S, ok, NULL, "docker ping", err,
                         errlen);
}

/* ---- run contract ------------------------------------------------------ */

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
        add_mount(mounts, s->activity, "/run/convocate/activity", false) < 0 ||
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

/* What runs inside a session is untrusted (SPEC 14), so it gets only the
 * capabilities a session needs and none of Docker's other defaults. Kept:
 * the entrypoint makes the claude user and hands the home to it (CHOWN,
 * DAC_OVERRIDE, FOWNER), drops to it with runuser and lets it sudo
 * (SETUID, SETGID, AUDIT_WRITE), stops Claude on docker stop (KILL), and a
 * session's service may bind a port below 1024 (NET_BIND_SERVICE). Dropped:
 * MKNOD (no device nodes in a home the host can see), NET_RAW (no forged
 * packets), FSETID, SETFCAP, SETPCAP and SYS_CHROOT. docs/decisions.md
 * lists the same. */
static json_t *session_capabilities(void)
{
    return json_pack("[s,s,s,s,s,s,s,s]", "CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID",
                     "AUDIT_WRITE", "KILL", "NET_BIND_SERVICE");
}

static json_t *session_host_config(const docker_run_spec *s, const char *name)
{
    json_t *hc =
        json_pack("{s:b, s:b, s:o*, s:[s], s:o*}", "AutoRemove", 1, "Privileged", 0, "Mounts",
                  session_mounts(s), "CapDrop", "ALL", "CapAdd", session_capabilities());
    if (hc == NULL || json_object_get(hc, "Mounts") == NULL ||
        json_object_get(hc, "CapAdd") == NULL || add_limits(hc, s) != 0 ||
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

int remove_container(docker_client *d, const char *name, char *err, size_t errlen)
{
    /* 409: removal already in progress (AutoRemove got there first). */
    static const long ok[] = {204, 404, 409, 0};
    char path[256];
    snprintf(path, sizeof path, "/containers/%s?force=1", name);
    return docker_expect(d, "DELETE", path, NULL, QUICK_TIMEOUT_S, ok, NULL, "remove container",
                         err, errlen);
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
    static const long ok[] = {204, 304, 0};
    char path[256];
    snprintf(path, sizeof path, "/containers/%s/start", name);
    return docker_expect(d, "POST", path, NULL, CREATE_TIMEOUT_S, ok, NULL, "start container", err,
                         errlen);
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
    char name[ENGINE_CONTAINER_NAME_LEN];
    engine_container_name(spec->uuid, name);
    char *body = session_create_body(spec, name);
    if (body == NULL) {
        snprintf(err, errlen, "out of memory building the container spec");
        return -1;
    }
    int rc = create_container(d, spec, name, body, err, errlen);
    free(body);
    if (rc < 0)
        return -1;
    log_debug("%s: created", name); /* the log's timestamps time each step */
    if (start_container(d, name, err, errlen) < 0) {
        /* Leave nothing behind: a never-started container is not auto-removed. */
        char ignored[256];
        if (remove_container(d, name, ignored, sizeof ignored) < 0)
            log_warn("%s: %s", name, ignored);
        return -1;
    }
    log_debug("%s: started; waiting for its tmux session", name);
    if (wait_session_ready(d, name, err, errlen) < 0)
        return -1;
    log_info("started %s (image %s)", name, spec->image);
    return 0;
}
