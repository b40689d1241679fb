/* The emitter's queue (agent/event_queue.h): bound, order, coalescing,
 * batches and the rate-limited drop summary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/emitter.h"
#include "agent/event_queue.h"
#include "common/timeutil.h"

#define S1 "0b5a0a3e-4b5c-4d6e-8f70-8192a3b4c5d6"
#define S2 "1c6b1b4f-5c6d-4e7f-9a81-92a3b4c5d6e7"

static bool push(event_queue *q, const char *text, const char *session, event_kind kind)
{
    char *line = strdup(text);
    assert_non_null(line);
    return event_queue_push(q, line, strlen(line), session, kind);
}

/* Takes everything queued now, as one string. */
static char *drain(event_queue *q)
{
    event_batch b = {0};
    while (event_queue_take(q, &b, 1000, 1 << 20, 0) > 0) {
    }
    char *out = strndup(b.buf ? b.buf : "", b.len);
    event_batch_free(&b);
    return out;
}

static void assert_drained(event_queue *q, const char *want)
{
    char *got = drain(q);
    assert_string_equal(got, want);
    free(got);
}

static void test_bound_by_lines_keeps_the_oldest(void **state)
{
    (void)state;
    event_queue q;
    assert_int_equal(event_queue_init(&q, "t", 3, 1 << 20, false), 0);
    assert_true(push(&q, "a\n", NULL, EVENT_KIND_PLAIN));
    assert_true(push(&q, "b\n", NULL, EVENT_KIND_PLAIN));
    assert_true(push(&q, "c\n", NULL, EVENT_KIND_PLAIN));
    assert_false(push(&q, "d\n", NULL, EVENT_KIND_PLAIN));
    assert_false(push(&q, "e\n", NULL, EVENT_KIND_PLAIN));
    assert_int_equal(event_queue_dropped(&q), 2);
    assert_drained(&q, "a\nb\nc\n");
    assert_true(push(&q, "f\n", NULL, EVENT_KIND_PLAIN)); /* room again */
    assert_drained(&q, "f\n");
    event_queue_destroy(&q);
}

static void test_bound_by_bytes(void **state)
{
    (void)state;
    event_queue q;
    assert_int_equal(event_queue_init(&q, "t", 100, 10, false), 0);
    assert_true(push(&q, "12345678\n", NULL, EVENT_KIND_PLAIN)); /* 9 bytes */
    assert_false(push(&q, "xy\n", NULL, EVENT_KIND_PLAIN));
    assert_true(push(&q, "\n", NULL, EVENT_KIND_PLAIN)); /* exactly 10 */
    assert_drained(&q, "12345678\n\n");
    event_queue_destroy(&q);
}

static void test_coalescing_keeps_the_last_in_the_older_place(void **state)
{
    (void)state;
    event_queue q;
    assert_int_equal(event_queue_init(&q, "t", 16, 1 << 20, true), 0);
    assert_true(push(&q, "act1 s1\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "start s2\n", S2, EVENT_KIND_PLAIN));
    assert_true(push(&q, "act2 s1\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "act3 s1\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "edit1 s2\n", S2, EVENT_KIND_EDITED));
    assert_true(push(&q, "edit2 s2\n", S2, EVENT_KIND_EDITED));
    assert_int_equal(event_queue_coalesced(&q), 3);
    assert_int_equal(event_queue_length(&q), 3);
    assert_drained(&q, "act3 s1\nstart s2\nedit2 s2\n");
    event_queue_destroy(&q);
}

/* Another event of the same session between two activities: both stay,
 * in order, so the session's history is never reordered. */
static void test_no_coalescing_across_other_events_of_the_session(void **state)
{
    (void)state;
    event_queue q;
    assert_int_equal(event_queue_init(&q, "t", 16, 1 << 20, true), 0);
    assert_true(push(&q, "act1\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "stopped\n", S1, EVENT_KIND_PLAIN));
    assert_true(push(&q, "act2\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "edit\n", S1, EVENT_KIND_EDITED));
    assert_true(push(&q, "act3\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "agent\n", NULL, EVENT_KIND_PLAIN)); /* no session: no effect */
    assert_true(push(&q, "act4\n", S1, EVENT_KIND_ACTIVITY));
    assert_int_equal(event_queue_coalesced(&q), 1);
    assert_drained(&q, "act1\nstopped\nact2\nedit\nact4\nagent\n");
    event_queue_destroy(&q);
}

/* A line the consumer took is in flight: a newer one queues after it. */
static void test_taken_lines_are_never_replaced(void **state)
{
    (void)state;
    event_queue q;
    event_batch b = {0};
    assert_int_equal(event_queue_init(&q, "t", 16, 1 << 20, true), 0);
    assert_true(push(&q, "act1\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "other\n", S2, EVENT_KIND_PLAIN));
    assert_int_equal(event_queue_take(&q, &b, 1, 1 << 20, 0), 1); /* act1 in flight */
    assert_true(push(&q, "act2\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "act3\n", S1, EVENT_KIND_ACTIVITY));
    assert_int_equal(event_queue_coalesced(&q), 1);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.buf, "act1\n", 5);
    event_batch_free(&b);
    assert_drained(&q, "other\nact3\n");
    event_queue_destroy(&q);
}

static void test_coalescing_off_keeps_every_line(void **state)
{
    (void)state;
    event_queue q;
    assert_int_equal(event_queue_init(&q, "t", 16, 1 << 20, false), 0);
    assert_true(push(&q, "a1\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "a2\n", S1, EVENT_KIND_ACTIVITY));
    assert_int_equal(event_queue_coalesced(&q), 0);
    assert_drained(&q, "a1\na2\n");
    event_queue_destroy(&q);
}

/* A coalesced line never counts against the bound twice, and a full
 * queue still accepts the replacement of a queued line. */
static void test_coalescing_into_a_full_queue(void **state)
{
    (void)state;
    event_queue q;
    assert_int_equal(event_queue_init(&q, "t", 2, 1 << 20, true), 0);
    assert_true(push(&q, "a1\n", S1, EVENT_KIND_ACTIVITY));
    assert_true(push(&q, "b\n", S2, EVENT_KIND_PLAIN));
    assert_false(push(&q, "c\n", NULL, EVENT_KIND_PLAIN));
    assert_true(push(&q, "a2\n", S1, EVENT_KIND_ACTIVITY));
    assert_drained(&q, "a2\nb\n");
    event_queue_destroy(&q);
}

/* More sessions than the map tracks: the extra ones are simply not
 * coalesced, and nobody's order changes. */
static void test_many_sessions_keep_order(void **state)
{
    (void)state;
    enum { N = EVENT_COALESCE_SLOTS };
    event_queue q;
    assert_int_equal(event_queue_init(&q, "t", 4 * N, 1 << 22, true), 0);
    char session[UUID_STR_LEN], line[64];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N; i++) {
            snprintf(session, sizeof session, "00000000-0000-4000-8000-%012d", i);
            snprintf(line, sizeof line, "r%d s%d\n", round, i);
            assert_true(push(&q, line, session, EVENT_KIND_ACTIVITY));
        }
    unsigned long coalesced = event_queue_coalesced(&q);
    assert_true(coalesced >= N / 2 && coalesced <= N); /* most, not necessarily all */
    char *all = drain(&q);
    /* Per session: round 1 replaced round 0 or came after it, never before. */
    for (int i = 0; i < N; i++) {
        char r0[32], r1[32];
        snprintf(r0, sizeof r0, "r0 s%d\n", i);
        snprintf(r1, sizeof r1, "r1 s%d\n", i);
        const char *p0 = strstr(all, r0), *p1 = strstr(all, r1);
        assert_non_null(p1);
        assert_true(p0 == NULL || p0 < p1);
    }
    free(all);
    event_queue_destroy(&q);
}

static void test_batches_respect_their_bounds(void **state)
{
    (void)state;
    event_queue q;
    event_batch b = {0};
    assert_int_equal(event_queue_init(&q, "t", 16, 1 << 20, false), 0);
    assert_true(push(&q, "aaaa\n", NULL, EVENT_KIND_PLAIN));
    assert_true(push(&q, "bbbb\n", NULL, EVENT_KIND_PLAIN));
    assert_true(push(&q, "cccc\n", NULL, EVENT_KIND_PLAIN));
    assert_true(push(&q, "dddd\n", NULL, EVENT_KIND_PLAIN));
    assert_int_equal(event_queue_take(&q, &b, 3, 12, 0), 2); /* bytes: 10 <= 12 < 15 */
    assert_int_equal(b.lines, 2);
    assert_int_equal(event_queue_take(&q, &b, 1, 12, 0), 1); /* appends */
    assert_int_equal(b.lines, 3);
    assert_memory_equal(b.buf, "aaaa\nbbbb\ncccc\n", 15);
    event_batch_clear(&b);
    assert_int_equal(event_queue_take(&q, &b, 3, 2, 0), 1); /* one line even if too big */
    assert_int_equal(event_queue_take(&q, &b, 3, 2, 0), 0); /* empty: times out */
    event_batch_free(&b);
    event_queue_destroy(&q);
}

static void test_close_drains_then_ends(void **state)
{
    (void)state;
    event_queue q;
    event_batch b = {0};
    assert_int_equal(event_queue_init(&q, "t", 4, 1 << 20, false), 0);
    assert_true(push(&q, "last\n", NULL, EVENT_KIND_PLAIN));
    event_queue_close(&q);
    assert_true(event_queue_is_closed(&q));
    assert_false(push(&q, "late\n", NULL, EVENT_KIND_PLAIN));
    assert_int_equal(event_queue_take(&q, &b, 10, 100, -1), 1);
    assert_int_equal(event_queue_take(&q, &b, 10, 100, -1), 0); /* no wait once closed */
    event_batch_free(&b);
    event_queue_destroy(&q);
}

/* The first drop is reported at once, the next ones wait out the 10 s. */
static void test_drop_summary_is_rate_limited(void **state)
{
    (void)state;
    event_queue q;
    assert_int_equal(event_queue_init(&q, "t", 1, 1 << 20, false), 0);
    assert_true(push(&q, "a\n", NULL, EVENT_KIND_PLAIN));
    int64_t before = monotonic_ms();
    for (int i = 0; i < 5; i++)
        assert_false(push(&q, "x\n", NULL, EVENT_KIND_PLAIN));
    assert_int_equal(q.dropped, 5);
    assert_int_equal(q.drops_unreported, 4);
    assert_true(q.drop_log_next_ms >= before + EVENT_DROP_LOG_MS);
    event_queue_destroy(&q);
}

static void test_kinds_by_type(void **state)
{
    (void)state;
    assert_int_equal(emitter_kind_of("session.activity"), EVENT_KIND_ACTIVITY);
    assert_int_equal(emitter_kind_of("container.edited"), EVENT_KIND_EDITED);
    assert_int_equal(emitter_kind_of("container.stopped"), EVENT_KIND_PLAIN);
    assert_int_equal(emitter_kind_of("agent.settings"), EVENT_KIND_PLAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_by_lines_keeps_the_oldest),
        cmocka_unit_test(test_bound_by_bytes),
        cmocka_unit_test(test_coalescing_keeps_the_last_in_the_older_place),
        cmocka_unit_test(test_no_coalescing_across_other_events_of_the_session),
        cmocka_unit_test(test_taken_lines_are_never_replaced),
        cmocka_unit_test(test_coalescing_off_keeps_every_line),
        cmocka_unit_test(test_coalescing_into_a_full_queue),
        cmocka_unit_test(test_many_sessions_keep_order),
        cmocka_unit_test(test_batches_respect_their_bounds),
        cmocka_unit_test(test_close_drains_then_ends),
        cmocka_unit_test(test_drop_summary_is_rate_limited),
        cmocka_unit_test(test_kinds_by_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
