/* Giving the heap's free memory back to the kernel when the agent rests.
 *
 * What the agent's calls free stays in malloc's bins as dirty pages: its
 * RSS stands at the high-water mark of the busiest moment it has served,
 * though no memory is lost (valgrind finds no leak). malloc_trim(0) hands
 * the whole free pages of every arena back to the kernel. It walks every
 * arena under its lock, so it runs off the request path, on the capacity
 * meter's sampling thread, and only once the agent has been quiet for a
 * whole sampling period after some activity: never under steady load,
 * never twice for one quiet spell. */
#ifndef CONVOCATE_AGENT_MEMORY_REST_H
#define CONVOCATE_AGENT_MEMORY_REST_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct {
    atomic_ulong activity; /* bumped by every RPC and attach (any thread) */
    atomic_ulong trims;    /* trims done (tests, logs) */
    /* The ticking thread's own: */
    unsigned long seen; /* activity at the last tick */
    bool owed;          /* activity since the last trim */
} memory_rest;

/* Zeroes r: no trim owed until some activity. */
void memory_rest_init(memory_rest *r);
/* Some work that allocates happened (or is about to): call from any thread. */
void memory_rest_note(memory_rest *r);
/* Called once a period by one thread: trims when there was activity before
 * the last tick and none since. True when it trimmed. */
bool memory_rest_tick(memory_rest *r);
/* A capacity_meter tick hook (void * is the memory_rest). */
void memory_rest_tick_hook(void *r);

#endif
