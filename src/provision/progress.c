#include "provision/progress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_EVERY 0.2 /* seconds between terminal redraws */
#define MIB (1024.0 * 1024.0)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(progress *p, const char *label, uint64_t total)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start = now_seconds();
    p->tty = isatty(STDERR_FILENO) == 1;
}

/* "  upload: 45.2 / 60.1 MiB  75%  12.3 MiB/s  ETA 0:02" */
static void draw(progress *p, double now)
{
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    int pct = p->total > 0 ? (int)(100.0 * (double)p->done / (double)p->total) : 100;
    char eta[32] = "--:--";
    if (rate > 0 && p->done < p->total) {
        long left = (long)((double)(p->total - p->done) / rate);
        snprintf(eta, sizeof eta, "%ld:%02ld", left / 60, left % 60);
    } else if (p->done >= p->total) {
        snprintf(eta, sizeof eta, "0:00");
    }
    fprintf(stderr, "%s  %s: %.1f / %.1f MiB  %3d%%  %.1f MiB/s  ETA %s%s", p->tty ? "\r" : "",
            p->label, (double)p->done / MIB, (double)p->total / MIB, pct, rate / MIB, eta,
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
    p->last_draw = now;
}

void progress_add(progress *p, size_t n)
{
    p->done += n;
    double now = now_seconds();
    if (p->tty) {
        if (now - p->last_draw >= REDRAW_EVERY)
            draw(p, now);
        return;
    }
    int tenth = p->total > 0 ? (int)(10 * p->done / p->total) : 10;
    if (tenth > p->last_tenth && tenth < 10) {
        p->last_tenth = tenth;
        draw(p, now);
    }
}

void progress_finish(progress *p)
{
    draw(p, now_seconds());
    if (p->tty)
        fputc('\n', stderr);
    fflush(stderr);
}

typedef struct {
    progress bar;
    bool corrupt; /* the test hook below */
} upload_view;

static void on_chunk(void *ctx, char *buf, size_t n)
{
    upload_view *v = ctx;
    if (v->corrupt && n > 0) {
        buf[0] ^= 0x01;
        v->corrupt = false;
    }
    progress_add(&v->bar, n);
}

int progress_upload(runner *r, const char *label, const char *src, const char *path, mode_t mode,
                    uid_t uid, gid_t gid, char *err, size_t errlen)
{
    struct stat st;
    if (stat(src, &st) < 0) {
        snprintf(err, errlen, "%s: %s", src, strerror(errno));
        return -1;
    }
    upload_view v = {0};
    /* TEST HOOK: CONVOCATE_TEST_CORRUPT_TRANSFER=1 flips one bit of the
     * first chunk after the caller hashed the file, so the integration
     * tests can show that the digest check on the target catches damage
     * in flight. It changes nothing else and is harmless to leave unset. */
    const char *hook = getenv("CONVOCATE_TEST_CORRUPT_TRANSFER");
    v.corrupt = hook != NULL && strcmp(hook, "1") == 0;
    upload_watch w = {.chunk = on_chunk, .ctx = &v};
    progress_start(&v.bar, label, (uint64_t)st.st_size);
    int rc = r->ops->upload(r, src, path, mode, uid, gid, &w, err, errlen);
    progress_finish(&v.bar);
    return rc;
}
