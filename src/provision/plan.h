/* Idempotent provisioning steps. Each step compares what the target holds
 * with what it should hold and prints "  <step>: created|updated|unchanged"
 * ("would create|would update" on a dry run, which touches nothing); the
 * run ends with "nothing changed" when no step changed anything. */
#ifndef CONVOCATE_PROVISION_PLAN_H
#define CONVOCATE_PROVISION_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "provision/runner.h"

#define PLAN_SMALL_FILE_MAX (1024 * 1024)

typedef enum { STEP_UNCHANGED, STEP_CREATED, STEP_UPDATED } step_outcome;

typedef struct {
    const char *program; /* "convocate-host init-agent": prefixes error lines */
    bool dry_run;
    int changes;
} plan;

void plan_report(plan *p, const char *step, step_outcome outcome);
/* Prints "<program>: <step>: <message>" on stderr; returns -1. */
int plan_fail(plan *p, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints the closing line; returns 0. */
int plan_finish(plan *p);

/* A directory with this mode and owner (uid KEEP_OWNER: any owner). */
int plan_dir(plan *p, runner *r, const char *step, const char *path, mode_t mode, uid_t uid,
             gid_t gid);
/* A file with exactly this content, mode and owner. */
int plan_file(plan *p, runner *r, const char *step, const char *path, const void *data, size_t len,
              mode_t mode, uid_t uid, gid_t gid);
/* A file that is created with this content when missing and otherwise left
 * as the operator (or a service) made it: domain, dnsmasq-hosts. */
int plan_file_once(plan *p, runner *r, const char *step, const char *path, const void *data,
                   size_t len, mode_t mode, uid_t uid, gid_t gid);

/* Reads a small file on the target: 1 when present (*out malloc'd), 0 when
 * missing, -1 on error (reported under step). */
int plan_read(plan *p, runner *r, const char *step, const char *path, char **out, size_t *len);

/* Runs argv on the target; 0 with *out (caller frees; out may be NULL),
 * or -1 after one line naming step, the program and its last output line. */
int plan_run(plan *p, runner *r, const char *step, char *const argv[], char **out);

#endif
