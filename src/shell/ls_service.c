/* See ls_service.h. */
#include "shell/ls_service.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "common/unix_listen.h"
#include "shell/session_json.h"
#include "shell/sessions.h"
#include "ssh/registry.h"

/* A client that connects and says nothing, or stops reading, holds the
 * service (and every client behind it) at most this long. */
#define REQUEST_TIMEOUT_S 5
#define ANSWER_TIMEOUT_S 30

struct ls_service {
    char path[PATH_BUF];
    int listen_fd;
    int wake[2]; /* stop() writes here */
    pthread_t thread;
    agent_registry registry; /* its agents' connections stay open between calls */
    uint64_t registry_stamp; /* of the agent-keys directory it was loaded from */
    bool registry_loaded;
};

/* ---- which agents ------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* A digest of the agent-keys directory: each agent directory's name, inode
 * and change time. init-agent and its removal add or remove a directory, and
 * every file in one is replaced by rename, which moves the directory's
 * times: so a registration changes the stamp and nothing else does. */
static uint64_t registry_stamp(void)
{
    uint64_t h = 14695981039346656037ULL;
    char dir[PATH_BUF], sub[PATH_BUF];
    if (root_path(dir, sizeof dir, "/etc/convocate/agent-keys") < 0)
        return h;
    DIR *d = opendir(dir);
    if (d == NULL)
        return fnv1a(h, &errno, sizeof errno);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' ||
            snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) >= (int)sizeof sub ||
            stat(sub, &st) < 0)
            continue;
        /* readdir's order may change with no change of content: add the
         * entries' digests rather than chaining them. */
        uint64_t e = fnv1a(14695981039346656037ULL, de->d_name, strlen(de->d_name));
        e = fnv1a(e, &st.st_ino, sizeof st.st_ino);
        e = fnv1a(e, &st.st_mtim, sizeof st.st_mtim);
        e = fnv1a(e, &st.st_ctim, sizeof st.st_ctim);
        h += e;
    }
    closedir(d);
    return h;
}

/* Reloads the registry when the agents registered changed since the last
 * call; the held connections of a reloaded registry are closed. */
static int fresh_registry(ls_service *s, char *err, size_t errlen)
{
    uint64_t stamp = registry_stamp();
    if (s->registry_loaded && stamp == s->registry_stamp)
        return 0;
    if (s->registry_loaded)
        registry_free(&s->registry);
    s->registry_loaded = false;
    if (registry_load(&s->registry, err, errlen) < 0)
        return -1;
    s->registry_loaded = true;
    s->registry_stamp = stamp;
    log_info("ls service: %zu agent%s registered", s->registry.n, s->registry.n == 1 ? "" : "s");
    return 0;
}

/* ---- one client --------------------------------------------------------- */

static void answer_error(int fd, const char *text)
{
    json_t *a = json_pack("{s:b, s:s}", "ok", 0, "error", text);
    char *line = a ? json_dumps(a, JSON_COMPACT) : NULL;
    if (line != NULL && (write_all(fd, line, strlen(line)) < 0 || write_all(fd, "\n", 1) < 0))
        log_debug("ls service: the client left before the error \"%s\"", text);
    free(line);
    json_decref(a);
}

/* Reads the request line; true when it asks for what we serve. */
static bool read_request(int fd, char *err, size_t errlen)
{
    char buf[LS_REQUEST_MAX + 1];
    size_t len = 0;
    while (len < LS_REQUEST_MAX && memchr(buf, '\n', len) == NULL) {
        ssize_t r = read(fd, buf + len, LS_REQUEST_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                snprintf(err, errlen, "no request line: the client hung up");
            else
                snprintf(err, errlen, "no request line: the client said nothing for %d s",
                         REQUEST_TIMEOUT_S);
            return false;
        }
        len += (size_t)r;
    }
    char *nl = memchr(buf, '\n', len);
    if (nl == NULL) {
        snprintf(err, errlen, "the request is longer than %d bytes", LS_REQUEST_MAX);
        return false;
    }
    json_error_t jerr;
    json_t *req = json_loadb(buf, (size_t)(nl - buf), 0, &jerr);
    const char *op = json_string_value(json_object_get(req, "op"));
    const char *format = json_string_value(json_object_get(req, "format"));
    bool ok = op && format && strcmp(op, "ls") == 0 && strcmp(format, "json") == 0;
    if (!ok)
        snprintf(err, errlen,
                 "unknown request: this service answers {\"op\":\"ls\",\"format\":"
                 "\"json\"}");
    json_decref(req);
    return ok;
}

/* The header line: the body's length and count, and ls's stderr text. */
static char *header_line(ls_service *s, cluster_list *l)
{
    char *warnings = NULL;
    size_t warnings_len = 0;
    FILE *w = open_memstream(&warnings, &warnings_len);
    if (w == NULL)
        return NULL;
    cluster_list_warn(&s->registry, l, w);
    if (fclose(w) != 0) {
        free(warnings);
        return NULL;
    }
    json_t *h = json_pack("{s:b, s:I, s:I, s:I, s:s}", "ok", 1, "bytes",
                          (json_int_t)session_json_length(l->texts, l->n_texts), "agents",
                          (json_int_t)s->registry.n, "sessions", (json_int_t)l->n_texts, "stderr",
                          warnings);
    free(warnings);
    char *line = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    return line;
}

static void answer_list(ls_service *s, int fd)
{
    char err[512];
    if (fresh_registry(s, err, sizeof err) < 0) {
        answer_error(fd, err);
        return;
    }
    for (size_t i = 0; i < s->registry.n; i++)
        pinned_peer_allow_dial(s->registry.items[i].peer);
    int64_t began = monotonic_ms();
    cluster_list l;
    char *header = NULL;
    FILE *out = NULL;
    unsigned flags = CLUSTER_LIST_RENDER_JSON | CLUSTER_LIST_NO_NAMES;
    if (cluster_list_load_with(&s->registry, &l, flags) < 0 ||
        (header = header_line(s, &l)) == NULL) {
        answer_error(fd, "status-serve is out of memory");
        goto done;
    }
    int body_fd = dup(fd);
    if (body_fd < 0 || (out = fdopen(body_fd, "w")) == NULL) {
        if (body_fd >= 0)
            close(body_fd);
        answer_error(fd, "status-serve is out of file descriptors");
        goto done;
    }
    if (write_all(fd, header, strlen(header)) < 0 || write_all(fd, "\n", 1) < 0 ||
        cluster_list_print_json(&l, out) < 0)
        log_debug("ls service: the client left before the whole list was written");
    log_debug("ls service: %zu sessions from %zu agents in %lld ms", l.n_texts, s->registry.n,
              (long long)(monotonic_ms() - began));
done:
    if (out != NULL)
        fclose(out);
    free(header);
    cluster_list_free(&l);
    malloc_trim(0); /* ten thousand decoded sessions were just freed */
}

static void serve_client(ls_service *s, int fd)
{
    struct timeval rcv = {.tv_sec = REQUEST_TIMEOUT_S}, snd = {.tv_sec = ANSWER_TIMEOUT_S};
    char err[256];
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof snd) < 0)
        return; /* without the timeouts one client could hold the service */
    if (!read_request(fd, err, sizeof err)) {
        answer_error(fd, err);
        return;
    }
    if (write_all(fd, LS_ACK, strlen(LS_ACK)) < 0)
        return; /* the client gave up already */
    answer_list(s, fd);
}

static void *service_thread(void *arg)
{
    ls_service *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_warn("ls service: poll: %s; `convocate ls` now dials the agents itself",
                     strerror(errno));
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue; /* gone before we took it, or out of descriptors for now */
        serve_client(s, fd);
        close(fd);
    }
}

/* ---- start and stop ----------------------------------------------------- */

ls_service *ls_service_start(const char *path, gid_t gid, char *err, size_t errlen)
{
    ls_service *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->wake[0] = s->wake[1] = -1;
    snprintf(s->path, sizeof s->path, "%s", path);
    s->listen_fd = unix_listen(path, gid, 16, "ls socket", err, errlen);
    if (s->listen_fd < 0) {
        free(s);
        return NULL;
    }
    if (pipe2(s->wake, O_CLOEXEC) < 0 || pthread_create(&s->thread, NULL, service_thread, s) != 0) {
        snprintf(err, errlen, "ls service: cannot start its thread: %s", strerror(errno));
        close(s->listen_fd);
        unlink(s->path);
        if (s->wake[0] >= 0) {
            close(s->wake[0]);
            close(s->wake[1]);
        }
        free(s);
        return NULL;
    }
    return s;
}

void ls_service_stop(ls_service *s)
{
    if (s == NULL)
        return;
    if (write(s->wake[1], "", 1) < 0)
        log_warn("ls service: cannot wake its thread: %s", strerror(errno));
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    unlink(s->path);
    close(s->wake[0]);
    close(s->wake[1]);
    if (s->registry_loaded)
        registry_free(&s->registry);
    free(s);
}
