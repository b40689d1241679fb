/* The narrow libssh server of SPEC 5: set-up (host key, key policy, bound
 * socket), the accept loop that gives each connection its own thread, and
 * the stop. The rest of the listener is in the files listener_internal.h
 * names. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "ssh/listener_internal.h"

#define ED25519_ONLY "ssh-ed25519"

/* ---------- small helpers ---------- */

void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void listener_forget(listener *l, lconn *c)
{
    pthread_mutex_lock(&l->mu);
    for (lconn **link = &l->conns; *link != NULL; link = &(*link)->next) {
        if (*link == c) {
            *link = c->next;
            break;
        }
    }
    l->nconns--;
    admission_leave(l, c);
    pthread_cond_broadcast(&l->idle);
    pthread_mutex_unlock(&l->mu);
}

/* ---------- accepting ---------- */

/* The source address alone (an IPv4 peer on a dual-stack socket written as
 * IPv4, so budgets and from= patterns see one spelling) and "ip:port". */
static void format_peer(const struct sockaddr_storage *ss, char *ip, size_t ipsize, char *out,
                        size_t size)
{
    int port = 0;
    snprintf(ip, ipsize, "?");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)ipsize);
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
            inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, (socklen_t)ipsize);
        else
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)ipsize);
        port = ntohs(sin6->sin6_port);
    }
    snprintf(out, size, "%s:%d", ip, port);
}

static lconn *connection_new(listener *l, int fd, const char *ip, const char *peer)
{
    lconn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->l = l;
    c->fd = fd;
    c->wake[0] = c->wake[1] = -1;
    admission_start(c);
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    if (pipe2(c->wake, O_CLOEXEC) < 0 || fcntl(c->wake[0], F_SETFL, O_NONBLOCK) < 0)
        goto fail;
    c->session = ssh_new();
    if (c->session == NULL)
        goto fail;
    if (ssh_bind_accept_fd(l->bind, c->session, fd) != SSH_OK) {
        log_error("cannot hand %s to libssh: %s", c->peer, ssh_get_error(l->bind));
        goto fail;
    }
    return c;
fail:
    if (c->session != NULL) {
        ssh_free(c->session);
        c->session = NULL;
    }
    close_fd(&c->wake[0]);
    close_fd(&c->wake[1]);
    free(c);
    return NULL;
}

static void accept_one(listener *l)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = accept4(l->listen_fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
            log_error("accept: %s", strerror(errno));
            sleep_ms(100); /* do not spin while out of descriptors */
        }
        return;
    }
    char ip[INET6_ADDRSTRLEN], who[INET6_ADDRSTRLEN + 8];
    format_peer(&peer, ip, sizeof ip, who, sizeof who);
    if (!admission_accept(l, ip)) {
        close(fd);
        return;
    }
    /* Interactive traffic of small packets: without this, Nagle holds a
     * response's last packet for the client's delayed ACK (~40 ms a call). */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        log_debug("TCP_NODELAY: %s", strerror(errno));
    lconn *c = connection_new(l, fd, ip, who);
    if (c == NULL) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&l->mu);
    c->id = ++l->next_conn_id;
    c->next = l->conns;
    l->conns = c;
    l->nconns++;
    admission_enter(l, c);
    pthread_mutex_unlock(&l->mu);

    int rc = start_detached_thread(connection_thread, c);
    if (rc != 0) {
        log_error("cannot start a thread for %s: %s", c->peer, strerror(rc));
        listener_forget(l, c);
        connection_free(c);
    }
}

static void drain_pipe(int fd)
{
    char sink[64];
    while (read(fd, sink, sizeof sink) > 0)
        ;
}

/* Asks every connection to wind down and waits until all are gone. */
static void stop_connections(listener *l)
{
    job *stop = NULL;
    pthread_mutex_lock(&l->mu);
    for (lconn *c = l->conns; c != NULL; c = c->next) {
        atomic_store(&c->stop, true);
        if (write(c->wake[1], &stop, sizeof stop) < 0)
            log_debug("conn %u: wake: %s", c->id, strerror(errno));
        /* One still in its key exchange is not polling the pipe yet. */
        if (!atomic_load(&c->in_loop))
            shutdown(c->fd, SHUT_RDWR);
    }
    while (l->nconns > 0)
        pthread_cond_wait(&l->idle, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

int listener_run(listener *l)
{
    int rc = 0;
    struct pollfd p[3] = {{.fd = l->listen_fd, .events = POLLIN},
                          {.fd = l->stop_pipe[0], .events = POLLIN},
                          {.fd = l->summary_pipe[0], .events = POLLIN}};
    for (;;) {
        if (poll(p, 3, admission_flush_summary(l)) < 0) {
            if (errno == EINTR)
                continue;
            log_error("poll: %s", strerror(errno));
            rc = -1;
            break;
        }
        if (p[1].revents != 0)
            break;
        if (p[2].revents != 0)
            drain_pipe(l->summary_pipe[0]);
        if (p[0].revents & POLLIN)
            accept_one(l);
    }
    if (l->cfg.stopping != NULL)
        l->cfg.stopping(l->cfg.app);
    close_fd(&l->listen_fd);
    stop_connections(l);
    return rc;
}

void listener_stop(listener *l)
{
    char byte = 1;
    ssize_t n = write(l->stop_pipe[1], &byte, 1);
    (void)n; /* a full pipe already holds a stop request */
}

/* ---------- setting up ---------- */

static int bind_socket(const char *addr, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[16];
    int fd = -1;
    int saved = 0;

    snprintf(service, sizeof service, "%d", port);
    int gai = getaddrinfo(addr, service, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, gai_strerror(gai));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(saved));
    return fd;
}

static int bind_policy(listener *l, ssh_key host_key, char *err, size_t errlen)
{
    bool no = false;
    l->bind = ssh_bind_new();
    if (l->bind == NULL) {
        snprintf(err, errlen, "out of memory");
        ssh_key_free(host_key);
        return -1;
    }
    /* No system-wide libssh server config may widen the policy. */
    if (ssh_bind_options_set(l->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
        ssh_bind_options_set(l->bind, SSH_BIND_OPTIONS_IMPORT_KEY, host_key) != SSH_OK) {
        snprintf(err, errlen, "libssh refused the host key: %s", ssh_get_error(l->bind));
        ssh_key_free(host_key);
        return -1;
    }
    /* The bind owns host_key from here on. */
    if (ssh_bind_options_set(l->bind, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, ED25519_ONLY) !=
            SSH_OK ||
        ssh_bind_options_set(l->bind, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, ED25519_ONLY) !=
            SSH_OK) {
        snprintf(err, errlen, "libssh refused the key policy: %s", ssh_get_error(l->bind));
        return -1;
    }
    return 0;
}

enum listener_error listener_open(listener **out, const listener_config *cfg, char *err,
                                  size_t errlen)
{
    ssh_key host_key = NULL;
    enum listener_error rc = LISTENER_ERR_INTERNAL;
    listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    l->cfg = *cfg;
    l->listen_fd = l->stop_pipe[0] = l->stop_pipe[1] = -1;
    l->summary_pipe[0] = l->summary_pipe[1] = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->idle, NULL);
    ssh_init();
    if (host_key_load(cfg->host_key_path, &host_key, err, errlen) < 0) {
        rc = errno == ENOENT ? LISTENER_ERR_HOST_KEY_MISSING : LISTENER_ERR_HOST_KEY;
        goto fail;
    }
    if (bind_policy(l, host_key, err, errlen) < 0)
        goto fail;
    if (pipe2(l->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        pipe2(l->summary_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    l->listen_fd = bind_socket(cfg->bind_addr, cfg->port, err, errlen);
    if (l->listen_fd < 0) {
        rc = LISTENER_ERR_BIND;
        goto fail;
    }
    *out = l;
    return LISTENER_OK;
fail:
    listener_free(l);
    return rc;
}

void listener_free(listener *l)
{
    if (l == NULL)
        return;
    close_fd(&l->listen_fd);
    close_fd(&l->stop_pipe[0]);
    close_fd(&l->stop_pipe[1]);
    close_fd(&l->summary_pipe[0]);
    close_fd(&l->summary_pipe[1]);
    if (l->bind != NULL)
        ssh_bind_free(l->bind);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->idle);
    free(l);
}
