/* Admission control, layer 1 of SPEC 10: measure the host and refuse a new
 * session or a container start that would push it past the threshold. The
 * /proc parsers and the decision are pure functions so tests can feed them. */
#ifndef CONVOCATE_AGENT_CAPACITY_H
#define CONVOCATE_AGENT_CAPACITY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPU_SAMPLE_GAP_MS 200    /* the first sample's window after start */
#define CAPACITY_SAMPLE_MS 1000  /* the sampling thread's period */
#define CAPACITY_MAX_AGE_MS 1000 /* older than this, a reader samples inline */

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

/* The host's load as admission and ping see it. One background thread
 * samples /proc every CAPACITY_SAMPLE_MS: it reads the CPU counters, reads
 * them again CPU_SAMPLE_GAP_MS later (SPEC 10's two samples ~200 ms apart)
 * and stores the busy share between the two, with memory. Readers take the
 * latest sample without waiting, so no RPC ever sleeps to measure. A
 * reader that finds the sample older than CAPACITY_MAX_AGE_MS (the thread
 * was starved or failed to start) samples on the spot, against the last
 * counters read: still no sleep. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC; stop, and the first sample */
    capacity_snapshot last;
    int64_t last_ms;     /* when last was taken */
    bool valid;          /* last holds a sample */
    cpu_sample prev_cpu; /* the latest counters read: the next window's start */
    int64_t prev_ms;
    int64_t started_ms; /* when the meter took its first counters */
    bool stop;
    bool thread_running;
    pthread_t thread;
    unsigned long served_cached, sampled_inline; /* for tests and logs */
    void (*tick)(void *ctx);                     /* after each sample, lock not held */
    void *tick_ctx;
} capacity_meter;

/* True once a first sample exists, so capacity_measure() will not wait. */
bool capacity_meter_has_sample(capacity_meter *m);
/* Takes the base counters and starts the sampling thread; a thread that
 * cannot start is logged and readers sample inline instead. */
void capacity_meter_init(capacity_meter *m);
void capacity_meter_destroy(capacity_meter *m);
/* Has the sampling thread call fn(ctx) once a period, after its sample
 * (periodic housekeeping that must stay off the request path, e.g.
 * memory_rest_tick). Nothing is called when the thread could not start. */
void capacity_meter_on_tick(capacity_meter *m, void (*fn)(void *ctx), void *ctx);
/* The latest sample (at most CAPACITY_MAX_AGE_MS old), without waiting;
 * only in the first CPU_SAMPLE_GAP_MS of the meter's life does a reader
 * wait for the thread's first sample (once per agent, not per call). */
int capacity_measure(capacity_meter *m, capacity_snapshot *out, char *err, size_t errlen);

/* One reading of the host: the CPU counters and the memory figures. */
typedef struct {
    cpu_sample cpu;
    unsigned long long mem_total_kb, mem_avail_kb;
} host_reading;

/* Reads /proc/stat once; 0, or -1 with err. */
int capacity_read_cpu(cpu_sample *out, char *err, size_t errlen);
/* Reads /proc/stat and /proc/meminfo once; 0, or -1 with err. */
int capacity_read_host(host_reading *out, char *err, size_t errlen);
/* The snapshot of a reading, its CPU share taken against before. */
void capacity_snapshot_of(const cpu_sample *before, const host_reading *now,
                          capacity_snapshot *out);

#endif
