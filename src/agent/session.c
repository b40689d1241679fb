#include "agent/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "proto/rpc.h" /* json_line */

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool session_name_is_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= SESSION_NAME_MAX || !is_name_char(s[n]))
            return false;
    }
    return n > 0;
}

static bool is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

bool dns_label_is_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= DNS_LABEL_MAX || !is_label_char(s[n]))
            return false;
    }
    /* A hyphen may sit inside a label, never at either end. */
    return n > 0 && s[0] != '-' && s[n - 1] != '-';
}

bool protocol_is_valid(const char *s)
{
    return strcmp(s, "tcp") == 0 || strcmp(s, "udp") == 0;
}

bool autonomy_effective(int setting, bool agent_default)
{
    return setting == AUTONOMOUS_DEFAULT ? agent_default : setting != 0;
}

bool session_autonomous(const session_meta *m, bool agent_default)
{
    return autonomy_effective(m->autonomous, agent_default);
}

/* Each decode_* checks one known field; -1 with err when it is wrong. */
static int decode_string(json_t *v, const char *key, char *dst, size_t size, char *err,
                         size_t errlen)
{
    if (!json_is_string(v) || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, errlen, "\"%s\" must be a string of at most %zu bytes", key, size - 1);
        return -1;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int decode_time(json_t *v, const char *key, time_t *out, char *err, size_t errlen)
{
    char text[64];
    if (decode_string(v, key, text, sizeof text, err, errlen) < 0)
        return -1;
    if (!rfc3339_parse(text, out)) {
        snprintf(err, errlen, "\"%s\" is not an RFC 3339 UTC time", key);
        return -1;
    }
    return 0;
}

/* "model": "" or a model name; "autonomous": a bool, or null for the default. */
static int decode_claude(session_meta *m, const char *key, json_t *v, char *err, size_t errlen)
{
    if (strcmp(key, "model") == 0) {
        if (decode_string(v, key, m->model, sizeof m->model, err, errlen) < 0 ||
            (m->model[0] != '\0' && !claude_model_is_valid(m->model))) {
            snprintf(err, errlen, "\"model\" must be \"\" or 1 to %d of A-Z a-z 0-9 . _ -",
                     CLAUDE_MODEL_MAX);
            return -1;
        }
        return 0;
    }
    if (json_is_null(v)) {
        m->autonomous = AUTONOMOUS_DEFAULT;
    } else if (json_is_boolean(v)) {
        m->autonomous = json_is_true(v);
    } else {
        snprintf(err, errlen, "\"autonomous\" must be true, false or null");
        return -1;
    }
    return 0;
}

static int decode_known(session_meta *m, const char *key, json_t *v, char *err, size_t errlen)
{
    if (strcmp(key, "uuid") == 0) {
        if (decode_string(v, key, m->uuid, sizeof m->uuid, err, errlen) < 0 ||
            !uuid_v4_is_valid(m->uuid)) {
            snprintf(err, errlen, "\"uuid\" is not a canonical UUIDv4");
            return -1;
        }
    } else if (strcmp(key, "name") == 0) {
        if (decode_string(v, key, m->name, sizeof m->name, err, errlen) < 0 ||
            !session_name_is_valid(m->name)) {
            snprintf(err, errlen, "\"name\" is not a valid session name");
            return -1;
        }
    } else if (strcmp(key, "port") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > PORT_MAX) {
            snprintf(err, errlen, "\"port\" must be an integer 0..%d", PORT_MAX);
            return -1;
        }
        m->port = (int)json_integer_value(v);
    } else if (strcmp(key, "protocol") == 0) {
        if (decode_string(v, key, m->protocol, sizeof m->protocol, err, errlen) < 0 ||
            !protocol_is_valid(m->protocol)) {
            snprintf(err, errlen, "\"protocol\" must be \"tcp\" or \"udp\"");
            return -1;
        }
    } else if (strcmp(key, "dns_name") == 0) {
        if (json_is_null(v)) {
            m->dns_name[0] = '\0';
        } else if (decode_string(v, key, m->dns_name, sizeof m->dns_name, err, errlen) < 0 ||
                   (m->dns_name[0] != '\0' && !dns_label_is_valid(m->dns_name))) {
            snprintf(err, errlen, "\"dns_name\" is not a lowercase DNS label");
            return -1;
        }
    } else if (strcmp(key, "model") == 0 || strcmp(key, "autonomous") == 0) {
        return decode_claude(m, key, v, err, errlen);
    } else if (strcmp(key, "created_at") == 0) {
        return decode_time(v, key, &m->created_at, err, errlen);
    } else if (strcmp(key, "last_accessed") == 0) {
        return decode_time(v, key, &m->last_accessed, err, errlen);
    } else {
        return 1; /* not ours */
    }
    return 0;
}

static int decode_object(json_t *root, session_meta *m, char *err, size_t errlen)
{
    bool have_last_accessed = false;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int rc = decode_known(m, key, v, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 1 && json_object_set(m->extra, key, v) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (strcmp(key, "last_accessed") == 0)
            have_last_accessed = true;
    }
    if (m->uuid[0] == '\0' || m->name[0] == '\0' || json_object_get(root, "created_at") == NULL) {
        snprintf(err, errlen, "\"uuid\", \"name\" and \"created_at\" are required");
        return -1;
    }
    if (!have_last_accessed)
        m->last_accessed = m->created_at;
    return 0;
}

int session_decode(const char *text, size_t len, const char *expect_uuid, session_meta *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->protocol, sizeof out->protocol, "tcp");
    out->autonomous = AUTONOMOUS_DEFAULT;
    if (len > SESSION_JSON_MAX) {
        snprintf(err, errlen, "larger than %d bytes", SESSION_JSON_MAX);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "%s (line %d)", jerr.text, jerr.line);
        return -1;
    }
    int rc = -1;
    out->extra = json_object();
    if (out->extra == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        goto done;
    }
    if (decode_object(root, out, err, errlen) < 0)
        goto done;
    if (expect_uuid && strcmp(out->uuid, expect_uuid) != 0) {
        snprintf(err, errlen, "\"uuid\" %s does not match its directory", out->uuid);
        goto done;
    }
    rc = 0;
done:
    json_decref(root);
    if (rc < 0)
        session_meta_clear(out);
    return rc;
}

json_t *session_to_json(const session_meta *m)
{
    char created[RFC3339_LEN], accessed[RFC3339_LEN];
    rfc3339_format(m->created_at, created);
    rfc3339_format(m->last_accessed, accessed);
    json_t *obj = m->extra ? json_deep_copy(m->extra) : json_object();
    if (obj == NULL)
        return NULL;
    /* Known fields win over any stale copy of them among the extras. */
    if (json_object_set_new(obj, "uuid", json_string(m->uuid)) < 0 ||
        json_object_set_new(obj, "name", json_string(m->name)) < 0 ||
        json_object_set_new(obj, "port", json_integer(m->port)) < 0 ||
        json_object_set_new(obj, "protocol", json_string(m->protocol)) < 0 ||
        json_object_set_new(obj, "dns_name", json_string(m->dns_name)) < 0 ||
        json_object_set_new(obj, "model", json_string(m->model)) < 0 ||
        json_object_set_new(obj, "created_at", json_string(created)) < 0 ||
        json_object_set_new(obj, "last_accessed", json_string(accessed)) < 0) {
        json_decref(obj);
        return NULL;
    }
    /* Absent means "the agent's default", so a change of default reaches it. */
    if (m->autonomous != AUTONOMOUS_DEFAULT &&
        json_object_set_new(obj, "autonomous", json_boolean(m->autonomous)) < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

char *session_encode(const session_meta *m, size_t *len)
{
    char *text = json_line(session_to_json(m));
    if (text != NULL && len)
        *len = strlen(text);
    return text;
}

int session_meta_copy(session_meta *dst, const session_meta *src)
{
    *dst = *src;
    dst->extra = src->extra ? json_deep_copy(src->extra) : json_object();
    return dst->extra ? 0 : -1;
}

void session_meta_clear(session_meta *m)
{
    json_decref(m->extra);
    m->extra = NULL;
}
