/* The attach terminal through the Engine API (see exec_tty.h).
 *
 * libcurl cannot hand over a connection after an HTTP exchange in a way
 * that keeps both directions usable, so the one request that upgrades the
 * connection, POST /exec/<id>/start, is written by hand on our own unix
 * socket; every other call goes through docker_call(). */
#include "engine/exec_tty.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "engine/docker_internal.h"

#define HIJACK_TIMEOUT_MS 15000
#define HTTP_HEAD_MAX 8192
#define CGROUP_READ_MAX 8192
#define CONTAINER_ID_LEN 64

/* Sets the size before tmux starts, so tmux's first frame already fits. The
 * size arrives as positional parameters: the script itself is a constant. */
#define ATTACH_SCRIPT "stty cols \"$1\" rows \"$2\"; exec tmux attach-session -t claude"

static bool is_hex_id(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n < max && strspn(s, "0123456789abcdef") == n;
}

static bool size_valid(int cols, int rows)
{
    return cols >= 1 && rows >= 1 && cols <= EXEC_TTY_SIZE_MAX && rows <= EXEC_TTY_SIZE_MAX;
}

static char *tty_exec_body(int cols, int rows)
{
    char c[16], r[16];
    snprintf(c, sizeof c, "%d", cols);
    snprintf(r, sizeof r, "%d", rows);
    json_t *body =
        json_pack("{s:s, s:b, s:b, s:b, s:b, s:[s], s:[s,s,s,s,s,s]}", "User", "claude",
                  "AttachStdin", 1, "AttachStdout", 1, "AttachStderr", 1, "Tty", 1, "Env",
                  "TERM=xterm-256color", "Cmd", "sh", "-c", ATTACH_SCRIPT, "sh", c, r);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

static int create_tty_exec(docker_client *d, const char *name, int cols, int rows, char *id,
                           size_t idlen, char *err, size_t errlen)
{
    char *body = tty_exec_body(cols, rows);
    if (body == NULL) {
        snprintf(err, errlen, "out of memory building the attach exec");
        return -1;
    }
    int rc = exec_create(d, name, body, id, idlen, err, errlen);
    free(body);
    return rc;
}

/* ---- the hijacked start ---- */

static int connect_engine(docker_client *d, char *err, size_t errlen)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", docker_socket_path(d));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        snprintf(err, errlen, "docker engine unreachable at %s: %s (is dockerd running?)",
                 addr.sun_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Waits for fd to be ready for events until deadline_ms (monotonic). */
static bool wait_ready(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - monotonic_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline_ms)
{
    while (len > 0) {
        if (!wait_ready(fd, POLLOUT, deadline_ms))
            return -1;
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the HTTP answer's head (bounded); what follows it is the stream's
 * first bytes, kept in t->early. */
static int read_upgrade_answer(int fd, docker_tty *t, int64_t deadline_ms, char *err, size_t errlen)
{
    char head[HTTP_HEAD_MAX + 1];
    size_t used = 0;
    char *end = NULL;
    while (end == NULL) {
        if (used == HTTP_HEAD_MAX) {
            snprintf(err, errlen, "docker engine sent an HTTP head over %d bytes", HTTP_HEAD_MAX);
            return -1;
        }
        if (!wait_ready(fd, POLLIN, deadline_ms)) {
            snprintf(err, errlen, "docker engine did not answer the attach in time");
            return -1;
        }
        ssize_t n = recv(fd, head + used, HTTP_HEAD_MAX - used, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "docker engine closed the attach before answering");
            return -1;
        }
        used += (size_t)n;
        head[used] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || (status != 101 && status != 200)) {
        snprintf(err, errlen, "docker engine refused the attach (HTTP %d)", status);
        return -1;
    }
    size_t rest = used - (size_t)(end + 4 - head);
    if (rest > sizeof t->early)
        rest = sizeof t->early; /* cannot happen: head is smaller than early */
    memcpy(t->early, end + 4, rest);
    t->early_len = rest;
    return 0;
}

static int hijack_start(docker_client *d, docker_tty *t, char *err, size_t errlen)
{
    static const char body[] = "{\"Detach\":false,\"Tty\":true}";
    char request[512];
    int len = snprintf(request, sizeof request,
                       "POST /v1.41/exec/%s/start HTTP/1.1\r\nHost: docker\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                       "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n%s",
                       t->exec_id, sizeof body - 1, body);
    if (len < 0 || len >= (int)sizeof request) {
        snprintf(err, errlen, "attach request too long");
        return -1;
    }
    int fd = connect_engine(d, err, errlen);
    if (fd < 0)
        return -1;
    int flags = fcntl(fd, F_GETFL);
    int64_t deadline = monotonic_ms() + HIJACK_TIMEOUT_MS;
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        send_all(fd, request, (size_t)len, deadline) < 0) {
        snprintf(err, errlen, "cannot send the attach to the docker engine: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (read_upgrade_answer(fd, t, deadline, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    t->fd = fd;
    return 0;
}

int docker_tty_open(docker_client *d, const char *uuid, int cols, int rows, docker_tty *t,
                    char *err, size_t errlen)
{
    char name[ENGINE_CONTAINER_NAME_LEN];
    memset(t->exec_id, 0, sizeof t->exec_id);
    t->fd = -1;
    t->early_len = 0;
    if (session_container(uuid, name, err, errlen) < 0)
        return -1;
    if (!size_valid(cols, rows)) {
        snprintf(err, errlen, "invalid terminal size %dx%d", cols, rows);
        return -1;
    }
    if (create_tty_exec(d, name, cols, rows, t->exec_id, sizeof t->exec_id, err, errlen) < 0)
        return -1;
    if (hijack_start(d, t, err, errlen) < 0) {
        t->exec_id[0] = '\0';
        return -1;
    }
    return 0;
}

int docker_tty_resize(docker_client *d, const char *exec_id, int cols, int rows, char *err,
                      size_t errlen)
{
    static const long ok[] = {200, 201, 0};
    if (!is_hex_id(exec_id, EXEC_TTY_ID_MAX) || !size_valid(cols, rows)) {
        snprintf(err, errlen, "invalid resize %dx%d", cols, rows);
        return -1;
    }
    char path[256];
    snprintf(path, sizeof path, "/exec/%s/resize?h=%d&w=%d", exec_id, rows, cols);
    return docker_expect(d, "POST", path, NULL, QUICK_TIMEOUT_S, ok, NULL, "resize terminal", err,
                         errlen);
}

/* ---- the end of a stream ---- */

typedef struct {
    bool known; /* the engine answered 200 */
    bool running;
    long pid;
    char container_id[CONTAINER_ID_LEN + 1];
} exec_state;

/* GET /exec/<id>/json; -1 when the engine could not be reached. */
static int inspect_exec(docker_client *d, const char *exec_id, exec_state *s)
{
    char path[256], err[256];
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "/exec/%s/json", exec_id);
    docker_reply r;
    if (docker_call(d, "GET", path, NULL, QUICK_TIMEOUT_S, &r, err, sizeof err) < 0)
        return -1;
    if (r.status == 200) {
        json_t *root = json_loadb(r.body, r.len, 0, NULL);
        const char *cid = json_string_value(json_object_get(root, "ContainerID"));
        json_t *pid = json_object_get(root, "Pid");
        s->known = root != NULL;
        s->running = json_is_true(json_object_get(root, "Running"));
        s->pid = json_is_integer(pid) ? (long)json_integer_value(pid) : 0;
        if (cid != NULL && strlen(cid) == CONTAINER_ID_LEN && is_hex_id(cid, CONTAINER_ID_LEN + 1))
            memcpy(s->container_id, cid, CONTAINER_ID_LEN + 1);
        json_decref(root);
    }
    reply_clear(&r);
    return 0;
}

docker_tty_end docker_tty_why_ended(docker_client *d, const char *uuid, const char *exec_id)
{
    exec_state s;
    char name[ENGINE_CONTAINER_NAME_LEN], err[256];
    if (inspect_exec(d, exec_id, &s) < 0 || !s.known)
        return TTY_END_ENGINE_GONE; /* unreachable, or restarted: execs live in its memory */
    bool exists, running;
    if (session_container(uuid, name, err, sizeof err) < 0 ||
        inspect_state(d, name, &exists, &running, err, sizeof err) < 0)
        return TTY_END_ENGINE_GONE;
    return running ? TTY_END_DETACHED : TTY_END_CONTAINER_ENDED;
}

/* Whether host pid is a process of container_id: the engine reports exec
 * pids in the host's pid namespace, which is ours only when we run beside
 * the engine; the cgroup path naming the container proves it. */
static bool pid_in_container(long pid, const char *container_id)
{
    char path[64], buf[CGROUP_READ_MAX + 1];
    snprintf(path, sizeof path, "/proc/%ld/cgroup", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, CGROUP_READ_MAX);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strstr(buf, container_id) != NULL;
}

void docker_tty_close(docker_client *d, docker_tty *t)
{
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    if (t->exec_id[0] == '\0')
        return;
    /* The engine leaves an exec running when its stream closes: without this
     * the tmux client stays attached, counted and sized, with nobody behind. */
    exec_state s;
    if (inspect_exec(d, t->exec_id, &s) == 0 && s.running && s.pid > 1 &&
        s.container_id[0] != '\0') {
        if (pid_in_container(s.pid, s.container_id))
            kill((pid_t)s.pid, SIGHUP);
        else
            log_warn("attach exec %.12s still runs and its pid %ld is not visible here; it "
                     "ends with the container",
                     t->exec_id, s.pid);
    }
    t->exec_id[0] = '\0';
}
