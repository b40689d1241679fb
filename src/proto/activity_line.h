/* One line of a session's activity spool (SPEC 16): what the image's hooks
 * and statusLine command append to /run/convocate/activity/events. The
 * writer is the session, so every line is untrusted: at most
 * ACTIVITY_LINE_MAX bytes with its '\n', one JSON object of exactly one of
 * the two shapes below, every field typed and bounded.
 *
 *   {"ts":<unix ms>,"state":"idle|working|waiting|exited|shell","detail":"..."}
 *   {"ts":<unix ms>,"cost_usd":<n>,"context_pct":<n>,"model":"..."}
 */
#ifndef CONVOCATE_PROTO_ACTIVITY_LINE_H
#define CONVOCATE_PROTO_ACTIVITY_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACTIVITY_LINE_MAX 1024 /* including the '\n' */
#define ACTIVITY_DETAIL_MAX 200
#define ACTIVITY_MODEL_MAX 64

typedef enum {
    ACTIVITY_IDLE,
    ACTIVITY_WORKING,
    ACTIVITY_WAITING,
    ACTIVITY_EXITED,
    ACTIVITY_SHELL,
} activity_state;

typedef enum { ACTIVITY_LINE_STATE, ACTIVITY_LINE_STATUS } activity_line_kind;

typedef struct {
    activity_line_kind kind;
    int64_t ts_ms;
    /* ACTIVITY_LINE_STATE */
    activity_state state;
    char detail[ACTIVITY_DETAIL_MAX * 4 + 1]; /* 200 characters of UTF-8 at most */
    /* ACTIVITY_LINE_STATUS: each field optional */
    bool has_cost, has_context;
    double cost_usd, context_pct;
    char model[ACTIVITY_MODEL_MAX + 1]; /* "" = not given */
} activity_line;

/* Parses one line (len bytes, without its '\n'). 0, or -1 with err saying
 * why it was dropped. */
int activity_line_parse(const char *line, size_t len, activity_line *out, char *err, size_t errlen);

/* "idle", "working", ...; NULL when out of range. */
const char *activity_state_name(activity_state s);
/* -1 when name is no known state. */
int activity_state_from_name(const char *name);

#endif
