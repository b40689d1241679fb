/* What status-serve knows about each agent (SPEC 8.4): when it was last
 * heard from and whether it is live or silent (no event for 3 heartbeats).
 * Changes of that state become `shell.agent` events for the feed. */
#ifndef CONVOCATE_SHELL_STATUS_AGENTS_H
#define CONVOCATE_SHELL_STATUS_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATUS_DEFAULT_HEARTBEAT_S 30
#define STATUS_SILENT_AFTER_BEATS 3
#define STATUS_MAX_AGENTS 4096

typedef struct status_agents status_agents;

status_agents *status_agents_new(void);
void status_agents_free(status_agents *a);

/* A registered agent not heard from yet: live, with no last_seen, until 3
 * heartbeats pass from now_ms without an event. */
int status_agents_register(status_agents *a, const char *id, int64_t now_ms);

/* An event from id at now_ms (monotonic). heartbeat_s > 0 retimes it;
 * gone (agent.shutdown) makes it silent at once. Returns a malloc'd
 * shell.agent line when the live state changed, else NULL. */
char *status_agents_seen(status_agents *a, const char *id, int heartbeat_s, bool gone,
                         int64_t now_ms);

/* shell.agent lines for every agent that turned silent by now_ms, as one
 * malloc'd buffer (NULL when none). */
char *status_agents_check(status_agents *a, int64_t now_ms);

/* One shell.agent line per known agent, for a new subscriber: fn is called
 * with each line. */
void status_agents_each(status_agents *a, void (*fn)(const char *line, size_t len, void *ctx),
                        void *ctx);

/* The line itself (for tests): "{"type":"shell.agent",...}\n", malloc'd. */
char *status_agent_line(const char *id, bool live, long long last_seen);

#endif
