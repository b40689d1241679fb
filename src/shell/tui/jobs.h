/* Operator actions run off the UI thread (SPEC 12: the screen never waits on
 * the network except for attach). Each job is one thread; its result is handed
 * back through a done list and a byte on the notify pipe. */
#ifndef CONVOCATE_SHELL_TUI_JOBS_H
#define CONVOCATE_SHELL_TUI_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ssh/registry.h"

typedef enum {
    JOB_ACTION,   /* kill, restart, background, override, delete: {id} -> null */
    JOB_SESSION,  /* create, edit, clone: -> session object */
    JOB_PING_ALL, /* ping, auth-get and settings-get every agent, for the settings dialog */
    JOB_PEEK,     /* the preview pane's peek: {id} -> {screen,cols,rows} */
    JOB_SEND,     /* the > prompt: {id,text,enter} -> null */
    JOB_SETTINGS  /* the settings editor: settings-set on one agent */
} job_kind;

typedef struct tui_job {
    unsigned id; /* set by jobs_submit, so a form can claim its own answer */
    job_kind kind;
    char op[16];
    agent_entry *agent;  /* target of ACTION/SESSION */
    agent_registry *reg; /* for the DNS check and PING_ALL */
    json_t *params;      /* owned */
    char dns_name[128];  /* checked cluster-wide before create/edit is sent */
    char except_uuid[40];
    char label[200]; /* what the status line says while it runs */
    char name[128];  /* the session's name, for the message when done */
    char uuid[40];   /* PEEK and SEND: the session's UUID */
    /* filled by the worker */
    bool ok;
    json_t *result;
    char error[512];
    agent_reply *replies; /* PING_ALL: one per registry entry */
    size_t n_replies;
    agent_reply *auth;     /* PING_ALL: auth-get of each agent that answered the ping */
    agent_reply *settings; /* PING_ALL: settings-get of the same agents */
    struct tui_job *next;
} tui_job;

typedef struct tui_jobs tui_jobs;

tui_jobs *jobs_new(int notify_fd);
/* Allocates a zeroed job; NULL when out of memory. */
tui_job *job_new(job_kind kind, const char *op);
void job_free(tui_job *job);
/* Starts job on its own thread and takes ownership; returns its id, or 0
 * (with the job freed) when no thread could be had. */
unsigned jobs_submit(tui_jobs *j, tui_job *job);
/* One finished job, oldest first, or NULL; the caller frees it. */
tui_job *jobs_take_done(tui_jobs *j);
/* Waits up to wait_ms for running jobs; true when none is left. */
bool jobs_stop(tui_jobs *j, int wait_ms);

#endif
