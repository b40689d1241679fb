/* Test-only ops, for load tests and benchmarks of the event pipeline.
 *
 * They exist only when the agent runs with --test-hooks; without it they
 * answer `unknown op "<name>"` like any op that does not exist. No real op
 * can publish thousands of events a second (each one writes a file), so
 * measuring the emitter, the sender, status-serve and the feed at the rates
 * the issue asks for needs a generator; it publishes through the same
 * emitter_publish() as every real op. */
#ifndef CONVOCATE_AGENT_TEST_HOOKS_H
#define CONVOCATE_AGENT_TEST_HOOKS_H

#include <jansson.h>
#include <stddef.h>

#include "agent/agent.h"

#define TEST_EMIT_MAX_COUNT 1000000
#define TEST_EMIT_MAX_RATE 1000000 /* events/s */
#define TEST_EMIT_MAX_S 600        /* count/rate: longest run */

/* test-emit {"count", "rate"?, "tag"?, "session_id"?, "type"?}: publishes
 * count events, at rate events/s (0 or absent: as fast as it can), and
 * answers {"published","elapsed_ms","dropped","coalesced"} once done
 * (dropped and coalesced: the shell queue's totals so far). type is
 * "test.load" (default) or "session.activity" (needs session_id, to
 * exercise coalescing); data is {"tag","seq","count"}. */
int op_test_emit(agent *a, json_t *params, json_t **result, char *err, size_t errlen);

#endif
