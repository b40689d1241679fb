/* What activity.c (the thread, the table, the life cycle) and
 * activity_spool.c (reading one session's events file) share. */
#ifndef CONVOCATE_AGENT_ACTIVITY_INTERNAL_H
#define CONVOCATE_AGENT_ACTIVITY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "agent/activity.h"
#include "common/ids.h"
#include "common/paths.h"
#include "common/ratelimit.h"
#include "proto/activity_line.h"

typedef struct {
    char uuid[UUID_STR_LEN];
    int wd; /* inotify watch of the spool directory, -1 when none */
    /* Where reading resumes: the file's identity and offset. */
    dev_t dev;
    ino_t ino;
    off_t offset;
    char carry[ACTIVITY_LINE_MAX]; /* a line not yet ended by '\n' */
    size_t carry_len;
    bool skipping; /* inside a line already too long: drop up to its '\n' */
    bool pending;  /* the last pass stopped before the end of the file */
    /* The activity object. */
    bool known;
    activity_state state;
    time_t since;
    char detail[ACTIVITY_DETAIL_MAX * 4 + 1];
    bool has_cost, has_context;
    double cost_usd, context_pct;
    char model[ACTIVITY_MODEL_MAX + 1];
} spool_session;

struct activity_watcher {
    char spool_root[PATH_BUF];
    emitter *events;
    uid_t uid;
    gid_t gid;
    int inotify_fd, wake_fd;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu; /* everything below */
    bool stopping;
    spool_session *items;
    size_t n, cap;
    unsigned long dropped;
    ratelimit drop_log;
};

/* Reads what was appended to s's events file since the last pass, at most
 * one pass's worth (s->pending says whether more is left), applies each
 * line and publishes every change when publish is true. Called with w->mu
 * held; never blocks. */
void spool_drain(activity_watcher *w, spool_session *s, bool publish);
/* The activity object of s (JSON null when nothing is known). */
json_t *spool_session_json(const spool_session *s);
/* Counts one dropped line or refused file and logs it, rate-limited. */
void spool_count_drop(activity_watcher *w, const char *uuid, const char *why);

#endif
