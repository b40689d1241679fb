#include "host/vm/admission.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* total * 90 / 100 without overflow for any total vm_request.h admits. */
static long share(long total)
{
    return total / 100 * VM_ADMIT_PERCENT + total % 100 * VM_ADMIT_PERCENT / 100;
}

/* Appends a refusal for one resource when it does not fit; unit is " MB",
 * " GB" or "". */
static bool check_one(const char *what, const char *unit, long total, long pledged, long request,
                      char *why, size_t whylen)
{
    long cap = share(total);
    if (pledged + request <= cap)
        return true;
    size_t used = strlen(why);
    snprintf(why + used, whylen - used,
             "%s%s %ld%s pledged + %ld requested > %d%% of %ld%s (%ld%s)",
             used == 0 ? "admission denied: " : "; ", what, pledged, unit, request,
             VM_ADMIT_PERCENT, total, unit, cap, unit);
    return false;
}

int vm_admit(const vm_resources *total, const vm_resources *pledged, const vm_resources *request,
             char *why, size_t whylen)
{
    why[0] = '\0';
    bool ok = check_one("cpu", "", total->cpu, pledged->cpu, request->cpu, why, whylen);
    ok &= check_one("ram", " MB", total->ram_mb, pledged->ram_mb, request->ram_mb, why, whylen);
    ok &= check_one("disk", " GB", total->disk_gb, pledged->disk_gb, request->disk_gb, why, whylen);
    return ok ? 0 : -1;
}

static int parse_value(const char *s, size_t len, long *out)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf || strspn(s, "0123456789") < len)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    *out = strtol(buf, NULL, 10);
    return errno == 0 ? 0 : -1;
}

int vm_pledge_parse(const char *text, vm_resources *out)
{
    static const char *const keys[] = {"cpu=", "ram_mb=", "disk_gb="};
    long *slots[] = {&out->cpu, &out->ram_mb, &out->disk_gb};
    bool seen[3] = {false, false, false};
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        size_t k = 0;
        while (k < 3 && strncmp(p, keys[k], strlen(keys[k])) != 0)
            k++;
        if (len > 0) {
            size_t klen = k < 3 ? strlen(keys[k]) : 0;
            if (k == 3 || seen[k] || parse_value(p + klen, len - klen, slots[k]) < 0)
                return -1;
            seen[k] = true;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return seen[0] && seen[1] && seen[2] ? 0 : -1;
}

int vm_pledge_format(const vm_resources *r, char *buf, size_t size)
{
    return snprintf(buf, size, "cpu=%ld\nram_mb=%ld\ndisk_gb=%ld\n", r->cpu, r->ram_mb, r->disk_gb);
}

long vm_meminfo_total_mb(const char *meminfo)
{
    const char *line = strstr(meminfo, "MemTotal:");
    if (line == NULL || (line != meminfo && line[-1] != '\n'))
        return -1;
    char *end;
    errno = 0;
    long kb = strtol(line + strlen("MemTotal:"), &end, 10);
    if (errno != 0 || kb <= 0 || strncmp(end, " kB", 3) != 0)
        return -1;
    return kb / 1024;
}

long vm_df_total_gb(const char *df_output)
{
    /* Line 2, field 2: "Filesystem 1024-blocks Used Available Capacity Mounted on". */
    const char *line = strchr(df_output, '\n');
    if (line == NULL)
        return -1;
    line++;
    line += strcspn(line, " \t\n");
    char *end;
    errno = 0;
    long long kb = strtoll(line, &end, 10);
    if (errno != 0 || end == line || kb <= 0 || (*end != ' ' && *end != '\t'))
        return -1;
    return (long)(kb / (1024 * 1024));
}
