#include "shell/status_feed.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/array.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "common/unix_listen.h"

#define TICK_MS 1000

typedef struct {
    int fd;
    unsigned id;
    char *buf;  /* bytes queued for this subscriber: buf[off..len) */
    size_t off; /* sent so far; a partial send moves this, not the bytes */
    size_t len, cap;
    bool dead; /* overflowed or hung up: closed by the feed thread */
} subscriber;

struct status_feed {
    char path[PATH_BUF];
    int listen_fd;
    int wake[2]; /* non-blocking pipe: publishers and stop() poke the thread */
    pthread_t thread;
    bool started;
    volatile sig_atomic_t stopping;
    pthread_mutex_t mu; /* guards every subscriber's buffer and the list */
    subscriber *subs[FEED_MAX_SUBSCRIBERS];
    size_t nsubs;
    unsigned next_id;
    feed_greeter greet;
    feed_ticker tick;
    void *ctx;
};

status_feed *status_feed_open(const char *path, gid_t gid, feed_greeter greet, feed_ticker tick,
                              void *ctx, char *err, size_t errlen)
{
    status_feed *f = calloc(1, sizeof *f);
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->listen_fd = f->wake[0] = f->wake[1] = -1;
    f->greet = greet;
    f->tick = tick;
    f->ctx = ctx;
    pthread_mutex_init(&f->mu, NULL);
    snprintf(f->path, sizeof f->path, "%s", path);
    if (pipe2(f->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        status_feed_free(f);
        return NULL;
    }
    f->listen_fd = unix_listen(f->path, gid, 16, "feed socket", err, errlen);
    if (f->listen_fd < 0) {
        status_feed_free(f);
        return NULL;
    }
    return f;
}

/* Appends to one subscriber's queue; lock held. Overflow marks it dead. */
static void queue_for(subscriber *s, const char *line, size_t len)
{
    if (s->dead)
        return;
    size_t queued = s->len - s->off;
    if (queued + len > FEED_SUBSCRIBER_BUFFER) {
        log_warn("feed subscriber %u is too slow (%zu bytes queued): dropping it", s->id, queued);
        s->dead = true;
        return;
    }
    if (s->len + len > s->cap && s->off > 0) {
        memmove(s->buf, s->buf + s->off, queued); /* once per refill, not per send */
        s->off = 0;
        s->len = queued;
    }
    if (grow_array(&s->buf, &s->cap, s->len + len, 1, 4096) < 0) {
        log_error("feed subscriber %u: out of memory: dropping it", s->id);
        s->dead = true;
        return;
    }
    memcpy(s->buf + s->len, line, len);
    s->len += len;
}

static void poke(status_feed *f)
{
    char b = 1;
    ssize_t n = write(f->wake[1], &b, 1); /* a full pipe already wakes the thread */
    (void)n;
}

/* The thread needs a poke only for a subscriber whose queue was empty: one
 * with bytes queued is already watched for POLLOUT, or is about to be
 * flushed by the round that emptied the wake pipe. So a burst costs one
 * wake-up, not one write per event. */
void status_feed_publish(status_feed *f, const char *line, size_t len)
{
    bool wake = false;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nsubs; i++) {
        subscriber *s = f->subs[i];
        wake |= !s->dead && s->len == s->off;
        queue_for(s, line, len);
    }
    pthread_mutex_unlock(&f->mu);
    if (wake)
        poke(f);
}

void status_feed_greet_line(status_feed *f, void *sub, const char *line, size_t len)
{
    queue_for(sub, line, len);
}

static void accept_subscriber(status_feed *f)
{
    int fd = accept4(f->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    subscriber *s = calloc(1, sizeof *s);
    pthread_mutex_lock(&f->mu);
    if (s == NULL || f->nsubs == FEED_MAX_SUBSCRIBERS) {
        pthread_mutex_unlock(&f->mu);
        log_warn("feed: refusing a subscriber (%s)", s ? "too many subscribers" : "out of memory");
        free(s);
        close(fd);
        return;
    }
    s->fd = fd;
    s->id = ++f->next_id;
    if (f->greet)
        f->greet(f, s, f->ctx);
    f->subs[f->nsubs++] = s;
    pthread_mutex_unlock(&f->mu);
    log_debug("feed subscriber %u connected", s->id);
}

/* Subscribers only talk by hanging up; anything they send is discarded. */
static void read_subscriber(subscriber *s)
{
    char buf[512];
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        s->dead = true;
}

static void flush_subscriber(subscriber *s)
{
    if (s->dead || s->len == s->off)
        return;
    ssize_t n = send(s->fd, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            s->dead = true;
        return;
    }
    s->off += (size_t)n;
    if (s->off == s->len)
        s->off = s->len = 0;
}

static void reap_dead(status_feed *f)
{
    pthread_mutex_lock(&f->mu);
    size_t kept = 0;
    for (size_t i = 0; i < f->nsubs; i++) {
        subscriber *s = f->subs[i];
        if (!s->dead) {
            f->subs[kept++] = s;
            continue;
        }
        log_debug("feed subscriber %u gone", s->id);
        close(s->fd);
        free(s->buf);
        free(s);
    }
    f->nsubs = kept;
    pthread_mutex_unlock(&f->mu);
}

static void serve_round(status_feed *f, int timeout_ms)
{
    struct pollfd pfd[FEED_MAX_SUBSCRIBERS + 2];
    size_t n = 0;
    pfd[n++] = (struct pollfd){.fd = f->listen_fd, .events = POLLIN};
    pfd[n++] = (struct pollfd){.fd = f->wake[0], .events = POLLIN};
    /* Only this thread adds or removes subscribers, so indices stay valid. */
    pthread_mutex_lock(&f->mu);
    size_t nsubs = f->nsubs;
    for (size_t i = 0; i < nsubs; i++)
        pfd[n++] =
            (struct pollfd){.fd = f->subs[i]->fd,
                            .events = POLLIN | (f->subs[i]->len > f->subs[i]->off ? POLLOUT : 0)};
    pthread_mutex_unlock(&f->mu);
    if (poll(pfd, n, timeout_ms) < 0 && errno != EINTR)
        log_error("feed: poll: %s", strerror(errno));
    if (pfd[1].revents & POLLIN) {
        char drain[256];
        while (read(f->wake[0], drain, sizeof drain) > 0) {
        }
    }
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < nsubs; i++) {
        subscriber *s = f->subs[i];
        short re = pfd[i + 2].revents;
        if (re & POLLIN)
            read_subscriber(s);
        else if (re & (POLLHUP | POLLERR))
            s->dead = true;
        flush_subscriber(s);
    }
    pthread_mutex_unlock(&f->mu);
    reap_dead(f);
    if (pfd[0].revents & POLLIN)
        accept_subscriber(f);
}

static void *feed_thread(void *arg)
{
    status_feed *f = arg;
    int64_t next_tick = monotonic_ms() + TICK_MS;
    while (!f->stopping) {
        int64_t now = monotonic_ms();
        if (now >= next_tick) {
            if (f->tick)
                f->tick(f, f->ctx);
            next_tick = now + TICK_MS;
        }
        serve_round(f, (int)(next_tick - now > 0 ? next_tick - now : 0));
    }
    return NULL;
}

int status_feed_start(status_feed *f, char *err, size_t errlen)
{
    int rc = pthread_create(&f->thread, NULL, feed_thread, f);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the feed thread: %s", strerror(rc));
        return -1;
    }
    f->started = true;
    return 0;
}

void status_feed_stop(status_feed *f)
{
    f->stopping = 1;
    char b = 0;
    ssize_t n = write(f->wake[1], &b, 1);
    (void)n;
}

void status_feed_free(status_feed *f)
{
    if (f == NULL)
        return;
    if (f->started) {
        status_feed_stop(f);
        pthread_join(f->thread, NULL);
    }
    for (size_t i = 0; i < f->nsubs; i++) {
        close(f->subs[i]->fd);
        free(f->subs[i]->buf);
        free(f->subs[i]);
    }
    if (f->listen_fd >= 0) {
        close(f->listen_fd);
        unlink(f->path);
    }
    if (f->wake[0] >= 0)
        close(f->wake[0]);
    if (f->wake[1] >= 0)
        close(f->wake[1]);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
