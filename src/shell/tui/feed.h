/* The hook for live updates from `convocate status-serve` (SPEC 8.4): the
 * TUI subscribes to /run/convocate/status.sock when it exists and turns each
 * event into "ask that agent again now" (or marks the agent silent/live);
 * session.activity events are applied to their row as they are (SPEC 16).
 * Without the socket the 15 s refresh alone keeps the list current. */
#ifndef CONVOCATE_SHELL_TUI_FEED_H
#define CONVOCATE_SHELL_TUI_FEED_H

#include <stddef.h>

#include "shell/tui/model.h"

#define FEED_RETRY_S 15

typedef struct {
    int fd; /* -1 while not subscribed */
    char buf[16384];
    size_t len;
} tui_feed;

void feed_init(tui_feed *f);
/* Tries to subscribe when not subscribed; cheap to call every tick. */
void feed_try_connect(tui_feed *f);
/* Reads what is there and applies complete lines; closes the fd at EOF. */
void feed_on_readable(tui_feed *f, tui_model *m);
void feed_close(tui_feed *f);

#endif
