/* Admission control, layer 1 of SPEC 10: measure the host and refuse a new
 * session or a container start that would push it past the threshold. The
 * /proc parsers and the decision are pure functions so tests can feed them. */
#ifndef CONVOCATE_AGENT_CAPACITY_H
#define CONVOCATE_AGENT_CAPACITY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPU_SAMPLE_GAP_MS 200
#define CAPACITY_CACHE_MS 1000

typedef struct {
    unsigned long long busy;  /* jiffies spent not idle */
    unsigned long long total; /* all jiffies */
    int ncpu;                 /* cpuN lines seen */
} cpu_sample;

/* Parses /proc/stat text; 0, or -1 when the aggregate "cpu" line is missing. */
int capacity_parse_stat(const char *text, cpu_sample *out);
/* Busy share between two samples, 0..100. */
double capacity_cpu_pct(const cpu_sample *before, const cpu_sample *after);
/* Parses /proc/meminfo text for MemTotal and MemAvailable (kB); 0 or -1. */
int capacity_parse_meminfo(const char *text, unsigned long long *total_kb,
                           unsigned long long *avail_kb);

typedef struct {
    double cpu_pct;
    double mem_pct;
    unsigned long long mem_total_kb;
    int ncpu;
} capacity_snapshot;

typedef struct {
    int threshold_pct;
    double session_cpus;    /* per-session limit, 0 = none */
    long session_memory_mb; /* per-session limit, 0 = none */
    int running;            /* sessions running now */
} admission_request;

/* 0 admits one more session; -1 refuses with the quantitative reason. */
int capacity_admit(const capacity_snapshot *snap, const admission_request *req, char *err,
                   size_t errlen);

/* Samples the host, reusing a measurement younger than CAPACITY_CACHE_MS so
 * a burst of creates costs one 200 ms sample, not one each. */
typedef struct {
    pthread_mutex_t mu;
    capacity_snapshot last;
    int64_t last_ms;
    bool valid;
} capacity_meter;

void capacity_meter_init(capacity_meter *m);
void capacity_meter_destroy(capacity_meter *m);
int capacity_measure(capacity_meter *m, capacity_snapshot *out, char *err, size_t errlen);

#endif
