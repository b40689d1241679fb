/* The host's readings behind admission: /proc/stat and /proc/meminfo.
 * Kept apart from capacity.c's parsing and decisions, which are pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/capacity.h"
#include "common/fileio.h"

#define PROC_TEXT_MAX (1024 * 1024)

static int read_proc(const char *path, char **text, char *err, size_t errlen)
{
    if (read_file_bounded(path, PROC_TEXT_MAX, text, NULL) < 0) {
        snprintf(err, errlen, "capacity: read %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int capacity_read_cpu(cpu_sample *out, char *err, size_t errlen)
{
    char *text;
    if (read_proc("/proc/stat", &text, err, errlen) < 0)
        return -1;
    int rc = capacity_parse_stat(text, out);
    free(text);
    if (rc < 0)
        snprintf(err, errlen, "capacity: /proc/stat has no cpu line");
    return rc;
}

int capacity_read_host(host_reading *out, char *err, size_t errlen)
{
    char *mem = NULL;
    if (capacity_read_cpu(&out->cpu, err, errlen) < 0 ||
        read_proc("/proc/meminfo", &mem, err, errlen) < 0)
        return -1;
    int rc = capacity_parse_meminfo(mem, &out->mem_total_kb, &out->mem_avail_kb);
    free(mem);
    if (rc < 0)
        snprintf(err, errlen, "capacity: /proc/meminfo lacks MemTotal or MemAvailable");
    return rc;
}
