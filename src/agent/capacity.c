#include "agent/capacity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CPU_FIELDS 10

/* Reads up to CPU_FIELDS counters after a "cpu" label; returns how many. */
static int parse_cpu_counters(const char *p, unsigned long long v[CPU_FIELDS])
{
    int n = 0;
    while (n < CPU_FIELDS) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p || errno)
            break;
        v[n++] = x;
        p = end;
    }
    return n;
}

int capacity_parse_stat(const char *text, cpu_sample *out)
{
    memset(out, 0, sizeof *out);
    bool have_total = false;
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, "cpu", 3) != 0)
            continue;
        if (line[3] >= '0' && line[3] <= '9') {
            out->ncpu++;
            continue;
        }
        if (line[3] != ' ')
            continue;
        unsigned long long v[CPU_FIELDS] = {0};
        /* user nice system idle iowait irq softirq steal guest guest_nice */
        if (parse_cpu_counters(line + 3, v) < 4)
            return -1;
        /* guest time is already counted in user and nice. */
        for (int i = 0; i < 8; i++)
            out->total += v[i];
        out->busy = out->total - v[3] - v[4];
        have_total = true;
    }
    if (out->ncpu == 0)
        out->ncpu = 1;
    return have_total ? 0 : -1;
}

double capacity_cpu_pct(const cpu_sample *before, const cpu_sample *after)
{
    if (after->total <= before->total || after->busy < before->busy)
        return 0.0;
    double pct =
        100.0 * (double)(after->busy - before->busy) / (double)(after->total - before->total);
    return pct > 100.0 ? 100.0 : pct;
}

static int meminfo_field(const char *text, const char *key, unsigned long long *out)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *end;
            errno = 0;
            *out = strtoull(line + klen + 1, &end, 10);
            return end == line + klen + 1 || errno ? -1 : 0;
        }
    }
    return -1;
}

int capacity_parse_meminfo(const char *text, unsigned long long *total_kb,
                           unsigned long long *avail_kb)
{
    if (meminfo_field(text, "MemTotal", total_kb) < 0 ||
        meminfo_field(text, "MemAvailable", avail_kb) < 0 || *total_kb == 0 ||
        *avail_kb > *total_kb)
        return -1;
    return 0;
}

static const char *plural_sessions(int n)
{
    return n == 1 ? "session" : "sessions";
}

/* The declared limits of every running session plus the new one must fit:
 * a request that can never fit is refused first, whatever the moment's load,
 * so the operator learns the lasting reason. */
static int admit_limits(const capacity_snapshot *snap, const admission_request *req, char *err,
                        size_t errlen)
{
    double cap = req->threshold_pct;
    int n = req->running;
    const char *s = plural_sessions(n);
    double cpu_limits = 100.0 * req->session_cpus * (n + 1) / (snap->ncpu > 0 ? snap->ncpu : 1);
    if (req->session_cpus > 0 && cpu_limits > cap) {
        snprintf(err, errlen,
                 "admission denied: session cpu limits %d x %.2f cpus = %.1f%% of host (cap "
                 "%d%%); %d %s running",
                 n + 1, req->session_cpus, cpu_limits, req->threshold_pct, n, s);
        return -1;
    }
    double total_mb = (double)snap->mem_total_kb / 1024.0;
    double mem_limits =
        total_mb > 0 ? 100.0 * (double)req->session_memory_mb * (n + 1) / total_mb : 0.0;
    if (req->session_memory_mb > 0 && mem_limits > cap) {
        snprintf(err, errlen,
                 "admission denied: session memory limits %d x %ld MB = %.1f%% of host (cap "
                 "%d%%); %d %s running",
                 n + 1, req->session_memory_mb, mem_limits, req->threshold_pct, n, s);
        return -1;
    }
    return 0;
}

int capacity_admit(const capacity_snapshot *snap, const admission_request *req, char *err,
                   size_t errlen)
{
    double cap = req->threshold_pct;
    int n = req->running;
    const char *s = plural_sessions(n);
    if (admit_limits(snap, req, err, errlen) < 0)
        return -1;
    if (snap->cpu_pct >= cap) {
        snprintf(err, errlen, "admission denied: cpu %.1f%% of host (cap %d%%); %d %s running",
                 snap->cpu_pct, req->threshold_pct, n, s);
        return -1;
    }
    if (snap->mem_pct >= cap) {
        snprintf(err, errlen, "admission denied: memory %.1f%% of host (cap %d%%); %d %s running",
                 snap->mem_pct, req->threshold_pct, n, s);
        return -1;
    }
    return 0;
}

void capacity_snapshot_of(const cpu_sample *before, const host_reading *now, capacity_snapshot *out)
{
    out->cpu_pct = capacity_cpu_pct(before, &now->cpu);
    out->mem_pct = 100.0 * (1.0 - (double)now->mem_avail_kb / (double)now->mem_total_kb);
    out->mem_total_kb = now->mem_total_kb;
    out->ncpu = now->cpu.ncpu;
}
