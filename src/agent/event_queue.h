/* The emitter's bounded event queue (SPEC 8.3): encoded event lines waiting
 * for one consumer (the status sender, the events-log writer).
 *
 * - Bounded by lines and by bytes; pushing never blocks. A push into a full
 *   queue drops the new event, counts it, and the queue logs one summary
 *   line at most every EVENT_DROP_LOG_MS, with the count.
 * - Coalescing (when enabled): a session.activity or container.edited event
 *   replaces the one of the same type still queued for the same session, as
 *   long as no other event of that session was queued after it. The newer
 *   line takes the older one's place, so per-session order holds and a
 *   flapping state does not starve behind newer traffic. Lines already taken
 *   by the consumer are never touched.
 * - The consumer takes lines in batches (event_queue_take): many lines per
 *   wake-up and per write. */
#ifndef CONVOCATE_AGENT_EVENT_QUEUE_H
#define CONVOCATE_AGENT_EVENT_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"

/* 5,000 events in a burst fit with room to spare; 8 MiB bounds the memory
 * a stalled shell can cost. */
#define EVENT_QUEUE_CAP 8192
#define EVENT_QUEUE_MAX_BYTES (8u * 1024 * 1024)
#define EVENT_DROP_LOG_MS 10000
/* Sessions tracked for coalescing at once; more only coalesce less. */
#define EVENT_COALESCE_SLOTS 512

/* What a line may be coalesced with: only with the same kind. */
typedef enum {
    EVENT_KIND_PLAIN = 0, /* never coalesced */
    EVENT_KIND_ACTIVITY,  /* session.activity */
    EVENT_KIND_EDITED,    /* container.edited */
} event_kind;

typedef struct {
    char *line;
    size_t len;
} event_slot;

typedef struct {
    char session[UUID_STR_LEN];
    uint8_t kind;
    unsigned gen; /* valid only when equal to the queue's map_gen */
    uint64_t seq; /* the session's newest queued (or taken) line */
} coalesce_entry;

typedef struct {
    char name[48]; /* for log lines: "status events", "events log" */
    event_slot *slots;
    size_t cap, max_bytes, bytes;
    uint64_t head, tail; /* sequence numbers: [head, tail) are queued */
    bool coalesce;
    coalesce_entry *map;
    unsigned map_gen;
    size_t map_used;
    unsigned long dropped, drops_unreported, coalesced;
    int64_t drop_log_next_ms;
    bool closed;
    pthread_mutex_t mu;
    pthread_cond_t cond;
} event_queue;

/* Lines taken in one go, joined in one buffer the consumer owns. */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t lines;
} event_batch;

int event_queue_init(event_queue *q, const char *name, size_t cap, size_t max_bytes, bool coalesce);
/* Frees whatever is still queued. */
void event_queue_destroy(event_queue *q);
/* Takes ownership of line (len bytes, ending in '\n'). session: the session
 * the event is about, or NULL. True when queued or coalesced; false when
 * dropped (full or closed): the line is freed and counted. */
bool event_queue_push(event_queue *q, char *line, size_t len, const char *session, event_kind kind);
/* Waits up to timeout_ms (-1 = forever) for a line, then moves the oldest
 * lines, up to max_lines and max_bytes (at least one line), to the end of
 * b. Returns how many; 0 on timeout or once closed and empty. */
size_t event_queue_take(event_queue *q, event_batch *b, size_t max_lines, size_t max_bytes,
                        int timeout_ms);
/* Wakes the consumer; pushes are refused from now on. */
void event_queue_close(event_queue *q);
bool event_queue_is_closed(event_queue *q);
size_t event_queue_length(event_queue *q);
unsigned long event_queue_dropped(event_queue *q);
unsigned long event_queue_coalesced(event_queue *q);

void event_batch_clear(event_batch *b);
void event_batch_free(event_batch *b);

#endif
