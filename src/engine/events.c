/* The engine's event stream: one long-lived GET /events, one JSON object per
 * line, split by the write callback with every line bounded. */
#include "engine/events.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/docker_internal.h"

#define EVENTS_API "http://localhost/v1.41"

/* The actions that change whether a session runs; everything else (exec_*,
 * create, destroy, attach, resize...) is filtered out by the engine. */
#define EVENT_ACTIONS "\"start\",\"die\",\"oom\",\"kill\",\"stop\""

static const struct {
    const char *name;
    docker_event_action action;
} actions[] = {{"start", DOCKER_EV_START},
               {"die", DOCKER_EV_DIE},
               {"oom", DOCKER_EV_OOM},
               {"kill", DOCKER_EV_KILL},
               {"stop", DOCKER_EV_STOP}};

/* "137" -> 137; -1 when absent or not a small decimal. */
static int small_int_attr(json_t *attrs, const char *key)
{
    const char *s = json_string_value(json_object_get(attrs, key));
    if (s == NULL || *s == '\0' || strlen(s) > 6 || strspn(s, "0123456789") != strlen(s))
        return -1;
    return atoi(s);
}

int docker_event_parse(const char *line, size_t len, docker_event *ev)
{
    memset(ev, 0, sizeof *ev);
    json_t *root = json_loadb(line, len, 0, NULL);
    const char *type = json_string_value(json_object_get(root, "Type"));
    const char *action = json_string_value(json_object_get(root, "Action"));
    json_t *attrs = json_object_get(json_object_get(root, "Actor"), "Attributes");
    const char *uuid = json_string_value(json_object_get(attrs, "convocate.session"));
    int rc = -1;
    if (type != NULL && strcmp(type, "container") == 0 && action != NULL && uuid != NULL &&
        uuid_v4_is_valid(uuid)) {
        for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
            if (strcmp(action, actions[i].name) != 0)
                continue;
            ev->action = actions[i].action;
            memcpy(ev->uuid, uuid, UUID_STR_LEN);
            ev->exit_code = small_int_attr(attrs, "exitCode");
            int sig = small_int_attr(attrs, "signal");
            ev->signal = sig < 0 ? 0 : sig;
            rc = 0;
        }
    }
    json_decref(root);
    return rc;
}

typedef struct {
    char line[DOCKER_EVENT_LINE_MAX];
    size_t used;
    bool skipping; /* inside a line that outgrew the buffer */
    bool up;
    long status;
    void (*on_up)(void *);
    void (*on_event)(const docker_event *, void *);
    void *ctx;
    atomic_bool *stop;
} stream_state;

static void take_line(stream_state *s)
{
    docker_event ev;
    if (!s->skipping && s->used > 0 && docker_event_parse(s->line, s->used, &ev) == 0)
        s->on_event(&ev, s->ctx);
    s->used = 0;
    s->skipping = false;
}

static size_t stream_bytes(char *data, size_t size, size_t nmemb, void *userp)
{
    stream_state *s = userp;
    size_t n = size * nmemb;
    if (s->status != 200)
        return n; /* an error body: read and dropped, the status says it */
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            take_line(s);
        } else if (s->used < sizeof s->line) {
            s->line[s->used++] = data[i];
        } else {
            s->skipping = true;
        }
    }
    return n;
}

/* Runs at the end of every header line; the empty one ends the head. */
static size_t stream_header(char *data, size_t size, size_t nmemb, void *userp)
{
    stream_state *s = userp;
    size_t n = size * nmemb;
    if (strncmp(data, "HTTP/", 5) == 0 && sscanf(data, "HTTP/%*s %ld", &s->status) != 1)
        s->status = 0;
    if (n <= 2 && !s->up && s->status == 200) {
        s->up = true;
        if (s->on_up)
            s->on_up(s->ctx);
    }
    return n;
}

/* Called about once a second even when nothing flows: the way to stop. */
static int stream_progress(void *userp, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    stream_state *s = userp;
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(s->stop) ? 1 : 0;
}

static char *events_url(const char *agent_id, double since_s)
{
    char filter[256];
    if (snprintf(filter, sizeof filter,
                 "{\"type\":[\"container\"],\"label\":[\"convocate.agent=%s\"],"
                 "\"event\":[" EVENT_ACTIONS "]}",
                 agent_id) >= (int)sizeof filter)
        return NULL;
    char *escaped = curl_easy_escape(NULL, filter, 0);
    char *url = NULL;
    if (escaped != NULL &&
        asprintf(&url, EVENTS_API "/events?since=%.3f&filters=%s", since_s, escaped) < 0)
        url = NULL;
    curl_free(escaped);
    return url;
}

int docker_follow_events(docker_client *d, const char *agent_id, double since_s,
                         void (*on_up)(void *ctx),
                         void (*on_event)(const docker_event *ev, void *ctx), void *ctx,
                         atomic_bool *stop, char *err, size_t errlen)
{
    stream_state *s = calloc(1, sizeof *s);
    char *url = events_url(agent_id, since_s);
    CURL *curl = curl_easy_init();
    int rc = -1;
    if (s == NULL || url == NULL || curl == NULL) {
        snprintf(err, errlen, "out of memory starting the engine's event stream");
        goto out;
    }
    *s = (stream_state){.on_up = on_up, .on_event = on_event, .ctx = ctx, .stop = stop};
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, docker_socket_path(d));
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, stream_bytes);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, stream_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, stream_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, s);
    CURLcode cc = curl_easy_perform(curl);
    if (atomic_load(stop)) {
        rc = 0;
    } else if (cc != CURLE_OK) {
        snprintf(err, errlen, "engine event stream at %s: %s", docker_socket_path(d),
                 curl_easy_strerror(cc));
    } else if (s->status != 200) {
        snprintf(err, errlen, "engine refused the event stream (HTTP %ld)", s->status);
    } else {
        snprintf(err, errlen, "engine ended the event stream");
    }
out:
    if (curl != NULL)
        curl_easy_cleanup(curl);
    free(url);
    free(s);
    return rc;
}
