/* Agent settings (SPEC 7, settings-get/settings-set), persisted in
 * <root>/etc/convocate-agent/settings.json. Every key is validated; unknown
 * keys and out-of-range values are refused, never silently clamped. */
#ifndef CONVOCATE_AGENT_SETTINGS_H
#define CONVOCATE_AGENT_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define THRESHOLD_PCT_MIN 50
#define THRESHOLD_PCT_MAX 95
#define HEARTBEAT_S_MIN 5
#define HEARTBEAT_S_MAX 300
#define SESSION_CPUS_MAX 4096.0
#define SESSION_MEMORY_MB_MAX (64LL * 1024 * 1024) /* 64 TiB */
#define SETTINGS_JSON_MAX (16 * 1024)

typedef struct {
    int admission_threshold_pct;
    int heartbeat_s;
    bool docker_socket;
    double session_cpus;     /* 0 = no limit */
    long session_memory_mb;  /* 0 = no limit */
    char dns_server[16];     /* dotted IPv4, "" = engine default */
    bool default_autonomous; /* a session's autonomy when it sets none (SPEC 15) */
} agent_settings;

void settings_defaults(agent_settings *s);

/* Applies the keys present in obj (a partial settings object) to *s. Nothing
 * changes unless every key is known and valid; else -1 with err filled. */
int settings_apply(agent_settings *s, json_t *obj, char *err, size_t errlen);

json_t *settings_to_json(const agent_settings *s);

/* Loads path over the defaults; a missing file means defaults. */
int settings_load(const char *path, agent_settings *s, char *err, size_t errlen);
/* Writes path atomically (0644). */
int settings_save(const char *path, const agent_settings *s, char *err, size_t errlen);

#endif
