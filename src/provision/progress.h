/* A progress bar for long transfers (SPEC 11) on stderr: redrawn in place
 * on a terminal; otherwise a plain line every tenth of the way, so a log
 * file or a CI run gets a handful of lines instead of carriage returns. */
#ifndef CONVOCATE_PROVISION_PROGRESS_H
#define CONVOCATE_PROVISION_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "provision/runner.h"

typedef struct {
    char label[64];
    uint64_t total, done;
    double start, last_draw;
    int last_tenth; /* the last tenth printed without a terminal */
    bool tty;
} progress;

void progress_start(progress *p, const char *label, uint64_t total);
void progress_add(progress *p, size_t n);
/* The final state and a newline. */
void progress_finish(progress *p);

/* The runner's streaming upload of the local file src to path on r, with
 * a bar labelled label: what every long copy (an image, a session
 * archive) goes through. uid KEEP_OWNER leaves ownership as the upload
 * makes it. 0, or -1 with err. */
int progress_upload(runner *r, const char *label, const char *src, const char *path, mode_t mode,
                    uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
