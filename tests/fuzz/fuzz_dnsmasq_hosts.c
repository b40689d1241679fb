/* The dnsmasq hosts file parser (provision/dnsmasq_hosts.c
 * dns_hosts_edit): the file is shared with create-vm and operators, so
 * status-serve must read any text. Properties: an edit is idempotent, the
 * removed and added names appear only in the added line, and every other
 * line comes through unchanged. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "provision/dnsmasq_hosts.h"

#define DOMAIN "convocate.internal"

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks the names, so both a match and a miss are hit. */
    static const char *const names[] = {"web", "api", "a", "vm1", "x-1"};
    const char *rm = size ? names[data[0] % 5] : "web";
    const char *add = size > 1 ? names[data[1] % 5] : "api";
    char *text = fuzz_cstring(data, size);
    char *once = dns_hosts_edit(text, DOMAIN, rm, add, "10.0.0.2");
    FUZZ_CHECK(once != NULL);
    char *twice = dns_hosts_edit(once, DOMAIN, rm, add, "10.0.0.2");
    FUZZ_CHECK(twice != NULL && strcmp(once, twice) == 0);
    /* the added line is the last one */
    size_t olen = strlen(once);
    FUZZ_CHECK(olen > 0 && once[olen - 1] == '\n');
    FUZZ_CHECK(count_lines(once) <= count_lines(text) + 2);
    char *gone = dns_hosts_edit(once, DOMAIN, add, NULL, NULL);
    FUZZ_CHECK(gone != NULL && strlen(gone) < olen);
    free(gone);
    free(twice);
    free(once);
    free(text);
    return 0;
}
