#include "agent/test_hooks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/ops.h"
#include "common/timeutil.h"
#include "proto/rpc.h"

#define TAG_MAX 64

typedef struct {
    long long count, rate;
    const char *tag, *session, *type;
} emit_plan;

static int read_type(json_t *params, emit_plan *p, char *err, size_t errlen)
{
    int rc = params_get_string(params, "type", TAG_MAX, &p->type, err, errlen);
    if (rc < 0)
        return -1;
    bool activity = strcmp(p->type, "session.activity") == 0;
    if (!activity && strcmp(p->type, "test.load") != 0) {
        snprintf(err, errlen, "decode params: \"type\" is test.load or session.activity");
        return -1;
    }
    if (json_object_get(params, "session_id") != NULL &&
        params_get_id(params, "session_id", &p->session, err, errlen) < 0)
        return -1;
    if (activity && p->session == NULL) {
        snprintf(err, errlen, "decode params: session.activity needs \"session_id\"");
        return -1;
    }
    return 0;
}

static int read_plan(json_t *params, emit_plan *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"count", "rate", "tag", "session_id", "type", NULL};
    *p = (emit_plan){.tag = "", .type = "test.load"};
    if (params_expect_object(params, 0, err, errlen) < 0 ||
        params_only_keys(params, keys, err, errlen) < 0)
        return -1;
    int rc = params_get_int(params, "count", 1, TEST_EMIT_MAX_COUNT, &p->count, err, errlen);
    if (rc == 0)
        snprintf(err, errlen, "decode params: \"count\" is required");
    if (rc <= 0 ||
        params_get_int(params, "rate", 0, TEST_EMIT_MAX_RATE, &p->rate, err, errlen) < 0 ||
        params_get_string(params, "tag", TAG_MAX, &p->tag, err, errlen) < 0 ||
        read_type(params, p, err, errlen) < 0)
        return -1;
    if (p->rate > 0 && p->count / p->rate > TEST_EMIT_MAX_S) {
        snprintf(err, errlen, "decode params: count/rate is over %d s", TEST_EMIT_MAX_S);
        return -1;
    }
    return 0;
}

/* Event i is due i/rate seconds after the start: the events due within one
 * millisecond go together, so pacing costs one sleep per millisecond. */
static void pace(int64_t start_ms, long long i, long long rate)
{
    int64_t due = start_ms + (int64_t)(i * 1000 / rate);
    int64_t now = monotonic_ms();
    if (due > now)
        sleep_ms((long)(due - now));
}

int op_test_emit(agent *a, json_t *params, json_t **result, char *err, size_t errlen)
{
    emit_plan p;
    if (!a->cfg.test_hooks) {
        snprintf(err, errlen, "unknown op \"test-emit\"");
        return -1;
    }
    if (read_plan(params, &p, err, errlen) < 0)
        return -1;
    int64_t start = monotonic_ms();
    for (long long i = 0; i < p.count; i++) {
        if (p.rate > 0)
            pace(start, i, p.rate);
        emitter_publish(a->events, p.type, p.session,
                        json_pack("{s:s, s:I, s:I}", "tag", p.tag, "seq", (json_int_t)i, "count",
                                  (json_int_t)p.count));
    }
    *result = json_pack("{s:I, s:I, s:I, s:I}", "published", (json_int_t)p.count, "elapsed_ms",
                        (json_int_t)(monotonic_ms() - start), "dropped",
                        (json_int_t)emitter_dropped(a->events), "coalesced",
                        (json_int_t)emitter_coalesced(a->events));
    return *result ? 0 : (snprintf(err, errlen, "test-emit: out of memory"), -1);
}
