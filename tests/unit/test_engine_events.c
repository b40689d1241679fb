/* engine/events.c: one line of the engine's event stream, read the way the
 * engine watcher relies on (docs/decisions.md, "The mapping"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/events.h"

#define UUID "0b5a0a3e-4b5c-4d6e-8f70-8192a3b4c5d6"

static int parse(const char *line, docker_event *ev)
{
    return docker_event_parse(line, strlen(line), ev);
}

static void test_die_carries_its_exit_code(void **state)
{
    (void)state;
    docker_event ev;
    assert_int_equal(parse("{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"x\","
                           "\"Attributes\":{\"convocate.session\":\"" UUID
                           "\",\"exitCode\":\"137\"}}}",
                           &ev),
                     0);
    assert_int_equal(ev.action, DOCKER_EV_DIE);
    assert_string_equal(ev.uuid, UUID);
    assert_int_equal(ev.exit_code, 137);
}

static void test_kill_carries_its_signal_and_oom_nothing(void **state)
{
    (void)state;
    docker_event ev;
    assert_int_equal(parse("{\"Type\":\"container\",\"Action\":\"kill\",\"Actor\":{"
                           "\"Attributes\":{\"convocate.session\":\"" UUID
                           "\",\"signal\":\"15\"}}}",
                           &ev),
                     0);
    assert_int_equal(ev.action, DOCKER_EV_KILL);
    assert_int_equal(ev.signal, 15);
    assert_int_equal(ev.exit_code, -1);
    assert_int_equal(parse("{\"Type\":\"container\",\"Action\":\"oom\",\"Actor\":{"
                           "\"Attributes\":{\"convocate.session\":\"" UUID "\"}}}",
                           &ev),
                     0);
    assert_int_equal(ev.action, DOCKER_EV_OOM);
}

static void test_what_is_not_a_session_transition_is_refused(void **state)
{
    (void)state;
    docker_event ev;
    /* exec noise, another type, no or a bad session label, a bad exit code */
    assert_int_equal(parse("{\"Type\":\"container\",\"Action\":\"exec_die\",\"Actor\":{"
                           "\"Attributes\":{\"convocate.session\":\"" UUID "\"}}}",
                           &ev),
                     -1);
    assert_int_equal(parse("{\"Type\":\"network\",\"Action\":\"die\",\"Actor\":{"
                           "\"Attributes\":{\"convocate.session\":\"" UUID "\"}}}",
                           &ev),
                     -1);
    assert_int_equal(
        parse("{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"Attributes\":{}}}", &ev),
        -1);
    assert_int_equal(parse("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{"
                           "\"Attributes\":{\"convocate.session\":\"../etc\"}}}",
                           &ev),
                     -1);
    assert_int_equal(parse("{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{"
                           "\"Attributes\":{\"convocate.session\":\"" UUID
                           "\",\"exitCode\":\"-5\"}}}",
                           &ev),
                     0);
    assert_int_equal(ev.exit_code, -1);
    assert_int_equal(parse("not json", &ev), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_die_carries_its_exit_code),
        cmocka_unit_test(test_kill_carries_its_signal_and_oom_nothing),
        cmocka_unit_test(test_what_is_not_a_session_transition_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
