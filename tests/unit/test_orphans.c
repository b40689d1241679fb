/* Unit tests for the shell's orphan scan (SPEC 6.5) on a temporary
 * /home/claude: what is listed, what is listed with an error, what is
 * skipped without a look inside. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/paths.h"
#include "common/tree.h"
#include "shell/orphans.h"

#define GOOD "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
#define BROKEN "0f8fad5b-d9cb-469f-a165-70867728950e"
#define NOJSON "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define LINKED "16fd2706-8baf-433b-82eb-8c7fada847da"
#define UPPER "6BA7B810-9DAD-41D1-80B4-00C04FD430C8"

static void write_text(const char *dir, const char *name, const char *sub, const char *text)
{
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(mkdir(path, 0700), 0);
    if (sub == NULL)
        return;
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, sub);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static json_t *find(json_t *list, const char *uuid)
{
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "uuid")), uuid) == 0)
            return s;
    }
    return NULL;
}

/* A home with one valid orphan, one broken, one without session.json, and
 * names that must be skipped: not UUIDs, a dot-file, upper case, a symlink
 * to a valid session directory, and a regular file with a UUID name. */
static char *make_home(void)
{
    static char tmpl[64];
    snprintf(tmpl, sizeof tmpl, "/tmp/convocate-orphans-XXXXXX");
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    write_text(dir, GOOD, "session.json",
               "{\"uuid\":\"" GOOD "\",\"name\":\"old\",\"port\":8080,\"protocol\":\"tcp\","
               "\"dns_name\":\"old\",\"last_accessed\":\"2026-11-24T11:00:00Z\",\"extra\":1}");
    write_text(dir, BROKEN, "session.json", "{\"name\": \"half");
    write_text(dir, NOJSON, NULL, NULL);
    write_text(dir, "not-a-uuid", "session.json", "{}");
    write_text(dir, ".claude", "session.json", "{}");
    write_text(dir, UPPER, "session.json", "{}");
    char target[PATH_BUF], link[PATH_BUF], file[PATH_BUF];
    snprintf(target, sizeof target, "%s/%s", dir, GOOD);
    snprintf(link, sizeof link, "%s/%s", dir, LINKED);
    assert_int_equal(symlink(target, link), 0);
    snprintf(file, sizeof file, "%s/" LINKED "x", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    return dir;
}

static void test_valid_orphan_is_listed_like_an_agents_session(void **state)
{
    char *dir = make_home();
    json_t *list = orphans_scan_dir(dir);
    assert_non_null(list);
    json_t *s = find(list, GOOD);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "state")), "O");
    assert_string_equal(json_string_value(json_object_get(s, "name")), "old");
    assert_string_equal(json_string_value(json_object_get(s, "agent")), ORPHAN_AGENT);
    assert_int_equal(json_integer_value(json_object_get(s, "port")), 8080);
    assert_int_equal(json_integer_value(json_object_get(s, "extra")), 1);
    assert_true(json_is_false(json_object_get(s, "running")));
    assert_true(json_is_false(json_object_get(s, "locked")));
    assert_int_equal(json_integer_value(json_object_get(s, "attached")), 0);
    assert_null(json_object_get(s, "error"));
    assert_true(session_is_orphan(s));
    json_decref(list);
    assert_int_equal(tree_remove(dir), 0);
}

static void test_broken_or_missing_json_is_listed_with_an_error(void **state)
{
    char *dir = make_home();
    json_t *list = orphans_scan_dir(dir);
    json_t *broken = find(list, BROKEN), *missing = find(list, NOJSON);
    assert_non_null(broken);
    assert_non_null(missing);
    assert_string_equal(json_string_value(json_object_get(broken, "state")), "O");
    assert_non_null(strstr(json_string_value(json_object_get(broken, "error")), "session.json"));
    assert_non_null(strstr(json_string_value(json_object_get(missing, "error")), "session.json"));
    json_decref(list);
    assert_int_equal(tree_remove(dir), 0);
}

static void test_other_names_and_symlinks_are_skipped(void **state)
{
    char *dir = make_home();
    json_t *list = orphans_scan_dir(dir);
    assert_int_equal(json_array_size(list), 3); /* GOOD, BROKEN, NOJSON only */
    assert_null(find(list, LINKED));
    json_decref(list);
    assert_int_equal(tree_remove(dir), 0);
}

static void test_missing_home_has_no_orphans(void **state)
{
    json_t *list = orphans_scan_dir("/nonexistent/convocate/home/claude");
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void test_refusal_names_migrate_session(void **state)
{
    char line[600];
    orphan_refusal(line, sizeof line, "old", GOOD);
    assert_non_null(strstr(line, "convocate-host migrate-session --agent ID --session " GOOD));
    assert_null(strchr(line, '\n'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_orphan_is_listed_like_an_agents_session),
        cmocka_unit_test(test_broken_or_missing_json_is_listed_with_an_error),
        cmocka_unit_test(test_other_names_and_symlinks_are_skipped),
        cmocka_unit_test(test_missing_home_has_no_orphans),
        cmocka_unit_test(test_refusal_names_migrate_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
