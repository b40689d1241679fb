/* Unit tests for what status-serve trusts an agent with (SPEC 8.4, 14): the
 * event line decoder, the public key file parser, the log rate limit, and
 * the DNS table (own sessions only, no take-over, a cap per agent, records
 * gone with their sessions). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/ids.h"
#include "common/paths.h"
#include "common/ratelimit.h"
#include "proto/status_event.h"
#include "provision/dnsmasq_hosts.h"
#include "ssh/pubkey.h"

#define S1 "0b5a0a3e-4b5c-4d6e-8f70-8192a3b4c5d6"
#define S2 "1c6b1b4f-5c6d-4e7f-9a81-92a3b4c5d6e7"
#define EV(fields)                                                                                 \
    "{\"type\":\"container.created\",\"timestamp\":\"2026-11-25T06:00:00Z\"," fields "}"

static int parse(const char *line, status_event *ev)
{
    char err[256];
    return status_event_parse(line, strlen(line), ev, err, sizeof err);
}

static void test_status_event_parse(void **state)
{
    status_event ev;
    assert_int_equal(parse(EV("\"agent_id\":\"abc12345\",\"session_id\":\"" S1 "\","
                              "\"data\":{\"dns_name\":\"web\"}"),
                           &ev),
                     0);
    assert_string_equal(ev.agent_id, "abc12345");
    assert_string_equal(ev.session_id, S1);
    assert_string_equal(status_event_dns_name(&ev), "web");
    assert_true(status_event_is(&ev, "container.created"));
    status_event_clear(&ev);

    static const char *const bad[] = {
        "",
        "[1]",
        "{\"type\":\"x\"}",
        EV("\"agent_id\":\"ABC12345\""), /* not [a-z0-9] */
        EV("\"agent_id\":\"abc1234\""),  /* 7 characters */
        EV("\"agent_id\":\"abc12345\",\"session_id\":\"nope\""),
        EV("\"agent_id\":\"abc12345\",\"session_id\":5"),
        EV("\"agent_id\":\"abc12345\",\"agent_id\":\"zzz12345\""), /* duplicate key */
        "{\"type\":\"Container\",\"agent_id\":\"abc12345\",\"timestamp\":\"2026-11-25T06:00:00Z\"}",
        "{\"type\":\"a.b\",\"agent_id\":\"abc12345\",\"timestamp\":\"yesterday\"}",
        "{\"type\":\"a.b\",\"agent_id\":\"abc12345\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(bad[i], &ev), -1);
        assert_null(ev.root);
    }
    /* heartbeat_s only from the two events that carry it, and in range */
    assert_int_equal(parse("{\"type\":\"agent.settings\",\"agent_id\":\"abc12345\","
                           "\"timestamp\":\"2026-11-25T06:00:00Z\",\"data\":{\"heartbeat_s\":7}}",
                           &ev),
                     0);
    assert_int_equal(status_event_heartbeat(&ev), 7);
    status_event_clear(&ev);
    assert_int_equal(parse("{\"type\":\"agent.settings\",\"agent_id\":\"abc12345\","
                           "\"timestamp\":\"2026-11-25T06:00:00Z\",\"data\":{\"heartbeat_s\":1}}",
                           &ev),
                     0);
    assert_int_equal(status_event_heartbeat(&ev), 0);
    status_event_clear(&ev);
}

/* A real ed25519 public key (its private half was thrown away). */
#define PUB "AAAAC3NzaC1lZDI1NTE5AAAAIKexZxZze1wQ3L+kwInEefx263EhFDBwhbjzMlEhscUh"

#define RSA                                                                                        \
    "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC1NBF7E//"                                                      \
    "oiJxzkNAVRoP4cT6Xlk5owFuy7jiXFyy3TiAGtxZJc4Xt6lcHCH2g1VHvTqQDTnaWbAg2rdyqvh65uslxb0pu0D2WYef" \
    "aAzvheFY6TaU4FtLpBZiEQe8aPh52yhKQE2WcD5r/+8Vz4hGFfW7se/5ZBktomPZYUftOqw=="

static void test_pubkey_parse(void **state)
{
    static const char *const good[] = {
        "ssh-ed25519 " PUB,
        "ssh-ed25519 " PUB " agent abc12345\n",
        "  ssh-ed25519\t" PUB " c\r\n\n",
    };
    static const char *const bad[] = {
        "",
        "ssh-rsa " PUB,
        "ssh-ed25519",
        "ssh-ed25519 ",
        "ssh-ed25519 !!!!",
        "ssh-ed25519 " PUB "\nssh-ed25519 " PUB "\n", /* two keys */
        "ssh-ed25519 " RSA,                           /* an RSA key under the ed25519 name */
        "ssh-ed25519x " PUB,
    };
    char err[128];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ssh_key key = NULL;
        assert_int_equal(pubkey_parse(good[i], strlen(good[i]), &key, err, sizeof err), 0);
        ssh_key_free(key);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ssh_key key = NULL;
        assert_int_equal(pubkey_parse(bad[i], strlen(bad[i]), &key, err, sizeof err), -1);
        assert_null(key);
    }
    /* A NUL byte inside is refused, not cut at. */
    char nul[] = "ssh-ed25519 " PUB "\0 tail";
    ssh_key key = NULL;
    assert_int_equal(pubkey_parse(nul, sizeof nul - 1, &key, err, sizeof err), -1);
}

static void test_ratelimit(void **state)
{
    ratelimit r = {0};
    unsigned long held = 99;
    assert_true(ratelimit_pass(&r, 1000, 10000, &held));
    assert_int_equal(held, 0);
    for (int i = 0; i < 5; i++)
        assert_false(ratelimit_pass(&r, 2000 + i, 10000, &held));
    assert_false(ratelimit_pass(&r, 10999, 10000, &held));
    assert_true(ratelimit_pass(&r, 11000, 10000, &held));
    assert_int_equal(held, 6);
}

typedef struct {
    char dir[64], path[128];
    dns_hosts *h;
} dns_fixture;

static void dns_open(dns_fixture *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/cvdns-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/hosts", f->dir);
    f->h = dns_hosts_new(f->path, "convocate.internal", "");
    assert_non_null(f->h);
}

static char *dns_text(dns_fixture *f)
{
    char *text = NULL;
    if (read_file_bounded(f->path, DNS_HOSTS_FILE_MAX, &text, NULL) < 0)
        return strdup("");
    return text;
}

static void dns_close(dns_fixture *f)
{
    dns_hosts_free(f->h);
    unlink(f->path);
    rmdir(f->dir);
}

static void session_id(int i, char out[UUID_STR_LEN])
{
    snprintf(out, UUID_STR_LEN, "%08x-0000-4000-8000-000000000000", (unsigned)i);
}

static void test_dns_own_sessions_and_no_takeover(void **state)
{
    dns_fixture f;
    char err[256];
    dns_open(&f);
    assert_int_equal(dns_hosts_set(f.h, "agenta01", S1, "web", "10.0.0.2", err, sizeof err),
                     DNS_OK);
    /* another agent may neither take the name nor touch the session */
    assert_int_equal(dns_hosts_set(f.h, "agentb02", S2, "web", "10.0.0.3", err, sizeof err),
                     DNS_REFUSED);
    assert_non_null(strstr(err, "agenta01"));
    assert_int_equal(dns_hosts_set(f.h, "agentb02", S1, "evil", "10.0.0.3", err, sizeof err),
                     DNS_REFUSED);
    assert_int_equal(dns_hosts_forget(f.h, "agentb02", S1, err, sizeof err), DNS_REFUSED);
    char *text = dns_text(&f);
    assert_string_equal(text, "10.0.0.2 web.convocate.internal web\n");
    free(text);
    /* within one agent the name may move to another session */
    assert_int_equal(dns_hosts_set(f.h, "agenta01", S2, "web", "10.0.0.2", err, sizeof err),
                     DNS_OK);
    assert_int_equal(dns_hosts_count(f.h, "agenta01"), 1);
    assert_int_equal(dns_hosts_forget(f.h, "agenta01", S1, err, sizeof err), DNS_OK);
    text = dns_text(&f);
    assert_string_equal(text, "10.0.0.2 web.convocate.internal web\n"); /* S2's, kept */
    free(text);
    /* an edit that clears the name removes the record; bad input is refused */
    assert_int_equal(dns_hosts_set(f.h, "agenta01", S2, "", NULL, err, sizeof err), DNS_OK);
    assert_int_equal(dns_hosts_count(f.h, NULL), 0);
    assert_int_equal(dns_hosts_set(f.h, "agenta01", S2, "Bad Name", "10.0.0.2", err, sizeof err),
                     DNS_REFUSED);
    assert_int_equal(dns_hosts_set(f.h, "agenta01", S2, "ok", "1.2.3.4\nx", err, sizeof err),
                     DNS_REFUSED);
    text = dns_text(&f);
    assert_string_equal(text, "");
    free(text);
    dns_close(&f);
}

static void test_dns_cap_per_agent(void **state)
{
    dns_fixture f;
    char err[256], sid[UUID_STR_LEN], name[32];
    dns_open(&f);
    for (int i = 0; i < DNS_NAMES_PER_AGENT; i++) {
        session_id(i, sid);
        snprintf(name, sizeof name, "n%d", i);
        assert_int_equal(dns_hosts_set(f.h, "agenta01", sid, name, "10.0.0.2", err, sizeof err),
                         DNS_OK);
    }
    session_id(DNS_NAMES_PER_AGENT, sid);
    assert_int_equal(dns_hosts_set(f.h, "agenta01", sid, "one-more", "10.0.0.2", err, sizeof err),
                     DNS_REFUSED);
    assert_non_null(strstr(err, "4096"));
    /* renaming an existing one is not a new name; another agent has its own cap */
    session_id(0, sid);
    assert_int_equal(dns_hosts_set(f.h, "agenta01", sid, "renamed", "10.0.0.2", err, sizeof err),
                     DNS_OK);
    /* the table was exactly full when it grew: the rename must have stuck */
    assert_int_equal(dns_hosts_forget(f.h, "agenta01", sid, err, sizeof err), DNS_OK);
    char *text = dns_text(&f);
    assert_null(strstr(text, "renamed"));
    assert_null(strstr(text, " n0\n"));
    free(text);
    assert_int_equal(dns_hosts_set(f.h, "agenta01", sid, "renamed", "10.0.0.2", err, sizeof err),
                     DNS_OK);
    assert_int_equal(dns_hosts_set(f.h, "agentb02", S1, "b", "10.0.0.3", err, sizeof err), DNS_OK);
    /* events without a name never take a slot */
    for (int i = 0; i < 100; i++) {
        session_id(100000 + i, sid);
        assert_int_equal(dns_hosts_set(f.h, "agentb02", sid, "", NULL, err, sizeof err), DNS_OK);
    }
    assert_int_equal(dns_hosts_count(f.h, "agenta01"), DNS_NAMES_PER_AGENT);
    assert_int_equal(dns_hosts_count(f.h, "agentb02"), 1);
    dns_close(&f);
}

static void test_dns_edit_keeps_foreign_lines(void **state)
{
    const char *text = "# comment web\n10.1.2.3 vm1.convocate.internal vm1\n\n"
                       "10.0.0.2 web.convocate.internal web\n10.0.0.9 webby\n";
    char *out = dns_hosts_edit(text, "convocate.internal", "web", "api", "10.0.0.2");
    assert_non_null(out);
    assert_string_equal(out, "# comment web\n10.1.2.3 vm1.convocate.internal vm1\n"
                             "10.0.0.9 webby\n10.0.0.2 api.convocate.internal api\n");
    free(out);
    /* a name that is a prefix of another, or the other way round, is not it */
    out = dns_hosts_edit("1.1.1.1 web.convocate.internalx\n1.1.1.1 we\n", "convocate.internal",
                         "web", NULL, NULL);
    assert_string_equal(out, "1.1.1.1 web.convocate.internalx\n1.1.1.1 we\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_event_parse),
        cmocka_unit_test(test_pubkey_parse),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_dns_own_sessions_and_no_takeover),
        cmocka_unit_test(test_dns_cap_per_agent),
        cmocka_unit_test(test_dns_edit_keeps_foreign_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
