#include "shell/status_agents.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "proto/rpc.h" /* json_line */

#define ID_MAX 9

typedef struct {
    char id[ID_MAX];
    bool live;
    long long last_seen;  /* wall clock, seconds; 0 = never */
    int64_t last_seen_ms; /* monotonic */
    int heartbeat_s;
} agent_state;

struct status_agents {
    pthread_mutex_t mu; /* events come from one thread per agent connection */
    agent_state *items;
    size_t n;
};

status_agents *status_agents_new(void)
{
    status_agents *a = calloc(1, sizeof *a);
    if (a != NULL)
        pthread_mutex_init(&a->mu, NULL);
    return a;
}

void status_agents_free(status_agents *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a->items);
    free(a);
}

char *status_agent_line(const char *id, bool live, long long last_seen)
{
    char now[RFC3339_LEN], seen[RFC3339_LEN];
    rfc3339_format(time(NULL), now);
    rfc3339_format((time_t)last_seen, seen);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:{s:b, s:o}}", "type", "shell.agent", "agent_id", id,
                           "timestamp", now, "data", "live", live, "last_seen",
                           last_seen ? json_string(seen) : json_null());
    return json_line(ev);
}

/* Lock held. */
static agent_state *find_or_add(status_agents *a, const char *id)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i].id, id) == 0)
            return &a->items[i];
    if (a->n == STATUS_MAX_AGENTS || strlen(id) >= ID_MAX)
        return NULL;
    agent_state *more = realloc(a->items, (a->n + 1) * sizeof *more);
    if (more == NULL)
        return NULL;
    a->items = more;
    agent_state *s = &a->items[a->n++];
    memset(s, 0, sizeof *s);
    memcpy(s->id, id, strlen(id) + 1);
    s->heartbeat_s = STATUS_DEFAULT_HEARTBEAT_S;
    return s;
}

int status_agents_register(status_agents *a, const char *id, int64_t now_ms)
{
    pthread_mutex_lock(&a->mu);
    agent_state *s = find_or_add(a, id);
    /* Counted as live from our own start: "silent" means no event for 3
     * heartbeats, and a freshly started listener has not waited that long. */
    if (s != NULL && s->last_seen == 0) {
        s->live = true;
        s->last_seen_ms = now_ms;
    }
    pthread_mutex_unlock(&a->mu);
    return s ? 0 : -1;
}

char *status_agents_seen(status_agents *a, const char *id, int heartbeat_s, bool gone,
                         int64_t now_ms)
{
    char *line = NULL;
    pthread_mutex_lock(&a->mu);
    agent_state *s = find_or_add(a, id);
    if (s != NULL) {
        s->last_seen = (long long)time(NULL);
        s->last_seen_ms = now_ms;
        if (heartbeat_s > 0)
            s->heartbeat_s = heartbeat_s;
        bool live = !gone;
        if (live != s->live) {
            s->live = live;
            log_info("agent %s is %s", s->id, live ? "live" : "gone (shutdown)");
            line = status_agent_line(s->id, s->live, s->last_seen);
        }
    }
    pthread_mutex_unlock(&a->mu);
    return line;
}

static int append(char **buf, size_t *len, const char *line)
{
    size_t add = strlen(line);
    char *more = realloc(*buf, *len + add + 1);
    if (more == NULL)
        return -1;
    memcpy(more + *len, line, add + 1);
    *buf = more;
    *len += add;
    return 0;
}

char *status_agents_check(status_agents *a, int64_t now_ms)
{
    char *buf = NULL;
    size_t len = 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->n; i++) {
        agent_state *s = &a->items[i];
        int64_t quiet = (int64_t)s->heartbeat_s * STATUS_SILENT_AFTER_BEATS * 1000;
        if (!s->live || now_ms - s->last_seen_ms < quiet)
            continue;
        s->live = false;
        log_warn("agent %s is silent: no event for %d heartbeats of %d s", s->id,
                 STATUS_SILENT_AFTER_BEATS, s->heartbeat_s);
        char *line = status_agent_line(s->id, false, s->last_seen);
        if (line == NULL || append(&buf, &len, line) < 0)
            log_error("agent %s: out of memory for its shell.agent event", s->id);
        free(line);
    }
    pthread_mutex_unlock(&a->mu);
    return buf;
}

void status_agents_each(status_agents *a, void (*fn)(const char *line, size_t len, void *ctx),
                        void *ctx)
{
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->n; i++) {
        char *line = status_agent_line(a->items[i].id, a->items[i].live, a->items[i].last_seen);
        if (line != NULL)
            fn(line, strlen(line), ctx);
        free(line);
    }
    pthread_mutex_unlock(&a->mu);
}
