/* Unit tests for the agent ops through agent_rpc_handle, under a temporary
 * --root, with an in-memory fake of the engine driver (docker.h) so the op
 * logic is tested alone: error texts, collisions, locks, settings, events,
 * run specs, recovery and that a slow stop blocks no other session. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/capacity.h"
#include "agent/engine_watch.h"
#include "agent/ops.h"
#include "engine/docker.h"
#include "engine/events.h"
#include "common/fileio.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "common/tree.h"

/* ---- the fake engine ---- */

#define FAKE_MAX 64
static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static char fake_running[FAKE_MAX][UUID_STR_LEN];
static int fake_n;
static int fake_stop_ms;    /* how long a stop takes */
static int fake_list_calls; /* from the test's own thread, not the engine watcher's */
static pthread_t fake_counting_thread;
static docker_run_spec fake_last_spec;
static char fake_last_image[256], fake_last_sock[PATH_BUF], fake_last_claude_bin[PATH_BUF];
static char fake_last_claude_env[PATH_BUF], fake_last_model[80];
/* The spec's strings may live on the caller's stack: what a test reads after
 * the call is copied here (fake_last_spec's pointers are only NULL-checked,
 * or point at the agent's own lasting strings). */
static char fake_last_activity[PATH_BUF];
static int fake_starts;

struct docker_client {
    int unused;
};

docker_client *docker_new(const char *url, char *err, size_t errlen)
{
    return calloc(1, sizeof(docker_client));
}
void docker_free(docker_client *d)
{
    free(d);
}
int docker_ping(docker_client *d, char *err, size_t errlen)
{
    return 0;
}

static int fake_find(const char *uuid)
{
    for (int i = 0; i < fake_n; i++)
        if (strcmp(fake_running[i], uuid) == 0)
            return i;
    return -1;
}

int docker_start_session(docker_client *d, const docker_run_spec *spec, char *err, size_t errlen)
{
    pthread_mutex_lock(&fake_mu);
    fake_last_spec = *spec;
    snprintf(fake_last_image, sizeof fake_last_image, "%s", spec->image);
    snprintf(fake_last_sock, sizeof fake_last_sock, "%s",
             spec->docker_sock ? spec->docker_sock : "");
    snprintf(fake_last_claude_bin, sizeof fake_last_claude_bin, "%s",
             spec->claude_bin ? spec->claude_bin : "");
    snprintf(fake_last_claude_env, sizeof fake_last_claude_env, "%s",
             spec->claude_env ? spec->claude_env : "");
    snprintf(fake_last_model, sizeof fake_last_model, "%s", spec->model ? spec->model : "(null)");
    snprintf(fake_last_activity, sizeof fake_last_activity, "%s",
             spec->activity ? spec->activity : "(null)");
    fake_starts++;
    if (fake_find(spec->uuid) < 0 && fake_n < FAKE_MAX)
        snprintf(fake_running[fake_n++], UUID_STR_LEN, "%s", spec->uuid);
    pthread_mutex_unlock(&fake_mu);
    return 0;
}

int docker_stop_session(docker_client *d, const char *uuid, int grace_s, char *err, size_t errlen)
{
    usleep((useconds_t)fake_stop_ms * 1000);
    pthread_mutex_lock(&fake_mu);
    int i = fake_find(uuid);
    if (i >= 0)
        memcpy(fake_running[i], fake_running[--fake_n], UUID_STR_LEN);
    pthread_mutex_unlock(&fake_mu);
    return 0;
}

int docker_list_sessions(docker_client *d, const char *agent_id, docker_session_info **out,
                         size_t *n, char *err, size_t errlen)
{
    pthread_mutex_lock(&fake_mu);
    if (pthread_equal(pthread_self(), fake_counting_thread))
        fake_list_calls++;
    *out = calloc((size_t)fake_n + 1, sizeof **out);
    for (int i = 0; i < fake_n; i++) {
        memcpy((*out)[i].uuid, fake_running[i], UUID_STR_LEN);
        (*out)[i].running = true;
    }
    *n = (size_t)fake_n;
    pthread_mutex_unlock(&fake_mu);
    return 0;
}

/* A calm host: these tests are about the ops, and a test machine's real
 * load (other suites side by side) must not refuse their creates. Each
 * reading adds idle time only, so the CPU share is 0 %, and memory is 25 %
 * used; admission by limits is still real (test_admission_*). */
int capacity_read_cpu(cpu_sample *out, char *err, size_t errlen)
{
    static atomic_ullong idle_jiffies;
    (void)err, (void)errlen;
    *out = (cpu_sample){
        .busy = 1000, .total = 1000 + atomic_fetch_add(&idle_jiffies, 100) + 100, .ncpu = 2};
    return 0;
}

int capacity_read_host(host_reading *out, char *err, size_t errlen)
{
    out->mem_total_kb = 8ULL * 1024 * 1024;
    out->mem_avail_kb = 6ULL * 1024 * 1024;
    return capacity_read_cpu(&out->cpu, err, errlen);
}

/* A stream that stays up and quiet until the agent stops following it. */
int docker_follow_events(docker_client *d, const char *agent_id, double since_s,
                         void (*on_up)(void *ctx),
                         void (*on_event)(const docker_event *ev, void *ctx), void *ctx,
                         atomic_bool *stop, char *err, size_t errlen)
{
    (void)d, (void)agent_id, (void)since_s, (void)on_up, (void)on_event, (void)ctx, (void)err,
        (void)errlen;
    while (!atomic_load(stop))
        sleep_ms(10);
    return 0;
}

int docker_session_running(docker_client *d, const char *uuid, bool *running, char *err,
                           size_t errlen)
{
    pthread_mutex_lock(&fake_mu);
    *running = fake_find(uuid) >= 0;
    pthread_mutex_unlock(&fake_mu);
    return 0;
}

int docker_detach_clients(docker_client *d, const char *uuid, char *err, size_t errlen)
{
    return 0;
}

/* peek and send: the argv of the last exec, and tmux's answers. */
static char fake_last_exec[16][128];

int docker_exec_capture(docker_client *d, const char *uuid, const char *const argv[],
                        size_t max_out, exec_output *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&fake_mu);
    bool running = fake_find(uuid) >= 0;
    pthread_mutex_unlock(&fake_mu);
    if (!running) { /* what the engine's exec create answers: 404 or 409 */
        snprintf(err, errlen, "container convocate-session-%s is not running", uuid);
        return EXEC_NOT_RUNNING;
    }
    bool end = false;
    for (int i = 0; i < 16; i++) {
        end = end || argv[i] == NULL; /* never reads past the NULL */
        snprintf(fake_last_exec[i], sizeof fake_last_exec[i], "%s", end ? "" : argv[i]);
    }
    bool peek = strcmp(argv[1], "display-message") == 0;
    out->data = strdup(peek ? "80 24\n\x1b[1mhello\x1b[0m\n" : "");
    out->len = strlen(out->data);
    return 0;
}

void exec_output_clear(exec_output *out)
{
    free(out->data);
    out->data = NULL;
}

/* ---- fixture ---- */

typedef struct {
    char root[256];
    char home[PATH_BUF];
    char events[PATH_BUF];
    agent_config cfg;
    agent *a;
} fixture;

static void write_file(const char *path, const char *text)
{
    assert_int_equal(atomic_write_file(path, text, strlen(text), 0644, KEEP_OWNER, 0), 0);
}

static void start(fixture *f)
{
    char err[256];
    f->a = agent_new(&f->cfg, err, sizeof err);
    if (f->a == NULL)
        fail_msg("agent_new: %s", err);
}

/* The agent starts again on the same root: what it holds in memory is
 * loaded from the disk anew (a test's hand edit of a file is seen). */
static void restart_agent(fixture *f)
{
    agent_free(f->a);
    start(f);
}

/* <root>/var/lib/convocate-agent/sessions/<uuid>.json */
static void meta_path(const fixture *f, const char *uuid, char *out, size_t size)
{
    snprintf(out, size, "%s/var/lib/convocate-agent/sessions/%s.json", f->root, uuid);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char tmpl[] = "/tmp/convocate-ops-XXXXXX";
    char path[PATH_BUF * 2];
    assert_non_null(mkdtemp(tmpl));
    snprintf(f->root, sizeof f->root, "%s", tmpl);
    assert_int_equal(paths_set_root(f->root), 0);
    snprintf(path, sizeof path, "%s/etc/convocate-agent", f->root);
    assert_int_equal(mkdir_p(path, 0750), 0);
    snprintf(path, sizeof path, "%s/etc/convocate-agent/agent-id", f->root);
    write_file(path, "test1234\n");
    snprintf(path, sizeof path, "%s/etc/convocate-agent/current-image", f->root);
    write_file(path, "convocate:v9.9.9\n");
    /* Not the default, so that settings-get shows the file was read. */
    snprintf(path, sizeof path, "%s/etc/convocate-agent/settings.json", f->root);
    write_file(path, "{\"admission_threshold_pct\":95}\n");
    snprintf(f->home, sizeof f->home, "%s/home/claude", f->root);
    snprintf(path, sizeof path, "%s/.skel", f->home);
    assert_int_equal(mkdir_p(path, 0755), 0);
    snprintf(path, sizeof path, "%s/.skel/CLAUDE.md", f->home);
    write_file(path, "# starter\n");
    snprintf(f->events, sizeof f->events, "%s/events.log", f->root);
    snprintf(f->cfg.docker_host, sizeof f->cfg.docker_host, "unix:///run/fake-docker.sock");
    snprintf(f->cfg.events_log, sizeof f->cfg.events_log, "%s", f->events);
    f->cfg.claude_uid = CLAUDE_UID_DEFAULT;
    f->cfg.claude_gid = CLAUDE_GID_DEFAULT;
    fake_n = 0;
    fake_stop_ms = 0;
    start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    agent_free(f->a);
    tree_remove(f->root);
    paths_set_root(NULL);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static json_t *rpc(fixture *f, const char *line)
{
    char *resp = agent_rpc_handle(f->a, line, strlen(line));
    assert_non_null(resp);
    assert_int_equal(resp[strlen(resp) - 1], '\n');
    json_t *j = json_loads(resp, 0, NULL);
    if (j == NULL)
        fail_msg("not JSON: %s", resp);
    free(resp);
    return j;
}

static json_t *rpcf(fixture *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *rpcf(fixture *f, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return rpc(f, line);
}

static json_t *ok_result(json_t *resp)
{
    if (!json_is_true(json_object_get(resp, "ok"))) {
        char *s = json_dumps(resp, 0);
        fail_msg("expected ok, got %s", s);
    }
    json_t *r = json_incref(json_object_get(resp, "result"));
    json_decref(resp);
    return r;
}

static void expect_error(json_t *resp, const char *text)
{
    const char *got = json_string_value(json_object_get(resp, "error"));
    assert_false(json_is_true(json_object_get(resp, "ok")));
    if (got == NULL || strcmp(got, text) != 0)
        fail_msg("expected error \"%s\", got \"%s\"", text, got ? got : "(none)");
    json_decref(resp);
}

static void expect_error_prefix(json_t *resp, const char *prefix)
{
    const char *got = json_string_value(json_object_get(resp, "error"));
    if (got == NULL || strncmp(got, prefix, strlen(prefix)) != 0)
        fail_msg("expected error starting \"%s\", got \"%s\"", prefix, got ? got : "(none)");
    json_decref(resp);
}

static json_t *create(fixture *f, const char *params)
{
    return rpcf(f, "{\"op\":\"create\",\"params\":%s}", params);
}

static char *create_ok(fixture *f, const char *params)
{
    json_t *r = ok_result(create(f, params));
    char *uuid = strdup(json_string_value(json_object_get(r, "uuid")));
    json_decref(r);
    return uuid;
}

static json_t *read_json_file(const char *path)
{
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    return j;
}

/* ---- tests ---- */

static void test_ping_and_unknown_op(void **state)
{
    fixture *f = *state;
    json_t *r = ok_result(rpc(f, "{\"op\":\"ping\",\"params\":null}"));
    assert_string_equal(json_string_value(json_object_get(r, "agent_id")), "test1234");
    assert_string_equal(json_string_value(json_object_get(r, "image_tag")), "convocate:v9.9.9");
    assert_non_null(json_object_get(r, "version"));
    time_t t;
    assert_true(rfc3339_parse(json_string_value(json_object_get(r, "server_time")), &t));
    json_t *cap = json_object_get(r, "capacity");
    assert_int_equal(json_integer_value(json_object_get(cap, "threshold_pct")), 95);
    assert_true(json_is_number(json_object_get(cap, "cpu_pct")));
    assert_true(json_is_number(json_object_get(cap, "mem_pct")));
    assert_int_equal(json_integer_value(json_object_get(cap, "sessions")), 0);
    json_decref(r);
    expect_error(rpc(f, "{\"op\":\"frobnicate\",\"params\":null}"), "unknown op \"frobnicate\"");
    expect_error_prefix(rpc(f, "{\"op\":\"ping\",\"params\":5}"), "decode params: ");
    expect_error_prefix(rpc(f, "{\"op\":\"ping\",\"params\":{\"x\":1}}"), "decode params: ");
    expect_error_prefix(rpc(f, "{\"op\":"), "decode request: ");
}

static void test_create_list_get(void **state)
{
    fixture *f = *state;
    json_t *r = ok_result(create(f, "{\"name\":\"web\",\"port\":8080,\"dns_name\":\"web\"}"));
    const char *uuid = json_string_value(json_object_get(r, "uuid"));
    assert_string_equal(json_string_value(json_object_get(r, "protocol")), "tcp");
    assert_string_equal(json_string_value(json_object_get(r, "state")), "-");
    assert_false(json_is_true(json_object_get(r, "running")));
    assert_false(json_is_true(json_object_get(r, "locked")));
    assert_int_equal(json_integer_value(json_object_get(r, "attached")), 0);
    char path[PATH_BUF * 2];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", f->home, uuid);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(st.st_uid, CLAUDE_UID_DEFAULT);
    snprintf(path, sizeof path, "%s/%s/CLAUDE.md", f->home, uuid);
    assert_int_equal(lstat(path, &st), 0); /* the skel was copied */
    meta_path(f, uuid, path, sizeof path);
    json_t *disk = read_json_file(path);
    assert_string_equal(json_string_value(json_object_get(disk, "name")), "web");
    json_decref(disk);
    assert_int_equal(lstat(path, &st), 0); /* the agent's alone */
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    snprintf(path, sizeof path, "%s/%s/session.json", f->home, uuid);
    assert_int_equal(lstat(path, &st), -1); /* the home holds user data only */

    json_t *list = ok_result(rpc(f, "{\"op\":\"list\",\"params\":null}"));
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "uuid")), uuid);
    json_decref(list);
    json_t *got = ok_result(rpcf(f, "{\"op\":\"get\",\"params\":{\"id\":\"%s\"}}", uuid));
    assert_int_equal(json_integer_value(json_object_get(got, "port")), 8080);
    json_decref(got);
    json_decref(r);
    expect_error(
        rpc(f, "{\"op\":\"get\",\"params\":{\"id\":\"0f8fad5b-d9cb-469f-a165-70867728950e\"}}"),
        "session \"0f8fad5b-d9cb-469f-a165-70867728950e\" not found");
    expect_error_prefix(create(f, "{\"port\":1}"), "decode params: ");
    expect_error_prefix(create(f, "{\"name\":\"a b\"}"), "invalid name ");
    expect_error_prefix(create(f, "{\"name\":\"x\",\"protocol\":\"sctp\"}"), "invalid protocol ");
    expect_error_prefix(create(f, "{\"name\":\"x\",\"dns_name\":\"-x\"}"), "invalid dns name ");
    expect_error_prefix(create(f, "{\"name\":\"x\",\"port\":-2}"), "decode params: ");
    expect_error_prefix(create(f, "{\"name\":\"x\",\"port\":\"80\"}"), "decode params: ");
    expect_error_prefix(create(f, "{\"name\":\"x\",\"extra\":1}"), "decode params: ");
}

static void test_collisions_and_auto_port(void **state)
{
    fixture *f = *state;
    free(create_ok(f, "{\"name\":\"web\",\"port\":8080,\"dns_name\":\"x\"}"));
    expect_error(create(f, "{\"name\":\"web2\",\"port\":8080}"),
                 "port 8080/tcp already in use by session \"web\"");
    expect_error(create(f, "{\"name\":\"other\",\"dns_name\":\"x\"}"),
                 "dns name \"x\" already in use");
    free(create_ok(f, "{\"name\":\"dns-tcp\",\"port\":53,\"protocol\":\"tcp\"}"));
    free(create_ok(f, "{\"name\":\"dns-udp\",\"port\":53,\"protocol\":\"udp\"}"));
    expect_error(create(f, "{\"name\":\"dns-udp2\",\"port\":53,\"protocol\":\"udp\"}"),
                 "port 53/udp already in use by session \"dns-udp\"");
    json_t *a = ok_result(create(f, "{\"name\":\"auto1\",\"port\":-1}"));
    json_t *b = ok_result(create(f, "{\"name\":\"auto2\",\"port\":-1}"));
    int pa = (int)json_integer_value(json_object_get(a, "port"));
    int pb = (int)json_integer_value(json_object_get(b, "port"));
    assert_true(pa >= 1001 && pb >= 1001 && pa != pb);
    json_decref(a);
    json_decref(b);
}

typedef struct {
    fixture *f;
    int index;
    char uuid[UUID_STR_LEN];
    int port;
} racer;

static void *race_create(void *arg)
{
    racer *r = arg;
    char params[128];
    snprintf(params, sizeof params, "{\"name\":\"r%d\",\"port\":-1,\"protocol\":\"udp\"}",
             r->index);
    json_t *resp = create(r->f, params);
    json_t *res = json_object_get(resp, "result");
    if (json_is_object(res)) {
        snprintf(r->uuid, sizeof r->uuid, "%s", json_string_value(json_object_get(res, "uuid")));
        r->port = (int)json_integer_value(json_object_get(res, "port"));
    }
    json_decref(resp);
    return NULL;
}

static void test_concurrent_creates_never_share_a_port(void **state)
{
    fixture *f = *state;
    enum { N = 16 };
    racer r[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer){.f = f, .index = i};
        assert_int_equal(pthread_create(&t[i], NULL, race_create, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_true(r[i].port >= 1001);
        for (int j = i + 1; j < N; j++)
            assert_int_not_equal(r[i].port, r[j].port);
    }
}

static void test_edit_keeps_unknown_fields_and_checks_claims(void **state)
{
    fixture *f = *state;
    char *web = create_ok(f, "{\"name\":\"web\",\"port\":8080}");
    char *db = create_ok(f, "{\"name\":\"db\",\"port\":5432,\"dns_name\":\"db\"}");
    char path[PATH_BUF * 2];
    meta_path(f, web, path, sizeof path);
    json_t *disk = read_json_file(path);
    json_object_set_new(disk, "owner", json_string("alice"));
    char *text = json_dumps(disk, JSON_COMPACT);
    write_file(path, text);
    free(text);
    json_decref(disk);
    restart_agent(f); /* the hand edit is read at start */

    json_t *r = ok_result(rpcf(f,
                               "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"name\":\"\","
                               "\"protocol\":\"udp\",\"dns_name\":\"web\"}}",
                               web));
    assert_string_equal(json_string_value(json_object_get(r, "name")), "web"); /* "" keeps */
    assert_string_equal(json_string_value(json_object_get(r, "protocol")), "udp");
    assert_string_equal(json_string_value(json_object_get(r, "owner")), "alice");
    json_decref(r);
    disk = read_json_file(path);
    assert_string_equal(json_string_value(json_object_get(disk, "owner")), "alice");
    assert_string_equal(json_string_value(json_object_get(disk, "dns_name")), "web");
    json_decref(disk);
    expect_error(rpcf(f, "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"dns_name\":\"db\"}}", web),
                 "dns name \"db\" already in use");
    expect_error(rpcf(f,
                      "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"port\":5432,"
                      "\"protocol\":\"tcp\"}}",
                      web),
                 "port 5432/tcp already in use by session \"db\"");
    /* Editing db's name leaves its own port alone: no self-collision. */
    json_decref(ok_result(
        rpcf(f, "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"name\":\"database\"}}", db)));
    free(web);
    free(db);
}

static void test_corrupt_session_is_listed_never_overwritten(void **state)
{
    fixture *f = *state;
    char *uuid = create_ok(f, "{\"name\":\"broken\"}");
    char path[PATH_BUF * 2];
    meta_path(f, uuid, path, sizeof path);
    write_file(path, "{\"uuid\": truncated");
    restart_agent(f);
    json_t *list = ok_result(rpc(f, "{\"op\":\"list\",\"params\":null}"));
    assert_int_equal(json_array_size(list), 1);
    json_t *e = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(e, "uuid")), uuid);
    assert_non_null(json_string_value(json_object_get(e, "error")));
    assert_string_equal(json_string_value(json_object_get(e, "state")), "!");
    json_decref(list);
    expect_error_prefix(
        rpcf(f, "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"name\":\"x\"}}", uuid), "session \"");
    char *text;
    assert_int_equal(read_file_bounded(path, 1024, &text, NULL), 0);
    assert_string_equal(text, "{\"uuid\": truncated");
    free(text);
    /* It can still be deleted: the operator's way out. */
    json_decref(ok_result(rpcf(f, "{\"op\":\"delete\",\"params\":{\"id\":\"%s\"}}", uuid)));
    free(uuid);
}

static void test_bad_ids_touch_nothing(void **state)
{
    fixture *f = *state;
    const char *ops[] = {"get", "edit", "delete", "kill", "background", "restart", "override"};
    char big[10 * 1024 + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *ids[] = {"../x", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", big, "",
                         "6BA7B810-9DAD-41D1-80B4-00C04FD430C8"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        for (size_t j = 0; j < sizeof ids / sizeof ids[0]; j++) {
            size_t n = strlen(ids[j]) + 128;
            char *line = malloc(n);
            snprintf(line, n, "{\"op\":\"%s\",\"params\":{\"id\":\"%s\"}}", ops[i], ids[j]);
            expect_error_prefix(rpc(f, line), "invalid id \"");
            free(line);
        }
    }
    expect_error(rpc(f, "{\"op\":\"get\",\"params\":{\"id\":\"../x\"}}"), "invalid id \"../x\"");
    expect_error_prefix(
        rpc(f, "{\"op\":\"clone\",\"params\":{\"source_id\":\"../x\",\"name\":\"c\"}}"),
        "invalid id \"");
    char a_err[256];
    assert_int_equal(agent_attach_prepare(f->a, "../x", a_err, sizeof a_err), -1);
    assert_string_equal(a_err, "invalid id \"../x\"");
    /* Nothing appeared next to the homes. */
    char path[PATH_BUF * 2];
    snprintf(path, sizeof path, "%s/x", f->root);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/home/x", f->root);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_restart_kill_and_run_spec(void **state)
{
    fixture *f = *state;
    char *uuid = create_ok(f, "{\"name\":\"runner\",\"port\":9000,\"protocol\":\"udp\"}");
    char path[PATH_BUF * 2];
    snprintf(path, sizeof path, "%s/usr/local/bin", f->root);
    assert_int_equal(mkdir_p(path, 0755), 0);
    snprintf(path, sizeof path, "%s/usr/local/bin/claude", f->root);
    write_file(path, "#!/bin/sh\n");
    json_decref(ok_result(rpc(f, "{\"op\":\"settings-set\",\"params\":{\"docker_socket\":true,"
                                 "\"session_cpus\":0.5,\"dns_server\":\"10.1.2.3\"}}")));
    json_decref(ok_result(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid)));
    assert_string_equal(fake_last_image, "convocate:v9.9.9");
    assert_string_equal(fake_last_spec.cgroup_parent, "convocate-sessions.slice");
    assert_string_equal(fake_last_spec.agent_id, "test1234");
    assert_int_equal(fake_last_spec.port, 9000);
    assert_string_equal(fake_last_spec.protocol, "udp");
    assert_int_equal(fake_last_spec.claude_uid, CLAUDE_UID_DEFAULT);
    assert_string_equal(fake_last_sock, "/run/fake-docker.sock");
    assert_string_equal(fake_last_claude_bin, path);
    assert_null(fake_last_spec.ssh_dir); /* absent on the host: not mounted */
    assert_null(fake_last_spec.gitconfig);
    json_t *got = ok_result(rpcf(f, "{\"op\":\"get\",\"params\":{\"id\":\"%s\"}}", uuid));
    assert_string_equal(json_string_value(json_object_get(got, "state")), "R");
    json_decref(got);
    agent_attach_enter(f->a, uuid);
    got = ok_result(rpcf(f, "{\"op\":\"get\",\"params\":{\"id\":\"%s\"}}", uuid));
    assert_string_equal(json_string_value(json_object_get(got, "state")), "C");
    assert_int_equal(json_integer_value(json_object_get(got, "attached")), 1);
    json_decref(got);
    agent_attach_leave(f->a, uuid);
    /* The activity spool is made and mounted (SPEC 16). */
    snprintf(path, sizeof path, "%s/var/lib/convocate-agent/activity/%s", f->root, uuid);
    assert_string_equal(fake_last_activity, path);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    /* peek and send: tmux through one exec each, the text one argv element. */
    got = ok_result(rpcf(f, "{\"op\":\"peek\",\"params\":{\"id\":\"%s\",\"lines\":20}}", uuid));
    assert_string_equal(json_string_value(json_object_get(got, "screen")), "\x1b[1mhello\x1b[0m\n");
    assert_int_equal(json_integer_value(json_object_get(got, "cols")), 80);
    assert_int_equal(json_integer_value(json_object_get(got, "rows")), 24);
    json_decref(got);
    assert_string_equal(fake_last_exec[6], ";");
    assert_string_equal(fake_last_exec[7], "capture-pane");
    assert_string_equal(fake_last_exec[13], "-S");
    assert_string_equal(fake_last_exec[14], "-20");
    json_decref(ok_result(rpcf(
        f, "{\"op\":\"send\",\"params\":{\"id\":\"%s\",\"text\":\"-x; $(rm)\",\"enter\":false}}",
        uuid)));
    const char *want[] = {"tmux", "send-keys", "-t", "claude", "-l", "--", "-x; $(rm)", ""};
    for (int i = 0; i < 8; i++)
        assert_string_equal(fake_last_exec[i], want[i]);
    /* A text that ends in ';' goes with "\;" there, which tmux reads back
     * as ';'; the Enter is an exec of its own (the last one). */
    json_decref(
        ok_result(rpcf(f, "{\"op\":\"send\",\"params\":{\"id\":\"%s\",\"text\":\"ls;\"}}", uuid)));
    const char *want_enter[] = {"tmux", "send-keys", "-t", "claude", "Enter", ""};
    for (int i = 0; i < 6; i++)
        assert_string_equal(fake_last_exec[i], want_enter[i]);
    json_decref(ok_result(rpcf(
        f, "{\"op\":\"send\",\"params\":{\"id\":\"%s\",\"text\":\"ls;\",\"enter\":false}}", uuid)));
    assert_string_equal(fake_last_exec[6], "ls\\;");
    assert_string_equal(fake_last_exec[7], "");
    expect_error(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid),
                 "session \"runner\" already running");
    json_decref(ok_result(rpcf(f, "{\"op\":\"background\",\"params\":{\"id\":\"%s\"}}", uuid)));
    json_decref(ok_result(rpcf(f, "{\"op\":\"kill\",\"params\":{\"id\":\"%s\"}}", uuid)));
    assert_int_equal(fake_n, 0);
    expect_error(rpcf(f, "{\"op\":\"background\",\"params\":{\"id\":\"%s\"}}", uuid),
                 "session \"runner\" is not running");
    expect_error(rpcf(f, "{\"op\":\"peek\",\"params\":{\"id\":\"%s\"}}", uuid),
                 "session \"runner\" is not running");
    expect_error(rpcf(f, "{\"op\":\"send\",\"params\":{\"id\":\"%s\",\"text\":\"x\"}}", uuid),
                 "session \"runner\" is not running");
    /* The current image is read at each start. */
    snprintf(path, sizeof path, "%s/etc/convocate-agent/current-image", f->root);
    write_file(path, "convocate:v9.9.10\n");
    char err[256];
    assert_int_equal(agent_attach_prepare(f->a, uuid, err, sizeof err), 0);
    assert_string_equal(fake_last_image, "convocate:v9.9.10");
    free(uuid);
}

/* What tmux_literal_arg gives, and (the comment) what tmux 3.3 reads back:
 * only a last ';' changes, to "\;", which tmux turns back into ';'. */
static void test_tmux_literal_arg(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"", ""},         {"a", "a"},         {"a;b", "a;b"},   {";", "\\;"},
        {"ls;", "ls\\;"}, {"a\\;", "a\\\\;"}, {"; ;", "; \\;"}, {"x\\", "x\\"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = tmux_literal_arg(cases[i][0]);
        assert_non_null(got);
        assert_string_equal(got, cases[i][1]);
        free(got);
    }
}

static void test_locks_and_override(void **state)
{
    fixture *f = *state;
    char *uuid = create_ok(f, "{\"name\":\"held\"}");
    char lock[PATH_BUF * 2], text[32];
    snprintf(lock, sizeof lock, "%s/%s.lock", f->home, uuid);
    snprintf(text, sizeof text, "%d\n", (int)getppid()); /* a live process, not us */
    write_file(lock, text);
    json_t *got = ok_result(rpcf(f, "{\"op\":\"get\",\"params\":{\"id\":\"%s\"}}", uuid));
    assert_string_equal(json_string_value(json_object_get(got, "state")), "L");
    assert_true(json_is_true(json_object_get(got, "locked")));
    json_decref(got);
    expect_error(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid),
                 "session \"held\" is locked");
    expect_error(rpcf(f, "{\"op\":\"delete\",\"params\":{\"id\":\"%s\"}}", uuid),
                 "session \"held\" is locked");
    json_decref(ok_result(rpcf(f, "{\"op\":\"override\",\"params\":{\"id\":\"%s\"}}", uuid)));
    assert_int_equal(access(lock, F_OK), -1);
    /* A lock of a dead PID is stale: ignored and removed. */
    write_file(lock, "999999999\n");
    json_decref(ok_result(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid)));
    assert_int_equal(access(lock, F_OK), -1);
    json_decref(ok_result(rpcf(f, "{\"op\":\"delete\",\"params\":{\"id\":\"%s\"}}", uuid)));
    char home[PATH_BUF * 2];
    snprintf(home, sizeof home, "%s/%s", f->home, uuid);
    assert_int_equal(access(home, F_OK), -1);
    expect_error_prefix(rpcf(f, "{\"op\":\"override\",\"params\":{\"id\":\"%s\"}}", uuid),
                        "session \"");
    free(uuid);
}

typedef struct {
    fixture *f;
    const char *uuid;
    json_t *resp;
} slow_kill;

static void *kill_thread(void *arg)
{
    slow_kill *k = arg;
    k->resp = rpcf(k->f, "{\"op\":\"kill\",\"params\":{\"id\":\"%s\"}}", k->uuid);
    return NULL;
}

static void test_slow_kill_blocks_no_other_session(void **state)
{
    fixture *f = *state;
    char *slow = create_ok(f, "{\"name\":\"slow\"}");
    char *other = create_ok(f, "{\"name\":\"other\"}");
    json_decref(ok_result(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", slow)));
    fake_stop_ms = 1500;
    slow_kill k = {.f = f, .uuid = slow};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, kill_thread, &k), 0);
    usleep(200 * 1000);
    int64_t t0 = monotonic_ms();
    json_decref(ok_result(rpc(f, "{\"op\":\"ping\",\"params\":null}")));
    json_decref(
        ok_result(rpcf(f, "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"name\":\"o2\"}}", other)));
    json_t *list = ok_result(rpc(f, "{\"op\":\"list\",\"params\":null}"));
    int64_t elapsed = monotonic_ms() - t0;
    /* The slow one shows locked while its kill runs. */
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *e = json_array_get(list, i);
        if (strcmp(json_string_value(json_object_get(e, "uuid")), slow) == 0)
            assert_true(json_is_true(json_object_get(e, "locked")));
    }
    json_decref(list);
    expect_error(rpcf(f, "{\"op\":\"kill\",\"params\":{\"id\":\"%s\"}}", slow),
                 "session \"slow\" is locked");
    pthread_join(t, NULL);
    json_decref(ok_result(k.resp));
    assert_true(elapsed < 1000);
    fake_stop_ms = 0;
    free(slow);
    free(other);
}

static void test_clone_and_delete(void **state)
{
    fixture *f = *state;
    char *src = create_ok(f, "{\"name\":\"src\",\"port\":7000,\"dns_name\":\"src\"}");
    char path[PATH_BUF * 2];
    snprintf(path, sizeof path, "%s/%s/work.txt", f->home, src);
    write_file(path, "data\n");
    snprintf(path, sizeof path, "%s/%s/escape", f->home, src);
    assert_int_equal(symlink("/etc", path), 0);
    json_t *c = ok_result(rpcf(f,
                               "{\"op\":\"clone\",\"params\":{\"source_id\":\"%s\","
                               "\"name\":\"copy\"}}",
                               src));
    const char *cu = json_string_value(json_object_get(c, "uuid"));
    assert_string_not_equal(cu, src);
    assert_int_equal(json_integer_value(json_object_get(c, "port")), 0);
    assert_string_equal(json_string_value(json_object_get(c, "dns_name")), "");
    assert_string_equal(json_string_value(json_object_get(c, "name")), "copy");
    snprintf(path, sizeof path, "%s/%s/work.txt", f->home, cu);
    assert_int_equal(access(path, F_OK), 0);
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/escape", f->home, cu);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    expect_error_prefix(rpcf(f, "{\"op\":\"clone\",\"params\":{\"source_id\":\"%s\"}}", src),
                        "decode params: ");
    json_decref(ok_result(rpcf(f, "{\"op\":\"delete\",\"params\":{\"id\":\"%s\"}}", cu)));
    snprintf(path, sizeof path, "%s/%s", f->home, cu);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access("/etc/passwd", F_OK), 0);
    json_decref(c);
    free(src);
}

/* The engine watch's table holds what runs and what an op is busy with:
 * sessions started, killed and deleted leave nothing behind (it used to keep
 * an entry for every session ever stopped or deleted, for the agent's life). */
static void test_engine_watch_table_forgets_deleted_sessions(void **state)
{
    fixture *f = *state;
    enum { SESSIONS = 12, STARTED = 6 };
    char *uuids[SESSIONS];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < SESSIONS; i++) {
            char params[64];
            snprintf(params, sizeof params, "{\"name\":\"w%d-%d\"}", round, i);
            uuids[i] = create_ok(f, params);
        }
        for (int i = 0; i < STARTED; i++) {
            json_decref(
                ok_result(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuids[i])));
        }
        assert_int_equal(engine_watch_table_size(f->a->watch), STARTED);
        json_decref(ok_result(rpcf(f, "{\"op\":\"kill\",\"params\":{\"id\":\"%s\"}}", uuids[0])));
        assert_int_equal(engine_watch_table_size(f->a->watch), STARTED - 1);
        for (int i = 0; i < SESSIONS; i++) {
            json_decref(
                ok_result(rpcf(f, "{\"op\":\"delete\",\"params\":{\"id\":\"%s\"}}", uuids[i])));
            free(uuids[i]);
        }
        assert_int_equal(engine_watch_table_size(f->a->watch), 0);
    }
}

static void test_settings_ops(void **state)
{
    fixture *f = *state;
    json_t *s = ok_result(rpc(f, "{\"op\":\"settings-get\",\"params\":null}"));
    assert_int_equal(json_integer_value(json_object_get(s, "admission_threshold_pct")), 95);
    assert_int_equal(json_integer_value(json_object_get(s, "heartbeat_s")), 30);
    assert_false(json_is_true(json_object_get(s, "docker_socket")));
    json_decref(s);
    s = ok_result(rpc(f, "{\"op\":\"settings-set\",\"params\":{\"heartbeat_s\":5}}"));
    assert_int_equal(json_integer_value(json_object_get(s, "heartbeat_s")), 5);
    json_decref(s);
    expect_error_prefix(rpc(f, "{\"op\":\"settings-set\",\"params\":{\"heartbeat_s\":4}}"),
                        "settings: ");
    expect_error_prefix(rpc(f, "{\"op\":\"settings-set\",\"params\":{\"nope\":1}}"),
                        "settings: unknown key");
    expect_error_prefix(rpc(f, "{\"op\":\"settings-set\",\"params\":null}"), "decode params: ");
    char path[PATH_BUF * 2];
    snprintf(path, sizeof path, "%s/etc/convocate-agent/settings.json", f->root);
    json_t *disk = read_json_file(path);
    assert_int_equal(json_integer_value(json_object_get(disk, "heartbeat_s")), 5);
    json_decref(disk);
    /* Persisted across a restart of the agent. */
    agent_free(f->a);
    start(f);
    s = ok_result(rpc(f, "{\"op\":\"settings-get\",\"params\":null}"));
    assert_int_equal(json_integer_value(json_object_get(s, "heartbeat_s")), 5);
    json_decref(s);
}

static void test_admission_refuses_create_and_start(void **state)
{
    fixture *f = *state;
    char *uuid = create_ok(f, "{\"name\":\"before\"}");
    /* 64 TiB per session: the sum of limits passes any cap, deterministically. */
    json_decref(ok_result(rpc(f, "{\"op\":\"settings-set\",\"params\":{"
                                 "\"admission_threshold_pct\":50,"
                                 "\"session_memory_mb\":67108864}}")));
    expect_error_prefix(create(f, "{\"name\":\"after\"}"), "admission denied: ");
    expect_error_prefix(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid),
                        "admission denied: ");
    char err[256];
    assert_int_equal(agent_attach_prepare(f->a, uuid, err, sizeof err), -1);
    assert_non_null(strstr(err, "% of host (cap 50%); "));
    free(uuid);
}

static void test_events_in_order(void **state)
{
    fixture *f = *state;
    agent_announce_start(f->a);
    char *uuid = create_ok(f, "{\"name\":\"ev\"}");
    json_decref(
        ok_result(rpcf(f, "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"name\":\"ev2\"}}", uuid)));
    json_decref(ok_result(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid)));
    json_decref(ok_result(rpcf(f, "{\"op\":\"kill\",\"params\":{\"id\":\"%s\"}}", uuid)));
    json_decref(ok_result(rpcf(f, "{\"op\":\"delete\",\"params\":{\"id\":\"%s\"}}", uuid)));
    agent_announce_shutdown(f->a, "SIGTERM");
    agent_free(f->a); /* drains the events log */
    f->a = NULL;
    const char *want[] = {"agent.started",     "container.created", "container.edited",
                          "container.started", "container.stopped", "container.deleted",
                          "agent.shutdown"};
    char *text;
    assert_int_equal(read_file_bounded(f->events, 1 << 20, &text, NULL), 0);
    size_t k = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *ev = json_loads(line, 0, NULL);
        assert_non_null(ev);
        const char *type = json_string_value(json_object_get(ev, "type"));
        assert_string_equal(json_string_value(json_object_get(ev, "agent_id")), "test1234");
        if (strncmp(type, "container.", 10) == 0)
            assert_string_equal(json_string_value(json_object_get(ev, "session_id")), uuid);
        else
            assert_null(json_object_get(ev, "session_id"));
        assert_true(k < sizeof want / sizeof want[0]);
        assert_string_equal(type, want[k++]);
        json_decref(ev);
    }
    assert_int_equal(k, sizeof want / sizeof want[0]);
    free(text);
    free(uuid);
    start(f);
}

static void test_recovery_and_one_engine_call_per_list(void **state)
{
    fixture *f = *state;
    char *uuid = create_ok(f, "{\"name\":\"kept\"}");
    free(create_ok(f, "{\"name\":\"kept2\"}"));
    agent_free(f->a);
    /* What a kill -9 mid-create or mid-delete leaves behind. */
    char path[PATH_BUF * 2];
    snprintf(path, sizeof path, "%s/.new-0f8fad5b-d9cb-469f-a165-70867728950e", f->home);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s.lock", f->home, uuid);
    write_file(path, "999999999\n");
    snprintf(path, sizeof path, "%s/0f8fad5b-d9cb-469f-a165-70867728950e.lock", f->home);
    write_file(path, "999999999\n");
    start(f);
    assert_int_equal(access(path, F_OK), -1); /* the lock of a create cut short */
    snprintf(path, sizeof path, "%s/.new-0f8fad5b-d9cb-469f-a165-70867728950e", f->home);
    assert_int_equal(access(path, F_OK), -1);
    fake_list_calls = 0;
    fake_counting_thread = pthread_self();
    json_t *list = ok_result(rpc(f, "{\"op\":\"list\",\"params\":null}"));
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(fake_list_calls, 1);
    assert_false(json_is_true(json_object_get(json_array_get(list, 0), "locked")));
    json_decref(list);
    free(uuid);
}

/* ---- Claude credentials and per-session settings (SPEC 15) ---- */

#define SECRET "sk-ant-api03-UNITSECRET-abcd"

static void claude_env_path(fixture *f, char *out, size_t size)
{
    snprintf(out, size, "%s/etc/convocate-agent/claude.env", f->root);
}

static void expect_no_secret(json_t *resp)
{
    char *text = json_dumps(resp, JSON_COMPACT);
    assert_null(strstr(text, "UNITSECRET"));
    free(text);
}

static void test_auth_set_get_clear(void **state)
{
    fixture *f = *state;
    char path[PATH_BUF * 2], *text;
    claude_env_path(f, path, sizeof path);
    json_t *r = ok_result(rpc(f, "{\"op\":\"auth-get\",\"params\":null}"));
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "none");
    assert_string_equal(json_string_value(json_object_get(r, "hint")), "");
    json_decref(r);
    json_t *resp = rpc(f, "{\"op\":\"auth-set\",\"params\":{\"api_key\":\"" SECRET "\","
                          "\"base_url\":\"http://127.0.0.1:9/\",\"model\":\"m-1\"}}");
    expect_no_secret(resp);
    r = ok_result(resp);
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "api-key");
    assert_string_equal(json_string_value(json_object_get(r, "hint")), "\xe2\x80\xa6"
                                                                       "abcd");
    assert_string_equal(json_string_value(json_object_get(r, "base_url")), "http://127.0.0.1:9/");
    assert_string_equal(json_string_value(json_object_get(r, "model")), "m-1");
    json_decref(r);
    assert_int_equal(read_file_bounded(path, 4096, &text, NULL), 0);
    assert_string_equal(text, "ANTHROPIC_API_KEY=" SECRET "\nANTHROPIC_BASE_URL=http://127.0.0.1:9/"
                              "\nANTHROPIC_MODEL=m-1\n");
    free(text);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    r = ok_result(rpc(f, "{\"op\":\"auth-set\",\"params\":{\"oauth_token\":\"tok\"}}"));
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "oauth-token");
    assert_string_equal(json_string_value(json_object_get(r, "base_url")), ""); /* replaced */
    json_decref(r);
    r = ok_result(rpc(f, "{\"op\":\"auth-set\",\"params\":{\"clear\":true}}"));
    assert_string_equal(json_string_value(json_object_get(r, "kind")), "none");
    json_decref(r);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_auth_set_refusals_never_echo(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {
        "{\"api_key\":\"" SECRET "\",\"oauth_token\":\"" SECRET "\"}",
        "{\"base_url\":\"http://h\"}",
        "{\"api_key\":\"" SECRET "\",\"colour\":\"red\"}",
        "{\"api_key\":\"" SECRET " x\"}",
        "{\"api_key\":\"\"}",
        "{\"api_key\":5}",
        "{\"api_key\":\"" SECRET "\",\"model\":\"bad model\"}",
        "{\"api_key\":\"" SECRET "\",\"base_url\":\"ftp://h\"}",
        "{\"api_key\":\"" SECRET "\",\"base_url\":\"http://UNITSECRET x\"}",
        "{\"clear\":true,\"api_key\":\"" SECRET "\"}",
        "{\"clear\":false}",
        "null",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *resp = rpcf(f, "{\"op\":\"auth-set\",\"params\":%s}", bad[i]);
        expect_no_secret(resp);
        assert_false(json_is_true(json_object_get(resp, "ok")));
        json_decref(resp);
    }
    /* A request that is not JSON does not hand back what follows either. */
    json_t *resp = rpc(f, "{\"op\":\"auth-set\",\"params\":{\"api_key\":\"UNITSECRET\x01\"}}");
    expect_no_secret(resp);
    expect_error_prefix(resp, "decode request: ");
    char path[PATH_BUF * 2];
    claude_env_path(f, path, sizeof path);
    assert_int_equal(access(path, F_OK), -1); /* nothing written */
}

static void test_start_mounts_claude_env_or_refuses_it(void **state)
{
    fixture *f = *state;
    char path[PATH_BUF * 2];
    claude_env_path(f, path, sizeof path);
    char *uuid = create_ok(f, "{\"name\":\"cl\",\"model\":\"opus\",\"autonomous\":true}");
    json_decref(ok_result(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid)));
    assert_string_equal(fake_last_claude_env, ""); /* no claude.env: no mount */
    assert_string_equal(fake_last_model, "opus");
    assert_true(fake_last_spec.autonomous);
    json_decref(ok_result(rpcf(f, "{\"op\":\"kill\",\"params\":{\"id\":\"%s\"}}", uuid)));
    write_file(path, "# hand-written\nANTHROPIC_MODEL=m\nFOO=" SECRET "\n");
    int starts = fake_starts;
    json_t *resp = rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid);
    expect_no_secret(resp);
    const char *e = json_string_value(json_object_get(resp, "error"));
    assert_non_null(e);
    assert_non_null(strstr(e, "start session \"cl\": claude.env line 3: unknown key \"FOO\""));
    assert_non_null(strstr(e, "convocate auth set"));
    json_decref(resp);
    char err[600];
    assert_int_equal(agent_attach_prepare(f->a, uuid, err, sizeof err), -1);
    assert_non_null(strstr(err, "claude.env line 3"));
    assert_int_equal(fake_starts, starts); /* refused before the engine */
    write_file(path, "ANTHROPIC_API_KEY=" SECRET "\n");
    json_decref(ok_result(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", uuid)));
    assert_string_equal(fake_last_claude_env, path);
    free(uuid);
}

static void test_model_and_autonomous_on_sessions(void **state)
{
    fixture *f = *state;
    json_t *r = ok_result(create(f, "{\"name\":\"plain\"}"));
    assert_string_equal(json_string_value(json_object_get(r, "model")), "");
    assert_true(json_is_false(json_object_get(r, "autonomous")));
    char *uuid = strdup(json_string_value(json_object_get(r, "uuid")));
    json_decref(r);
    /* The default applies to sessions that set nothing, at once. */
    json_decref(
        ok_result(rpc(f, "{\"op\":\"settings-set\",\"params\":{\"default_autonomous\":true}}")));
    r = ok_result(rpcf(f, "{\"op\":\"get\",\"params\":{\"id\":\"%s\"}}", uuid));
    assert_true(json_is_true(json_object_get(r, "autonomous")));
    json_decref(r);
    r = ok_result(rpcf(f,
                       "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"model\":\"m.2\","
                       "\"autonomous\":false}}",
                       uuid));
    assert_string_equal(json_string_value(json_object_get(r, "model")), "m.2");
    assert_true(json_is_false(json_object_get(r, "autonomous")));
    json_decref(r);
    char path[PATH_BUF * 2];
    meta_path(f, uuid, path, sizeof path);
    json_t *disk = read_json_file(path);
    assert_true(json_is_false(json_object_get(disk, "autonomous")));
    json_decref(disk);
    /* The clone keeps both; null returns to the default; "" clears the model. */
    r = ok_result(
        rpcf(f, "{\"op\":\"clone\",\"params\":{\"source_id\":\"%s\",\"name\":\"c\"}}", uuid));
    assert_string_equal(json_string_value(json_object_get(r, "model")), "m.2");
    assert_true(json_is_false(json_object_get(r, "autonomous")));
    json_decref(r);
    r = ok_result(rpcf(f,
                       "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"model\":\"\","
                       "\"autonomous\":null}}",
                       uuid));
    assert_string_equal(json_string_value(json_object_get(r, "model")), "");
    assert_true(json_is_true(json_object_get(r, "autonomous")));
    json_decref(r);
    disk = read_json_file(path);
    assert_null(json_object_get(disk, "autonomous"));
    json_decref(disk);
    expect_error(create(f, "{\"name\":\"x\",\"model\":\"a b\"}"),
                 "invalid model \"a b\": use 1 to 64 of A-Z a-z 0-9 . _ - (\"\" for none)");
    expect_error(create(f, "{\"name\":\"x\",\"autonomous\":\"yes\"}"),
                 "decode params: \"autonomous\" must be true, false or null");
    free(uuid);
}

/* Writes <home>/<uuid>/session.json (an old-style home) with this name. */
static void plant_old_home(fixture *f, const char *uuid, const char *name, int port)
{
    char path[PATH_BUF * 2], text[512];
    snprintf(path, sizeof path, "%s/%s", f->home, uuid);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/session.json", f->home, uuid);
    snprintf(text, sizeof text,
             "{\"uuid\":\"%s\",\"name\":\"%s\",\"port\":%d,\"protocol\":\"tcp\","
             "\"dns_name\":\"\",\"created_at\":\"2026-11-24T10:00:00Z\"}",
             uuid, name, port);
    write_file(path, text);
}

static json_t *get_session(fixture *f, const char *uuid)
{
    return ok_result(rpcf(f, "{\"op\":\"get\",\"params\":{\"id\":\"%s\"}}", uuid));
}

/* Old-style homes move over at start; a second claim on a port stays in
 * its home and breaks only its session; a FIFO breaks only its own; once a
 * session has metadata, a session.json in its home is dropped unread and
 * adopt refuses it. */
static void test_old_homes_move_once_and_forgeries_are_ignored(void **state)
{
    fixture *f = *state;
    const char *a = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const char *b = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    const char *c = "16fd2706-8baf-433b-82eb-8c7fada847da";
    char path[PATH_BUF * 2];
    plant_old_home(f, a, "alpha", 7001);
    plant_old_home(f, b, "beta", 7001); /* b sorts after a: a wins the port */
    snprintf(path, sizeof path, "%s/%s", f->home, c);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/session.json", f->home, c);
    assert_int_equal(mkfifo(path, 0600), 0);
    restart_agent(f);

    json_t *r = get_session(f, a);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "alpha");
    json_decref(r);
    meta_path(f, a, path, sizeof path);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/%s/session.json", f->home, a);
    assert_int_equal(access(path, F_OK), -1);
    r = get_session(f, b);
    assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "already in use"));
    json_decref(r);
    r = get_session(f, c);
    assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "not a regular file"));
    assert_string_equal(json_string_value(json_object_get(r, "state")), "!");
    json_decref(r);

    /* a forges a session.json claiming to be beta on port 9: ignored. */
    snprintf(path, sizeof path, "%s/%s/session.json", f->home, a);
    write_file(path, "{\"uuid\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"name\":\"beta\","
                     "\"port\":9,\"created_at\":\"2026-11-24T10:00:00Z\"}");
    expect_error_prefix(rpcf(f, "{\"op\":\"adopt\",\"params\":{\"id\":\"%s\"}}", a),
                        "session \"0f8fad5b-d9cb-469f-a165-70867728950e\" already has metadata");
    restart_agent(f);
    r = get_session(f, a);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "alpha");
    assert_int_equal(json_integer_value(json_object_get(r, "port")), 7001);
    json_decref(r);
    assert_int_equal(access(path, F_OK), -1); /* dropped unread */
}

/* What a crash leaves at each step of create and delete is finished or
 * swept at the next start: a staged home (.new-) and a half-deleted one
 * (.del-) take their metadata with them, a metadata temporary goes, and a
 * whole session stays. */
static void test_crash_leftovers_are_swept_with_their_metadata(void **state)
{
    fixture *f = *state;
    const char *staged = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const char *doomed = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    const char *whole = "16fd2706-8baf-433b-82eb-8c7fada847da";
    char path[PATH_BUF * 2], tmp[PATH_BUF * 2 + 16];
    plant_old_home(f, whole, "whole", 0);
    restart_agent(f); /* whole now has metadata */
    snprintf(path, sizeof path, "%s/.new-%s", f->home, staged);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/.del-%s", f->home, doomed);
    assert_int_equal(mkdir(path, 0700), 0);
    const char *cut_short[] = {staged, doomed};
    for (size_t i = 0; i < 2; i++) {
        meta_path(f, cut_short[i], path, sizeof path);
        write_file(path, "{}");
    }
    meta_path(f, whole, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp-abcdefgh", path);
    write_file(tmp, "{\"torn");
    restart_agent(f);

    for (size_t i = 0; i < 2; i++) {
        meta_path(f, cut_short[i], path, sizeof path);
        assert_int_equal(access(path, F_OK), -1);
        expect_error(rpcf(f, "{\"op\":\"get\",\"params\":{\"id\":\"%s\"}}", cut_short[i]),
                     cut_short[i] == staged
                         ? "session \"0f8fad5b-d9cb-469f-a165-70867728950e\" not found"
                         : "session \"7c9e6679-7425-40de-944b-e07fc1f90ae7\" not found");
    }
    snprintf(path, sizeof path, "%s/.new-%s", f->home, staged);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/.del-%s", f->home, doomed);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(tmp, F_OK), -1);
    json_t *r = get_session(f, whole);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "whole");
    json_decref(r);
}

/* ---- list from cached texts (issue 13) ---- */

static char *raw_rpc(fixture *f, const char *line)
{
    char *resp = agent_rpc_handle(f->a, line, strlen(line));
    assert_non_null(resp);
    return resp;
}

/* get's result text for uuid: its response line without the envelope. */
static char *get_result_text(fixture *f, const char *uuid)
{
    static const char open[] = "{\"ok\":true,\"result\":";
    char line[256];
    snprintf(line, sizeof line, "{\"op\":\"get\",\"params\":{\"id\":\"%s\"}}", uuid);
    char *resp = raw_rpc(f, line);
    size_t n = strlen(resp);
    if (strncmp(resp, open, strlen(open)) != 0 || n < strlen(open) + 2)
        fail_msg("get %s: %s", uuid, resp);
    resp[n - 2] = '\0'; /* the envelope's closing "}\n" */
    memmove(resp, resp + strlen(open), n - strlen(open));
    return resp;
}

/* list's answer must be, byte for byte, the envelope around the objects
 * get makes, in uuid order: the cached heads cannot drift from the
 * metadata nor the tails from the session's state now. Returns the list. */
static json_t *list_matching_get(fixture *f)
{
    char *resp = raw_rpc(f, "{\"op\":\"list\",\"params\":null}");
    json_t *list = ok_result(json_loads(resp, 0, NULL));
    char *want = strdup("{\"ok\":true,\"result\":[");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        char *obj = get_result_text(f, json_string_value(json_object_get(e, "uuid")));
        char *next;
        assert_true(asprintf(&next, "%s%s%s", want, i ? "," : "", obj) > 0);
        free(want);
        free(obj);
        want = next;
    }
    char *whole;
    assert_true(asprintf(&whole, "%s]}\n", want) > 0);
    assert_string_equal(resp, whole);
    free(whole);
    free(want);
    free(resp);
    return list;
}

static json_t *listed(fixture *f, const char *uuid)
{
    json_t *list = list_matching_get(f), *found = NULL, *e;
    size_t i;
    json_array_foreach(list, i, e) if (strcmp(json_string_value(json_object_get(e, "uuid")),
                                              uuid) == 0) found = json_incref(e);
    json_decref(list);
    return found;
}

static void expect_listed(fixture *f, const char *uuid, const char *key, json_t *want)
{
    json_t *e = listed(f, uuid);
    assert_non_null(e);
    if (!json_equal(json_object_get(e, key), want)) {
        char *got = json_dumps(e, 0);
        fail_msg("%s: expected \"%s\" changed, got %s", uuid, key, got);
    }
    json_decref(e);
    json_decref(want);
}

/* A session laid down on disk as the agent keeps it (home and metadata),
 * seen at the agent's next start: no create, so no CPU admission. */
static void plant_session(fixture *f, const char *uuid, const char *meta_text)
{
    char path[PATH_BUF * 2];
    snprintf(path, sizeof path, "%s/%s", f->home, uuid);
    assert_int_equal(mkdir(path, 0700), 0);
    meta_path(f, uuid, path, sizeof path);
    write_file(path, meta_text);
}

/* One with unknown fields, some named like the fields list adds per call,
 * and text jansson must escape. */
static void plant_odd_session(fixture *f, const char *uuid)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"note\":\"caf\\u00e9 \\\"q\\\" \\u2603 a/b\",\"running\":\"forged\","
             "\"state\":\"x\",\"nested\":{\"a\":[1,2.5,null,true]},\"uuid\":\"%s\","
             "\"name\":\"odd\",\"created_at\":\"2026-11-24T10:00:00Z\",\"autonomous\":true}",
             uuid);
    plant_session(f, uuid, text);
}

static void test_list_follows_every_change(void **state)
{
    fixture *f = *state;
    const char *alpha = "0b5c1f5e-6a43-4d8e-9a51-3f1b2c7d8e90";
    const char *beta = "1c6d2a6f-7b54-4e9f-8b62-4a2c3d8e9fa1";
    const char *gamma = "2d7e3b7a-8c65-4fa0-9c73-5b3d4e9fa0b2";
    const char *odd = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    const char *broken = "16fd2706-8baf-433b-82eb-8c7fada847da";
    char path[PATH_BUF * 2], text[512];
    snprintf(text, sizeof text,
             "{\"uuid\":\"%s\",\"name\":\"alpha\",\"port\":8080,\"dns_name\":\"alpha\","
             "\"created_at\":\"2026-11-24T10:00:00Z\"}",
             alpha);
    plant_session(f, alpha, text);
    snprintf(text, sizeof text,
             "{\"uuid\":\"%s\",\"name\":\"beta\",\"model\":\"m.1\",\"autonomous\":false,"
             "\"created_at\":\"2026-11-24T10:00:00Z\"}",
             beta);
    plant_session(f, beta, text);
    snprintf(text, sizeof text,
             "{\"uuid\":\"%s\",\"name\":\"gamma\",\"created_at\":\"2026-11-24T10:00:00Z\"}", gamma);
    plant_session(f, gamma, text);
    plant_odd_session(f, odd);
    meta_path(f, broken, path, sizeof path);
    write_file(path, "{\"uuid\": cut short");
    restart_agent(f); /* loads them all: every head encoded at start */
    json_decref(list_matching_get(f));
    json_t *e = listed(f, odd);
    assert_string_equal(json_string_value(json_object_get(e, "state")), "-");
    assert_true(json_is_false(json_object_get(e, "running"))); /* not the forged field */
    json_decref(e);
    expect_listed(f, broken, "state", json_string("!"));

    json_decref(ok_result(
        rpcf(f, "{\"op\":\"edit\",\"params\":{\"id\":\"%s\",\"name\":\"alpha2\"}}", alpha)));
    expect_listed(f, alpha, "name", json_string("alpha2"));
    /* A lock another process holds, then gives up. */
    snprintf(path, sizeof path, "%s/%s.lock", f->home, gamma);
    snprintf(text, sizeof text, "%d\n", (int)getppid());
    write_file(path, text);
    expect_listed(f, gamma, "state", json_string("L"));
    assert_int_equal(unlink(path), 0);
    expect_listed(f, gamma, "locked", json_false());
    json_decref(ok_result(rpcf(f, "{\"op\":\"restart\",\"params\":{\"id\":\"%s\"}}", beta)));
    expect_listed(f, beta, "state", json_string("R"));
    json_decref(ok_result(rpcf(f, "{\"op\":\"kill\",\"params\":{\"id\":\"%s\"}}", beta)));
    expect_listed(f, beta, "running", json_false());
    /* The agent's default reaches sessions that set nothing, at once. */
    json_decref(
        ok_result(rpc(f, "{\"op\":\"settings-set\",\"params\":{\"default_autonomous\":true}}")));
    expect_listed(f, gamma, "autonomous", json_true());
    expect_listed(f, beta, "autonomous", json_false());
    json_decref(ok_result(
        rpcf(f, "{\"op\":\"clone\",\"params\":{\"source_id\":\"%s\",\"name\":\"c\"}}", beta)));
    json_decref(ok_result(rpcf(f, "{\"op\":\"delete\",\"params\":{\"id\":\"%s\"}}", gamma)));
    assert_null(listed(f, gamma));
    json_t *list = list_matching_get(f);
    assert_int_equal(json_array_size(list), 5); /* alpha2, beta, c, odd, broken */
    json_decref(list);
}

/* A lock taken or given up right after a list, within the same tick of
 * the clock that stamps the home root's change time, must show in the
 * next list: a read of the directory made so soon after a change is never
 * trusted for the calls after it. */
static void test_list_sees_locks_that_come_and_go_at_once(void **state)
{
    fixture *f = *state;
    const char *uuid = "3b241101-e2bb-4255-8caf-4136c566a962";
    plant_session(f, uuid,
                  "{\"uuid\":\"3b241101-e2bb-4255-8caf-4136c566a962\",\"name\":\"busy\","
                  "\"created_at\":\"2026-11-24T10:00:00Z\"}");
    restart_agent(f);
    char path[PATH_BUF * 2], text[32];
    snprintf(path, sizeof path, "%s/%s.lock", f->home, uuid);
    snprintf(text, sizeof text, "%d\n", (int)getppid());
    for (int i = 0; i < 200; i++) {
        write_file(path, text);
        expect_listed(f, uuid, "state", json_string("L"));
        assert_int_equal(unlink(path), 0);
        expect_listed(f, uuid, "state", json_string("-"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ping_and_unknown_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_list_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_homes_move_once_and_forgeries_are_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crash_leftovers_are_swept_with_their_metadata, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_collisions_and_auto_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creates_never_share_a_port, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_edit_keeps_unknown_fields_and_checks_claims, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_session_is_listed_never_overwritten, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_ids_touch_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_kill_and_run_spec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locks_and_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_kill_blocks_no_other_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_watch_table_forgets_deleted_sessions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_settings_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admission_refuses_create_and_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_and_one_engine_call_per_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auth_set_get_clear, setup, teardown),
        cmocka_unit_test(test_tmux_literal_arg),
        cmocka_unit_test_setup_teardown(test_auth_set_refusals_never_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_mounts_claude_env_or_refuses_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_model_and_autonomous_on_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_follows_every_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_sees_locks_that_come_and_go_at_once, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
