/* settings.json (agent/settings.c): settings_load's parser on a file, and
 * settings_apply on what settings-set would hand it. Applied settings stay
 * in range and survive their own encoding. */
#include <string.h>

#include "agent/settings.h"
#include "fuzz.h"

static void check_range(const agent_settings *s)
{
    FUZZ_CHECK(s->admission_threshold_pct >= THRESHOLD_PCT_MIN &&
               s->admission_threshold_pct <= THRESHOLD_PCT_MAX);
    FUZZ_CHECK(s->heartbeat_s >= HEARTBEAT_S_MIN && s->heartbeat_s <= HEARTBEAT_S_MAX);
    FUZZ_CHECK(s->session_cpus >= 0 && s->session_cpus <= SESSION_CPUS_MAX);
    FUZZ_CHECK(s->session_memory_mb >= 0 && s->session_memory_mb <= SESSION_MEMORY_MB_MAX);
    FUZZ_CHECK(memchr(s->dns_server, '\0', sizeof s->dns_server) != NULL);
}

/* Field by field: the struct's padding is not part of the settings. */
static int same(const agent_settings *a, const agent_settings *b)
{
    return a->admission_threshold_pct == b->admission_threshold_pct &&
           a->heartbeat_s == b->heartbeat_s && a->docker_socket == b->docker_socket &&
           a->session_cpus == b->session_cpus && a->session_memory_mb == b->session_memory_mb &&
           strcmp(a->dns_server, b->dns_server) == 0;
}

static void round_trip(const agent_settings *s)
{
    agent_settings again;
    char err[256];
    settings_defaults(&again);
    json_t *obj = settings_to_json(s);
    FUZZ_CHECK(obj != NULL);
    FUZZ_CHECK(settings_apply(&again, obj, err, sizeof err) == 0);
    FUZZ_CHECK(same(&again, s));
    json_decref(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agent_settings s;
    char err[512] = "";
    if (settings_load(fuzz_file(data, size), &s, err, sizeof err) == 0) {
        check_range(&s);
        round_trip(&s);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    /* settings-set: a partial object over the defaults */
    json_t *obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (obj == NULL)
        return 0;
    settings_defaults(&s);
    agent_settings before = s;
    if (settings_apply(&s, obj, err, sizeof err) == 0) {
        check_range(&s);
        round_trip(&s);
    } else {
        FUZZ_CHECK(same(&before, &s)); /* nothing changes on a refusal */
    }
    json_decref(obj);
    return 0;
}
