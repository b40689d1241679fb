#include "shell/tui/feed.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/paths.h"

void feed_init(tui_feed *f)
{
    f->fd = -1;
    f->len = 0;
}

void feed_close(tui_feed *f)
{
    if (f->fd >= 0)
        close(f->fd);
    feed_init(f);
}

void feed_try_connect(tui_feed *f)
{
    if (f->fd >= 0)
        return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (root_path(addr.sun_path, sizeof addr.sun_path, "/run/convocate/status.sock") < 0)
        return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    /* A local socket connects at once or not at all: no waiting here. */
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return;
    }
    f->fd = fd;
    f->len = 0;
}

static void apply_event(const char *line, tui_model *m)
{
    json_t *ev = json_loads(line, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *agent = json_string_value(json_object_get(ev, "agent_id"));
    if (type && agent) {
        if (strcmp(type, "shell.agent") == 0) {
            json_t *live = json_object_get(json_object_get(ev, "data"), "live");
            model_set_silent(m, agent, json_is_false(live));
        } else if (strcmp(type, "agent.heartbeat") == 0) {
            model_set_silent(m, agent, false);
        } else if (strcmp(type, "session.activity") == 0) {
            /* The event carries the whole answer: no need to ask the agent. */
            const char *sid = json_string_value(json_object_get(ev, "session_id"));
            if (sid)
                model_apply_activity(m, agent, sid, json_object_get(ev, "data"));
        } else {
            model_refresh(m, agent); /* something changed there: list it again */
        }
    }
    json_decref(ev);
}

void feed_on_readable(tui_feed *f, tui_model *m)
{
    for (;;) {
        if (f->len == sizeof f->buf - 1)
            f->len = 0; /* a line longer than any event: drop it */
        ssize_t n = read(f->fd, f->buf + f->len, sizeof f->buf - 1 - f->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            feed_close(f);
            return;
        }
        f->len += (size_t)n;
        f->buf[f->len] = '\0';
        char *start = f->buf, *nl;
        while ((nl = strchr(start, '\n')) != NULL) {
            *nl = '\0';
            apply_event(start, m);
            start = nl + 1;
        }
        f->len -= (size_t)(start - f->buf);
        memmove(f->buf, start, f->len);
    }
}
