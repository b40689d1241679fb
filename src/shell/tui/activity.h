/* A session's activity (SPEC 16) as the TUI keeps it: parsed and bounded from
 * the "activity" object of list/get or a session.activity event, and put into
 * words for the table ("waiting 3m"). No curses here, so it is unit-tested. */
#ifndef CONVOCATE_SHELL_TUI_ACTIVITY_H
#define CONVOCATE_SHELL_TUI_ACTIVITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define ACTIVITY_DETAIL_MAX 200

typedef struct {
    bool known;    /* an activity object was given and parsed (false = null) */
    char state[8]; /* idle, working, waiting, exited or shell */
    time_t since;  /* 0 when the object carried no usable time */
    char detail[ACTIVITY_DETAIL_MAX + 1];
    bool has_cost, has_context;
    double cost_usd, context_pct;
} tui_activity;

/* Fills a from an activity object; null (or anything not a valid object)
 * leaves it unknown. Returns a->known. */
bool activity_from_json(tui_activity *a, json_t *obj);
/* "2026-11-27T15:27:24Z" (fraction allowed) as seconds since the epoch; 0 if
 * it does not parse. */
time_t activity_parse_time(const char *rfc3339);
/* Seconds as the table shows them: 12s, 3m, 1h, 2d. */
void activity_age(char *out, size_t size, long seconds);
/* The table's word and time: "waiting 3m", "-" when unknown. */
void activity_words(char *out, size_t size, const tui_activity *a, time_t now);
bool activity_is_waiting(const tui_activity *a);

#endif
