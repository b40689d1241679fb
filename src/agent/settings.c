#include "agent/settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/disk_error.h"
#include "common/fileio.h"

void settings_defaults(agent_settings *s)
{
    memset(s, 0, sizeof *s);
    s->admission_threshold_pct = 90;
    s->heartbeat_s = 30;
}

static int apply_int(json_t *v, const char *key, long long min, long long max, long long *out,
                     char *err, size_t errlen)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "settings: \"%s\" must be an integer from %lld to %lld", key, min,
                 max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int apply_bool(json_t *v, const char *key, bool *out, char *err, size_t errlen)
{
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "settings: \"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

static int apply_cpus(json_t *v, double *out, char *err, size_t errlen)
{
    double d = json_is_number(v) ? json_number_value(v) : -1.0;
    if (!json_is_number(v) || !isfinite(d) || d < 0.0 || d > SESSION_CPUS_MAX) {
        snprintf(err, errlen, "settings: \"session_cpus\" must be a number from 0 to %.0f",
                 SESSION_CPUS_MAX);
        return -1;
    }
    *out = d;
    return 0;
}

static int apply_dns_server(json_t *v, char *out, size_t size, char *err, size_t errlen)
{
    struct in_addr addr;
    const char *text = json_is_string(v) ? json_string_value(v) : NULL;
    if (text == NULL || strlen(text) >= size ||
        (text[0] != '\0' && inet_pton(AF_INET, text, &addr) != 1)) {
        snprintf(err, errlen, "settings: \"dns_server\" must be an IPv4 address or \"\"");
        return -1;
    }
    memcpy(out, text, strlen(text) + 1);
    return 0;
}

static int apply_one(agent_settings *s, const char *key, json_t *v, char *err, size_t errlen)
{
    long long n;
    if (strcmp(key, "admission_threshold_pct") == 0) {
        if (apply_int(v, key, THRESHOLD_PCT_MIN, THRESHOLD_PCT_MAX, &n, err, errlen) < 0)
            return -1;
        s->admission_threshold_pct = (int)n;
    } else if (strcmp(key, "heartbeat_s") == 0) {
        if (apply_int(v, key, HEARTBEAT_S_MIN, HEARTBEAT_S_MAX, &n, err, errlen) < 0)
            return -1;
        s->heartbeat_s = (int)n;
    } else if (strcmp(key, "docker_socket") == 0) {
        return apply_bool(v, key, &s->docker_socket, err, errlen);
    } else if (strcmp(key, "default_autonomous") == 0) {
        return apply_bool(v, key, &s->default_autonomous, err, errlen);
    } else if (strcmp(key, "session_cpus") == 0) {
        return apply_cpus(v, &s->session_cpus, err, errlen);
    } else if (strcmp(key, "session_memory_mb") == 0) {
        if (apply_int(v, key, 0, SESSION_MEMORY_MB_MAX, &n, err, errlen) < 0)
            return -1;
        s->session_memory_mb = (long)n;
    } else if (strcmp(key, "dns_server") == 0) {
        return apply_dns_server(v, s->dns_server, sizeof s->dns_server, err, errlen);
    } else {
        snprintf(err, errlen, "settings: unknown key \"%.64s\"", key);
        return -1;
    }
    return 0;
}

int settings_apply(agent_settings *s, json_t *obj, char *err, size_t errlen)
{
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "settings: expected a JSON object");
        return -1;
    }
    agent_settings next = *s;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (apply_one(&next, key, v, err, errlen) < 0)
            return -1;
    }
    *s = next;
    return 0;
}

json_t *settings_to_json(const agent_settings *s)
{
    return json_pack("{s:i, s:i, s:b, s:f, s:I, s:s, s:b}", "admission_threshold_pct",
                     s->admission_threshold_pct, "heartbeat_s", s->heartbeat_s, "docker_socket",
                     s->docker_socket, "session_cpus", s->session_cpus, "session_memory_mb",
                     (json_int_t)s->session_memory_mb, "dns_server", s->dns_server,
                     "default_autonomous", s->default_autonomous);
}

int settings_load(const char *path, agent_settings *s, char *err, size_t errlen)
{
    settings_defaults(s);
    char *text = NULL;
    size_t len = 0;
    if (read_file_bounded(path, SETTINGS_JSON_MAX, &text, &len) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "read %s: %s", path, strerror(errno));
        return -1;
    }
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (obj == NULL) {
        snprintf(err, errlen, "%s: %s", path, jerr.text);
        return -1;
    }
    char why[256];
    int rc = settings_apply(s, obj, why, sizeof why);
    json_decref(obj);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", path, why);
    return rc;
}

int settings_save(const char *path, const agent_settings *s, char *err, size_t errlen)
{
    json_t *obj = settings_to_json(s);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (text == NULL) {
        snprintf(err, errlen, "settings: out of memory");
        return -1;
    }
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves room: we own the NUL slot */
    int rc = atomic_write_file(path, text, len + 1, 0644, KEEP_OWNER, 0);
    if (rc < 0)
        disk_error(err, errlen, errno, "write %s", path);
    free(text);
    return rc;
}
