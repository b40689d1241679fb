/* Unit tests for the agent's pure logic: session.json model, collision rules
 * and port auto-pick, lock staleness, settings validation, /proc parsing and
 * the admission message, the capacity meter and the emitter (its queue is
 * in test_event_queue.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/capacity.h"
#include "agent/memory_rest.h"
#include "agent/emitter.h"
#include "agent/lock.h"
#include "agent/session.h"
#include "agent/settings.h"
#include "agent/store.h"
#include "common/fileio.h"
#include "common/tree.h"

#define UUID_A "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
#define UUID_B "0f8fad5b-d9cb-469f-a165-70867728950e"

/* ---- session model ---- */

static void test_session_name_rules(void **state)
{
    assert_true(session_name_is_valid("web"));
    assert_true(session_name_is_valid("A_b-9"));
    char longest[65];
    memset(longest, 'x', 64);
    longest[64] = '\0';
    assert_true(session_name_is_valid(longest));
    char too_long[66];
    memset(too_long, 'x', 65);
    too_long[65] = '\0';
    assert_false(session_name_is_valid(too_long));
    assert_false(session_name_is_valid(""));
    assert_false(session_name_is_valid("a b"));
    assert_false(session_name_is_valid("../x"));
    assert_false(session_name_is_valid("caf\xc3\xa9"));
}

static void test_dns_label_rules(void **state)
{
    assert_true(dns_label_is_valid("a"));
    assert_true(dns_label_is_valid("web-1"));
    assert_true(dns_label_is_valid("0abc"));
    char label63[64];
    memset(label63, 'a', 63);
    label63[63] = '\0';
    assert_true(dns_label_is_valid(label63));
    char label64[65];
    memset(label64, 'a', 64);
    label64[64] = '\0';
    assert_false(dns_label_is_valid(label64));
    assert_false(dns_label_is_valid(""));
    assert_false(dns_label_is_valid("-web"));
    assert_false(dns_label_is_valid("web-"));
    assert_false(dns_label_is_valid("Web"));
    assert_false(dns_label_is_valid("a.b"));
    assert_false(dns_label_is_valid("a_b"));
    assert_true(protocol_is_valid("tcp"));
    assert_true(protocol_is_valid("udp"));
    assert_false(protocol_is_valid("TCP"));
    assert_false(protocol_is_valid("sctp"));
}

static void test_session_round_trip_keeps_unknown_fields(void **state)
{
    const char *text = "{\"uuid\":\"" UUID_A "\",\"name\":\"refactor\",\"port\":8080,"
                       "\"protocol\":\"udp\",\"dns_name\":\"refactor\","
                       "\"created_at\":\"2026-11-24T10:00:00Z\","
                       "\"last_accessed\":\"2026-11-24T11:00:00Z\","
                       "\"color\":\"blue\",\"nested\":{\"a\":[1,2,{\"b\":null}]}}";
    session_meta m;
    char err[256];
    assert_int_equal(session_decode(text, strlen(text), UUID_A, &m, err, sizeof err), 0);
    assert_string_equal(m.name, "refactor");
    assert_int_equal(m.port, 8080);
    assert_string_equal(m.protocol, "udp");
    assert_int_equal(m.created_at, 1795514400);
    snprintf(m.name, sizeof m.name, "renamed");
    size_t len;
    char *out = session_encode(&m, &len);
    assert_non_null(out);
    assert_int_equal(out[len - 1], '\n');
    json_t *again = json_loads(out, 0, NULL);
    assert_non_null(again);
    assert_string_equal(json_string_value(json_object_get(again, "color")), "blue");
    assert_string_equal(json_string_value(json_object_get(again, "name")), "renamed");
    json_t *nested = json_object_get(again, "nested");
    assert_int_equal(json_array_size(json_object_get(nested, "a")), 3);
    assert_string_equal(json_string_value(json_object_get(again, "last_accessed")),
                        "2026-11-24T11:00:00Z");
    json_decref(again);
    free(out);
    session_meta_clear(&m);
}

static void expect_decode_error(const char *text, const char *expect_uuid)
{
    session_meta m;
    char err[256] = "";
    assert_int_equal(session_decode(text, strlen(text), expect_uuid, &m, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_null(m.extra);
}

static void test_session_decode_refuses_bad_files(void **state)
{
    expect_decode_error("{not json", NULL);
    expect_decode_error("[]", NULL);
    expect_decode_error("{\"uuid\":\"" UUID_A "\",\"name\":\"x\"}", NULL); /* no created_at */
    expect_decode_error(
        "{\"uuid\":\"../x\",\"name\":\"x\",\"created_at\":\"2026-11-24T10:00:00Z\"}", NULL);
    expect_decode_error("{\"uuid\":\"" UUID_A "\",\"name\":\"x\",\"port\":70000,"
                        "\"created_at\":\"2026-11-24T10:00:00Z\"}",
                        NULL);
    expect_decode_error("{\"uuid\":\"" UUID_A "\",\"name\":\"x\",\"protocol\":\"sctp\","
                        "\"created_at\":\"2026-11-24T10:00:00Z\"}",
                        NULL);
    expect_decode_error("{\"uuid\":\"" UUID_A "\",\"name\":\"x\",\"dns_name\":\"Bad\","
                        "\"created_at\":\"2026-11-24T10:00:00Z\"}",
                        NULL);
    /* Copied into another session's directory: reported, not trusted. */
    expect_decode_error("{\"uuid\":\"" UUID_A "\",\"name\":\"x\","
                        "\"created_at\":\"2026-11-24T10:00:00Z\"}",
                        UUID_B);
    /* Duplicate keys are ambiguous: refused. */
    expect_decode_error("{\"uuid\":\"" UUID_A "\",\"name\":\"x\",\"name\":\"y\","
                        "\"created_at\":\"2026-11-24T10:00:00Z\"}",
                        NULL);
}

static void test_session_model_and_autonomous(void **state)
{
    const char *base = "{\"uuid\":\"" UUID_A "\",\"name\":\"x\","
                       "\"created_at\":\"2026-11-24T10:00:00Z\"";
    char text[512], err[256];
    session_meta m;
    /* An older file has neither: no model, the agent's default autonomy. */
    snprintf(text, sizeof text, "%s}", base);
    assert_int_equal(session_decode(text, strlen(text), UUID_A, &m, err, sizeof err), 0);
    assert_string_equal(m.model, "");
    assert_int_equal(m.autonomous, AUTONOMOUS_DEFAULT);
    assert_false(session_autonomous(&m, false));
    assert_true(session_autonomous(&m, true));
    json_t *obj = session_to_json(&m);
    assert_string_equal(json_string_value(json_object_get(obj, "model")), "");
    assert_null(json_object_get(obj, "autonomous")); /* absent = the default, kept so */
    json_decref(obj);
    session_meta_clear(&m);

    snprintf(text, sizeof text, "%s,\"model\":\"claude-opus-4.1_x\",\"autonomous\":false}", base);
    assert_int_equal(session_decode(text, strlen(text), UUID_A, &m, err, sizeof err), 0);
    assert_string_equal(m.model, "claude-opus-4.1_x");
    assert_int_equal(m.autonomous, 0);
    assert_false(session_autonomous(&m, true)); /* its own choice wins over the default */
    m.autonomous = 1;
    size_t len;
    char *out = session_encode(&m, &len);
    json_t *again = json_loads(out, 0, NULL);
    assert_true(json_is_true(json_object_get(again, "autonomous")));
    assert_string_equal(json_string_value(json_object_get(again, "model")), "claude-opus-4.1_x");
    json_decref(again);
    free(out);
    session_meta_clear(&m);

    snprintf(text, sizeof text, "%s,\"autonomous\":null}", base);
    assert_int_equal(session_decode(text, strlen(text), UUID_A, &m, err, sizeof err), 0);
    assert_int_equal(m.autonomous, AUTONOMOUS_DEFAULT);
    session_meta_clear(&m);

    const char *bad[] = {
        ",\"model\":\"has space\"}",
        ",\"model\":\"a/b\"}",
        ",\"model\":5}",
        ",\"autonomous\":\"yes\"}",
        ",\"autonomous\":1}",
        ",\"model\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, "%s%s", base, bad[i]);
        expect_decode_error(text, NULL);
    }
}

/* ---- collisions and port auto-pick ---- */

static session_claim claim(const char *uuid, const char *name, int port, const char *proto,
                           const char *dns)
{
    session_claim c;
    memset(&c, 0, sizeof c);
    snprintf(c.uuid, sizeof c.uuid, "%s", uuid);
    snprintf(c.name, sizeof c.name, "%s", name);
    c.port = port;
    snprintf(c.protocol, sizeof c.protocol, "%s", proto);
    snprintf(c.dns_name, sizeof c.dns_name, "%s", dns);
    return c;
}

static void test_claims_collide_per_port_and_protocol(void **state)
{
    session_claim claims[] = {claim(UUID_A, "web", 8080, "tcp", "web"),
                              claim(UUID_B, "dns", 53, "udp", "")};
    char err[256];
    assert_int_equal(claims_check(claims, 2, NULL, 8080, "tcp", NULL, err, sizeof err), -1);
    assert_string_equal(err, "port 8080/tcp already in use by session \"web\"");
    assert_int_equal(claims_check(claims, 2, NULL, 8080, "udp", NULL, err, sizeof err), 0);
    assert_int_equal(claims_check(claims, 2, NULL, 53, "tcp", NULL, err, sizeof err), 0);
    assert_int_equal(claims_check(claims, 2, NULL, 53, "udp", NULL, err, sizeof err), -1);
    /* A session never collides with itself. */
    assert_int_equal(claims_check(claims, 2, UUID_A, 8080, "tcp", "web", err, sizeof err), 0);
    assert_int_equal(claims_check(claims, 2, NULL, 0, "tcp", "web", err, sizeof err), -1);
    assert_string_equal(err, "dns name \"web\" already in use");
    /* Port 0 means none: never a collision. */
    session_claim none[] = {claim(UUID_A, "a", 0, "tcp", "")};
    assert_int_equal(claims_check(none, 1, NULL, 0, "tcp", "", err, sizeof err), 0);
}

static bool busy_1002(int port, const char *protocol, void *ctx)
{
    (*(int *)ctx)++;
    return !(port == 1002 && strcmp(protocol, "tcp") == 0);
}

static void test_port_auto_pick(void **state)
{
    int probes = 0;
    session_claim claims[] = {claim(UUID_A, "a", 1001, "tcp", ""),
                              claim(UUID_B, "b", 1003, "tcp", "")};
    /* 1001 held by a session, 1002 busy on the host, 1003 held: 1004. */
    assert_int_equal(claims_pick_port(claims, 2, NULL, "tcp", busy_1002, &probes), 1004);
    assert_int_equal(probes, 2); /* held ports are not probed */
    assert_int_equal(claims_pick_port(claims, 2, NULL, "udp", busy_1002, &probes), 1001);
    /* Re-picking for a session may keep its own port. */
    assert_int_equal(claims_pick_port(claims, 2, UUID_A, "tcp", busy_1002, &probes), 1001);
    /* The real probe: a port we hold is not free, and the pick skips it. */
    assert_true(host_port_is_free(PORT_AUTO_FIRST, "udp", NULL) ||
                !host_port_is_free(PORT_AUTO_FIRST, "udp", NULL));
}

/* ---- locks ---- */

static void test_lock_staleness_rule(void **state)
{
    time_t now = 1795514400;
    assert_false(lock_is_stale(true, true, now - 60, now));
    assert_true(lock_is_stale(true, false, now - 60, now));
    assert_true(lock_is_stale(false, true, now - 60, now));
    assert_false(lock_is_stale(true, true, now - LOCK_MAX_AGE_S, now));
    assert_true(lock_is_stale(true, true, now - LOCK_MAX_AGE_S - 1, now));
    pid_t pid;
    assert_int_equal(lock_parse_pid("1234\n", &pid), 0);
    assert_int_equal(pid, 1234);
    assert_int_equal(lock_parse_pid("", &pid), -1);
    assert_int_equal(lock_parse_pid("12x", &pid), -1);
    assert_int_equal(lock_parse_pid("-5", &pid), -1);
    unsigned long long ticks;
    const char *stat = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
                       "987654 1000000 100 18446744073709551615\n";
    assert_int_equal(lock_parse_proc_starttime(stat, &ticks), 0);
    assert_int_equal(ticks, 987654);
    assert_int_equal(lock_parse_proc_starttime("4242 (x) S 1 2", &ticks), -1);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/convocate-unit-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void write_lock(const char *path, const char *text, time_t mtime)
{
    assert_int_equal(atomic_write_file(path, text, strlen(text), 0644, KEEP_OWNER, 0), 0);
    struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void test_lock_files(void **state)
{
    char *dir = make_tmpdir();
    char path[PATH_BUF], text[32];
    snprintf(path, sizeof path, "%s/" UUID_A ".lock", dir);
    session_lock lk, second;
    assert_int_equal(lock_acquire(path, &lk), 0);
    assert_true(lock_is_held(path));
    assert_int_equal(lock_acquire(path, &second), 1); /* live: refused */
    lock_release(&lk);
    assert_false(lock_is_held(path));
    assert_int_equal(access(path, F_OK), -1);

    /* A dead owner: stale, removed, and the lock can be taken. */
    write_lock(path, "999999999\n", time(NULL));
    assert_false(lock_is_held(path));
    assert_int_equal(access(path, F_OK), -1);
    /* A live owner but older than 24 h: stale too. */
    snprintf(text, sizeof text, "%d\n", (int)getppid());
    write_lock(path, text, time(NULL) - LOCK_MAX_AGE_S - 60);
    assert_int_equal(lock_acquire(path, &lk), 0);
    /* override removes the file; our release then leaves the new one alone. */
    assert_int_equal(lock_remove(path), 0);
    write_lock(path, text, time(NULL));
    lock_release(&lk);
    assert_true(lock_is_held(path));
    assert_int_equal(lock_remove(path), 0);
    /* A live PID that started after the lock was written is not its owner. */
    write_lock(path, text, time(NULL) - 3600);
    assert_false(lock_is_held(path));
    assert_int_equal(lock_remove(path), 0); /* missing is fine */
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

/* The form a lock takes on a full disk: a symlink whose target is the PID. */
static void test_lock_as_symlink(void **state)
{
    char *dir = make_tmpdir();
    char path[PATH_BUF], pid[32];
    snprintf(path, sizeof path, "%s/" UUID_A ".lock", dir);
    snprintf(pid, sizeof pid, "%d", (int)getppid());
    session_lock lk;
    assert_int_equal(symlink(pid, path), 0); /* a live owner: held */
    assert_true(lock_is_held(path));
    assert_int_equal(lock_acquire(path, &lk), 1);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("999999999", path), 0); /* a dead owner: stale */
    assert_false(lock_is_held(path));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(symlink("/etc/passwd", path), 0); /* no PID: stale, never followed */
    assert_int_equal(lock_acquire(path, &lk), 0);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* with room on the disk, a file as before */
    lock_release(&lk);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

/* ---- settings ---- */

static int apply_text(agent_settings *s, const char *text, char *err, size_t errlen)
{
    json_t *obj = json_loads(text, 0, NULL);
    assert_non_null(obj);
    int rc = settings_apply(s, obj, err, errlen);
    json_decref(obj);
    return rc;
}

static void test_settings_validation(void **state)
{
    agent_settings s;
    char err[256];
    settings_defaults(&s);
    assert_int_equal(s.admission_threshold_pct, 90);
    assert_int_equal(s.heartbeat_s, 30);
    assert_false(s.docker_socket);
    assert_int_equal(apply_text(&s,
                                "{\"admission_threshold_pct\":50,\"heartbeat_s\":300,"
                                "\"docker_socket\":true,\"session_cpus\":1.5,"
                                "\"session_memory_mb\":2048,\"dns_server\":\"10.0.0.1\","
                                "\"default_autonomous\":true}",
                                err, sizeof err),
                     0);
    assert_int_equal(s.admission_threshold_pct, 50);
    assert_true(s.session_cpus > 1.49 && s.session_cpus < 1.51);
    assert_string_equal(s.dns_server, "10.0.0.1");
    assert_true(s.default_autonomous);
    agent_settings before = s;
    const char *bad[] = {
        "{\"admission_threshold_pct\":49}",
        "{\"admission_threshold_pct\":96}",
        "{\"heartbeat_s\":4}",
        "{\"heartbeat_s\":301}",
        "{\"docker_socket\":1}",
        "{\"default_autonomous\":\"yes\"}",
        "{\"default_autonomous\":null}",
        "{\"session_cpus\":-1}",
        "{\"session_memory_mb\":-1}",
        "{\"session_memory_mb\":1.5}",
        "{\"dns_server\":\"10.0.0\"}",
        "{\"dns_server\":\"::1\"}",
        "{\"colour\":\"red\"}",
        "{\"heartbeat_s\":10,\"bogus\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(apply_text(&s, bad[i], err, sizeof err), -1);
        assert_memory_equal(&s, &before, sizeof s); /* nothing half-applied */
    }
    assert_int_equal(apply_text(&s, "{\"dns_server\":\"\",\"session_cpus\":2}", err, sizeof err),
                     0);
    assert_string_equal(s.dns_server, "");

    char *dir = make_tmpdir();
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/settings.json", dir);
    agent_settings loaded;
    assert_int_equal(settings_load(path, &loaded, err, sizeof err), 0); /* missing: defaults */
    assert_int_equal(loaded.admission_threshold_pct, 90);
    assert_int_equal(settings_save(path, &s, err, sizeof err), 0);
    assert_int_equal(settings_load(path, &loaded, err, sizeof err), 0);
    assert_int_equal(loaded.admission_threshold_pct, 50);
    assert_int_equal(loaded.session_memory_mb, 2048);
    assert_true(loaded.default_autonomous);
    settings_defaults(&loaded);
    assert_false(loaded.default_autonomous);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

/* ---- capacity ---- */

static const char *stat_a = "cpu  100 0 100 700 100 0 0 0 0 0\n"
                            "cpu0 50 0 50 350 50 0 0 0 0 0\n"
                            "cpu1 50 0 50 350 50 0 0 0 0 0\n"
                            "intr 12345\nctxt 99\n";
static const char *stat_b = "cpu  250 0 150 800 100 0 0 0 0 0\n"
                            "cpu0 125 0 75 400 50 0 0 0 0 0\n"
                            "cpu1 125 0 75 400 50 0 0 0 0 0\n";

static void test_capacity_parsing(void **state)
{
    cpu_sample a, b;
    assert_int_equal(capacity_parse_stat(stat_a, &a), 0);
    assert_int_equal(capacity_parse_stat(stat_b, &b), 0);
    assert_int_equal(a.ncpu, 2);
    assert_int_equal(a.total, 1000);
    assert_int_equal(a.busy, 200);
    /* 200 busy of 300 elapsed jiffies. */
    double pct = capacity_cpu_pct(&a, &b);
    assert_true(pct > 66.6 && pct < 66.7);
    assert_true(capacity_cpu_pct(&b, &a) == 0.0); /* counters never go back */
    assert_int_equal(capacity_parse_stat("intr 1\n", &a), -1);

    unsigned long long total, avail;
    const char *mem = "MemTotal:       16000000 kB\nMemFree:  100 kB\n"
                      "MemAvailable:    1104000 kB\nBuffers: 1 kB\n";
    assert_int_equal(capacity_parse_meminfo(mem, &total, &avail), 0);
    assert_int_equal(total, 16000000);
    assert_int_equal(avail, 1104000);
    assert_int_equal(capacity_parse_meminfo("MemTotal: 10 kB\n", &total, &avail), -1);
}

static void test_admission_message(void **state)
{
    capacity_snapshot snap = {
        .cpu_pct = 12.0, .mem_pct = 93.1, .mem_total_kb = 16777216, .ncpu = 4};
    admission_request req = {.threshold_pct = 90, .running = 6};
    char err[256];
    assert_int_equal(capacity_admit(&snap, &req, err, sizeof err), -1);
    assert_string_equal(err,
                        "admission denied: memory 93.1% of host (cap 90%); 6 sessions running");
    snap.mem_pct = 40.0;
    snap.cpu_pct = 90.0; /* at the cap is over it */
    assert_int_equal(capacity_admit(&snap, &req, err, sizeof err), -1);
    assert_string_equal(err, "admission denied: cpu 90.0% of host (cap 90%); 6 sessions running");
    snap.cpu_pct = 10.0;
    assert_int_equal(capacity_admit(&snap, &req, err, sizeof err), 0);
    /* 7 x 2048 MB of 16384 MB = 87.5%: fits; 8 would not. */
    req.session_memory_mb = 2048;
    assert_int_equal(capacity_admit(&snap, &req, err, sizeof err), 0);
    req.running = 7;
    assert_int_equal(capacity_admit(&snap, &req, err, sizeof err), -1);
    assert_string_equal(err, "admission denied: session memory limits 8 x 2048 MB = 100.0% of "
                             "host (cap 90%); 7 sessions running");
    req.session_memory_mb = 0;
    req.session_cpus = 1.0;
    req.running = 3; /* 4 x 1 cpu of 4 = 100% */
    assert_int_equal(capacity_admit(&snap, &req, err, sizeof err), -1);
    assert_non_null(strstr(err, "session cpu limits 4 x 1.00 cpus = 100.0% of host (cap 90%)"));
    req.running = 1;
    req.session_cpus = 0;
    snap.mem_pct = 95.0;
    assert_int_equal(capacity_admit(&snap, &req, err, sizeof err), -1);
    assert_non_null(strstr(err, "; 1 session running"));
}

static void test_capacity_measures_this_host(void **state)
{
    capacity_meter m;
    capacity_snapshot s;
    char err[256];
    capacity_meter_init(&m);
    assert_int_equal(capacity_measure(&m, &s, err, sizeof err), 0);
    assert_true(s.cpu_pct >= 0.0 && s.cpu_pct <= 100.0);
    assert_true(s.mem_pct > 0.0 && s.mem_pct < 100.0);
    assert_true(s.ncpu >= 1);
    capacity_meter_destroy(&m);
}

/* The sampling thread fills the meter by itself; a read then takes the
 * cached sample instead of reading /proc (and never sleeps). */
static void test_capacity_meter_serves_the_threads_sample(void **state)
{
    capacity_meter m;
    capacity_snapshot s;
    char err[256];
    capacity_meter_init(&m);
    assert_true(m.thread_running);
    for (int i = 0; i < 500; i++) { /* the first sample is due after 200 ms */
        pthread_mutex_lock(&m.mu);
        bool valid = m.valid;
        pthread_mutex_unlock(&m.mu);
        if (valid)
            break;
        usleep(10000);
    }
    assert_int_equal(capacity_measure(&m, &s, err, sizeof err), 0);
    assert_int_equal(m.served_cached, 1);
    assert_int_equal(m.sampled_inline, 0);
    assert_true(s.ncpu >= 1 && s.mem_pct > 0.0);
    capacity_meter_destroy(&m);
}

/* The heap is trimmed once per quiet spell that follows activity: never
 * while calls keep coming, never twice for one spell, never when idle all
 * along. */
static void test_memory_rest_trims_once_a_quiet_spell(void **state)
{
    memory_rest r;
    memory_rest_init(&r);
    assert_false(memory_rest_tick(&r)); /* idle from the start: nothing freed */
    assert_false(memory_rest_tick(&r));
    for (int period = 0; period < 5; period++) { /* steady load */
        memory_rest_note(&r);
        assert_false(memory_rest_tick(&r));
    }
    assert_true(memory_rest_tick(&r)); /* the first quiet period */
    assert_false(memory_rest_tick(&r));
    assert_false(memory_rest_tick(&r));
    memory_rest_note(&r);
    memory_rest_note(&r);
    assert_false(memory_rest_tick(&r));
    assert_true(memory_rest_tick(&r));
    assert_int_equal(atomic_load(&r.trims), 2);
}

/* The sampling thread runs its hook once a period, outside its lock. */
static void count_tick(void *ctx)
{
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static void test_capacity_meter_runs_its_tick(void **state)
{
    capacity_meter m;
    atomic_int ticks = 0;
    capacity_meter_init(&m);
    capacity_meter_on_tick(&m, count_tick, &ticks);
    for (int i = 0; i < 500 && atomic_load(&ticks) < 2; i++) /* ~1 s a tick */
        usleep(10000);
    assert_true(atomic_load(&ticks) >= 2);
    capacity_meter_destroy(&m);
}

static void test_capacity_snapshot_of_a_reading(void **state)
{
    cpu_sample before = {.busy = 100, .total = 1000, .ncpu = 2};
    host_reading now = {
        .cpu = {.busy = 150, .total = 1200, .ncpu = 2}, .mem_total_kb = 1000, .mem_avail_kb = 250};
    capacity_snapshot s;
    capacity_snapshot_of(&before, &now, &s);
    assert_true(s.cpu_pct > 24.99 && s.cpu_pct < 25.01);
    assert_true(s.mem_pct > 74.99 && s.mem_pct < 75.01);
    assert_int_equal(s.ncpu, 2);
    assert_int_equal(s.mem_total_kb, 1000);
}

/* ---- emitter ---- */

static void test_event_encoding(void **state)
{
    json_t *data = json_pack("{s:s}", "name", "web");
    char *line = emitter_encode("abc12345", "container.created", UUID_A, data);
    json_decref(data);
    json_t *ev = json_loads(line, 0, NULL);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "agent_id")), "abc12345");
    assert_string_equal(json_string_value(json_object_get(ev, "session_id")), UUID_A);
    assert_non_null(json_object_get(ev, "timestamp"));
    json_decref(ev);
    free(line);
    /* session_id only on container.* events. */
    line = emitter_encode("abc12345", "agent.heartbeat", UUID_A, NULL);
    ev = json_loads(line, 0, NULL);
    assert_null(json_object_get(ev, "session_id"));
    assert_true(json_is_null(json_object_get(ev, "data")));
    json_decref(ev);
    free(line);
}

static void test_emitter_writes_events_log(void **state)
{
    char *dir = make_tmpdir();
    char path[PATH_BUF], err[256];
    snprintf(path, sizeof path, "%s/events.log", dir);
    emitter *e = emitter_new("abc12345", path, NULL, err, sizeof err);
    assert_non_null(e);
    for (int i = 0; i < 10; i++)
        emitter_publish(e, "container.edited", UUID_A, json_pack("{s:i}", "n", i));
    emitter_free(e); /* drains */
    char *text;
    assert_int_equal(read_file_bounded(path, 1 << 20, &text, NULL), 0);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), n++) {
        json_t *ev = json_loads(line, 0, NULL);
        assert_non_null(ev);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "data"), "n")), n);
        json_decref(ev);
    }
    assert_int_equal(n, 10);
    free(text);
    assert_int_equal(tree_remove(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_name_rules),
        cmocka_unit_test(test_dns_label_rules),
        cmocka_unit_test(test_session_round_trip_keeps_unknown_fields),
        cmocka_unit_test(test_session_decode_refuses_bad_files),
        cmocka_unit_test(test_session_model_and_autonomous),
        cmocka_unit_test(test_claims_collide_per_port_and_protocol),
        cmocka_unit_test(test_port_auto_pick),
        cmocka_unit_test(test_lock_staleness_rule),
        cmocka_unit_test(test_lock_files),
        cmocka_unit_test(test_lock_as_symlink),
        cmocka_unit_test(test_settings_validation),
        cmocka_unit_test(test_capacity_parsing),
        cmocka_unit_test(test_admission_message),
        cmocka_unit_test(test_capacity_measures_this_host),
        cmocka_unit_test(test_capacity_meter_serves_the_threads_sample),
        cmocka_unit_test(test_memory_rest_trims_once_a_quiet_spell),
        cmocka_unit_test(test_capacity_meter_runs_its_tick),
        cmocka_unit_test(test_capacity_snapshot_of_a_reading),
        cmocka_unit_test(test_event_encoding),
        cmocka_unit_test(test_emitter_writes_events_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
