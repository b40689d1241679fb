#include "shell/tui/activity.h"

#include <stdio.h>
#include <string.h>

static const char *const states[] = {"idle", "working", "waiting", "exited", "shell"};

static bool state_is_known(const char *s)
{
    for (size_t i = 0; i < sizeof states / sizeof *states; i++)
        if (strcmp(states[i], s) == 0)
            return true;
    return false;
}

time_t activity_parse_time(const char *rfc3339)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (rfc3339 == NULL)
        return 0;
    const char *rest = strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return 0;
    if (*rest == '.') /* a fraction of a second: the table counts whole ones */
        while (*++rest >= '0' && *rest <= '9') {
        }
    if (strcmp(rest, "Z") != 0)
        return 0; /* the contract says UTC */
    time_t t = timegm(&tm);
    return t < 0 ? 0 : t;
}

/* A number that is finite and in range, or false. */
static bool bounded_number(json_t *v, double lo, double hi, double *out)
{
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return false;
    *out = d;
    return true;
}

bool activity_from_json(tui_activity *a, json_t *obj)
{
    memset(a, 0, sizeof *a);
    const char *state = json_string_value(json_object_get(obj, "state"));
    if (!json_is_object(obj) || state == NULL || !state_is_known(state))
        return false;
    snprintf(a->state, sizeof a->state, "%s", state);
    a->since = activity_parse_time(json_string_value(json_object_get(obj, "since")));
    const char *detail = json_string_value(json_object_get(obj, "detail"));
    /* Control characters would move the cursor: the table shows them as '?'. */
    snprintf(a->detail, sizeof a->detail, "%s", detail ? detail : "");
    for (char *c = a->detail; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    a->has_cost = bounded_number(json_object_get(obj, "cost_usd"), 0, 1e9, &a->cost_usd);
    a->has_context = bounded_number(json_object_get(obj, "context_pct"), 0, 100, &a->context_pct);
    a->known = true;
    return true;
}

void activity_age(char *out, size_t size, long seconds)
{
    if (seconds < 0)
        seconds = 0; /* the agent's clock is a little ahead of ours */
    if (seconds < 60)
        snprintf(out, size, "%lds", seconds);
    else if (seconds < 3600)
        snprintf(out, size, "%ldm", seconds / 60);
    else if (seconds < 86400)
        snprintf(out, size, "%ldh", seconds / 3600);
    else
        snprintf(out, size, "%ldd", seconds / 86400);
}

void activity_words(char *out, size_t size, const tui_activity *a, time_t now)
{
    if (!a->known) {
        snprintf(out, size, "-");
        return;
    }
    if (a->since == 0) {
        snprintf(out, size, "%s", a->state);
        return;
    }
    char age[24];
    activity_age(age, sizeof age, (long)(now - a->since));
    snprintf(out, size, "%s %s", a->state, age);
}

bool activity_is_waiting(const tui_activity *a)
{
    return a->known && strcmp(a->state, "waiting") == 0;
}
