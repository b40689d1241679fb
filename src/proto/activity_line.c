/* Parser of the activity spool's lines: strict, since a session writes
 * them. */
#include "proto/activity_line.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const state_names[] = {"idle", "working", "waiting", "exited", "shell"};

const char *activity_state_name(activity_state s)
{
    return (unsigned)s < sizeof state_names / sizeof *state_names ? state_names[s] : NULL;
}

int activity_state_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof state_names / sizeof *state_names; i++)
        if (strcmp(state_names[i], name) == 0)
            return (int)i;
    return -1;
}

/* Counts UTF-8 characters (jansson has already checked the encoding). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* A string field without NUL and at most max characters. */
static int take_text(json_t *v, size_t max_chars, char *out, size_t size, const char *key,
                     char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) != json_string_length(v) || utf8_chars(s) > max_chars ||
        strlen(s) >= size) {
        snprintf(err, errlen, "\"%s\" is not a string of at most %zu characters", key, max_chars);
        return -1;
    }
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* A finite number in [0, max]. */
static int take_number(json_t *v, double max, double *out, const char *key, char *err,
                       size_t errlen)
{
    double d = json_number_value(v);
    if (!json_is_number(v) || !isfinite(d) || d < 0 || d > max) {
        snprintf(err, errlen, "\"%s\" is not a number from 0 to %g", key, max);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_state(json_t *root, activity_line *out, char *err, size_t errlen)
{
    json_t *state = json_object_get(root, "state"), *detail = json_object_get(root, "detail");
    const char *name = json_string_value(state);
    int s = name ? activity_state_from_name(name) : -1;
    if (s < 0) {
        snprintf(err, errlen, "unknown state");
        return -1;
    }
    out->kind = ACTIVITY_LINE_STATE;
    out->state = (activity_state)s;
    if (json_object_size(root) != 2u + (detail != NULL)) {
        snprintf(err, errlen, "a state line has only ts, state and detail");
        return -1;
    }
    return detail ? take_text(detail, ACTIVITY_DETAIL_MAX, out->detail, sizeof out->detail,
                              "detail", err, errlen)
                  : 0;
}

static int parse_status(json_t *root, activity_line *out, char *err, size_t errlen)
{
    json_t *cost = json_object_get(root, "cost_usd"), *ctx = json_object_get(root, "context_pct");
    json_t *model = json_object_get(root, "model");
    size_t known = 1 + (cost != NULL) + (ctx != NULL) + (model != NULL);
    out->kind = ACTIVITY_LINE_STATUS;
    if (known != json_object_size(root) || known == 1) {
        snprintf(err, errlen, "a status line has only ts, cost_usd, context_pct and model");
        return -1;
    }
    /* null is allowed: Claude has no figure yet. */
    if (cost != NULL && !json_is_null(cost)) {
        if (take_number(cost, 1e9, &out->cost_usd, "cost_usd", err, errlen) < 0)
            return -1;
        out->has_cost = true;
    }
    if (ctx != NULL && !json_is_null(ctx)) {
        if (take_number(ctx, 100, &out->context_pct, "context_pct", err, errlen) < 0)
            return -1;
        out->has_context = true;
    }
    if (model != NULL && !json_is_null(model))
        return take_text(model, ACTIVITY_MODEL_MAX, out->model, sizeof out->model, "model", err,
                         errlen);
    return 0;
}

int activity_line_parse(const char *line, size_t len, activity_line *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len >= ACTIVITY_LINE_MAX) {
        snprintf(err, errlen, "longer than %d bytes", ACTIVITY_LINE_MAX);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *ts = json_object_get(root, "ts");
    int rc = -1;
    if (!json_is_object(root))
        snprintf(err, errlen, "not a JSON object");
    else if (!json_is_integer(ts) || json_integer_value(ts) < 0)
        snprintf(err, errlen, "no \"ts\" in unix milliseconds");
    else if (json_object_get(root, "state") != NULL)
        rc = parse_state(root, out, err, errlen);
    else
        rc = parse_status(root, out, err, errlen);
    if (rc == 0)
        out->ts_ms = (int64_t)json_integer_value(ts);
    json_decref(root);
    return rc;
}
