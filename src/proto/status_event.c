#include "proto/status_event.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/timeutil.h"

#define TIMESTAMP_MAX 40

static bool type_is_valid(const char *t)
{
    size_t n = strlen(t);
    return n > 0 && n <= STATUS_EVENT_TYPE_MAX &&
           strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool timestamp_is_valid(json_t *v)
{
    const char *s = json_string_value(v);
    time_t t;
    return s != NULL && strlen(s) <= TIMESTAMP_MAX && rfc3339_parse(s, &t);
}

/* Fills the borrowed fields; -1 with err when one is missing or malformed. */
static int take_fields(status_event *ev, char *err, size_t errlen)
{
    json_t *sid = json_object_get(ev->root, "session_id");
    ev->type = json_string_value(json_object_get(ev->root, "type"));
    ev->agent_id = json_string_value(json_object_get(ev->root, "agent_id"));
    ev->data = json_object_get(ev->root, "data");
    if (ev->type == NULL || !type_is_valid(ev->type)) {
        snprintf(err, errlen, "no valid \"type\"");
        return -1;
    }
    if (ev->agent_id == NULL || !agent_id_is_valid(ev->agent_id)) {
        snprintf(err, errlen, "no valid \"agent_id\"");
        return -1;
    }
    if (!timestamp_is_valid(json_object_get(ev->root, "timestamp"))) {
        snprintf(err, errlen, "no valid \"timestamp\"");
        return -1;
    }
    if (sid != NULL && (!json_is_string(sid) || !uuid_v4_is_valid(json_string_value(sid)))) {
        snprintf(err, errlen, "\"session_id\" is not a UUIDv4");
        return -1;
    }
    ev->session_id = json_string_value(sid);
    return 0;
}

int status_event_parse(const char *line, size_t len, status_event *ev, char *err, size_t errlen)
{
    json_error_t jerr;
    memset(ev, 0, sizeof *ev);
    ev->root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (ev->root == NULL) {
        snprintf(err, errlen, "does not parse as JSON (%s)", jerr.text);
        return -1;
    }
    if (!json_is_object(ev->root)) {
        snprintf(err, errlen, "is not a JSON object");
        status_event_clear(ev);
        return -1;
    }
    if (take_fields(ev, err, errlen) < 0) {
        status_event_clear(ev);
        return -1;
    }
    return 0;
}

void status_event_clear(status_event *ev)
{
    json_decref(ev->root);
    memset(ev, 0, sizeof *ev);
}

bool status_event_is(const status_event *ev, const char *type)
{
    return ev->type != NULL && strcmp(ev->type, type) == 0;
}

int status_event_heartbeat(const status_event *ev)
{
    if (!status_event_is(ev, "agent.started") && !status_event_is(ev, "agent.settings"))
        return 0;
    json_t *hb = json_object_get(ev->data, "heartbeat_s");
    json_int_t v = json_is_integer(hb) ? json_integer_value(hb) : 0;
    return v >= STATUS_EVENT_HEARTBEAT_MIN && v <= STATUS_EVENT_HEARTBEAT_MAX ? (int)v : 0;
}

const char *status_event_dns_name(const status_event *ev)
{
    const char *name = json_string_value(json_object_get(ev->data, "dns_name"));
    return name != NULL ? name : "";
}
