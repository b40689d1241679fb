#include "shell/tui/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shell/names_cache.h"
#include "shell/orphans.h"

typedef struct {
    tui_model *model;
    agent_entry *agent;
    bool wake;
    bool busy;
    struct timespec busy_since;
    bool tried, answered, reachable, silent;
    char error[256];
    tui_capacity capacity;
    tui_row *rows;
    size_t n_rows;
} agent_slot;

struct tui_model {
    agent_registry *reg;
    int notify_fd;
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* agent threads wait here between lists */
    pthread_cond_t ended; /* model_stop waits here for threads to leave */
    bool stop;
    size_t running;
    agent_slot *slots;
    size_t n_slots;
    /* The shell's own orphan candidates (SPEC 6.5), rescanned with every
     * full refresh; which of them no agent lists is decided per snapshot. */
    tui_row *orphans;
    size_t n_orphans;
    bool orphans_wake;
    /* Bumped whenever the set of rows or what every row shows changes; the
     * UI copies everything again only then. */
    unsigned long gen;
    /* session.activity updates since the last snapshot, for the UI to patch
     * in one row at a time; DELTAS_MAX of them turn into one new gen. */
    tui_delta *deltas;
    size_t n_deltas;
};

#define DELTAS_MAX 4096

static void copy_field(char *dst, size_t size, json_t *s, const char *key)
{
    const char *v = json_string_value(json_object_get(s, key));
    snprintf(dst, size, "%s", v ? v : "");
}

void row_from_json(tui_row *row, json_t *s, const char *agent_id)
{
    memset(row, 0, sizeof *row);
    copy_field(row->uuid, sizeof row->uuid, s, "uuid");
    copy_field(row->name, sizeof row->name, s, "name");
    copy_field(row->protocol, sizeof row->protocol, s, "protocol");
    copy_field(row->dns_name, sizeof row->dns_name, s, "dns_name");
    copy_field(row->model, sizeof row->model, s, "model");
    row->autonomous = json_is_true(json_object_get(s, "autonomous"));
    copy_field(row->last_accessed, sizeof row->last_accessed, s, "last_accessed");
    copy_field(row->error, sizeof row->error, s, "error");
    snprintf(row->agent, sizeof row->agent, "%s", agent_id);
    row->port = (long)json_integer_value(json_object_get(s, "port"));
    const char *state = json_string_value(json_object_get(s, "state"));
    row->state = state && state[0] ? state[0] : '-';
    /* An orphan keeps its O with a broken session.json: belonging to no
     * agent is the first thing the operator must fix. */
    if (row->error[0] && row->state != 'O')
        row->state = '!'; /* SPEC 6.2: broken */
    json_t *activity = json_object_get(s, "activity");
    row->activity_reported = activity != NULL;
    activity_from_json(&row->activity, activity);
}

/* A slot's rows are kept in UUID order, so an event finds its row in
 * O(log n) among ten thousand. */
static int by_uuid(const void *a, const void *b)
{
    return strcmp(((const tui_row *)a)->uuid, ((const tui_row *)b)->uuid);
}

static tui_row *find_row(tui_row *rows, size_t n, const char *uuid)
{
    tui_row key;
    snprintf(key.uuid, sizeof key.uuid, "%s", uuid);
    return n ? bsearch(&key, rows, n, sizeof *rows, by_uuid) : NULL;
}

/* An agent older than SPEC 16 reports no "activity" key: what the status
 * feed said about its sessions stays until the agent says otherwise. */
static void keep_feed_activity(tui_row *rows, size_t n, tui_row *old, size_t n_old)
{
    for (size_t i = 0; i < n; i++) {
        if (rows[i].activity_reported)
            continue;
        const tui_row *before = find_row(old, n_old, rows[i].uuid);
        if (before)
            rows[i].activity = before->activity;
    }
}

static void notify(tui_model *m)
{
    /* A full pipe already holds a wake-up: losing this byte loses nothing. */
    if (write(m->notify_fd, "m", 1) < 0) {
    }
}

static void deadline_after(struct timespec *ts, int seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += seconds;
}

/* Converts a list result into rows; NULL with *n = 0 for an empty list. */
static tui_row *rows_from_list(json_t *list, const char *agent_id, size_t *n)
{
    *n = 0;
    size_t total = json_array_size(list);
    if (total == 0)
        return NULL;
    tui_row *rows = calloc(total, sizeof *rows);
    if (rows == NULL)
        return NULL;
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (json_is_object(s))
            row_from_json(&rows[(*n)++], s, agent_id);
    }
    qsort(rows, *n, sizeof *rows, by_uuid);
    return rows;
}

/* Records one list answer (or failure) under the lock. */
static void store_answer(agent_slot *slot, json_t *list, const char *err)
{
    slot->tried = true;
    slot->model->gen++;
    if (list == NULL) {
        slot->reachable = false;
        snprintf(slot->error, sizeof slot->error, "%s", err);
        for (size_t i = 0; i < slot->n_rows; i++)
            slot->rows[i].stale = true; /* keep the last known rows, greyed */
        return;
    }
    size_t n;
    tui_row *rows = rows_from_list(list, slot->agent->id, &n);
    if (rows == NULL && json_array_size(list) > 0) {
        snprintf(slot->error, sizeof slot->error, "out of memory");
        return;
    }
    keep_feed_activity(rows, n, slot->rows, slot->n_rows);
    free(slot->rows);
    slot->rows = rows;
    slot->n_rows = n;
    slot->answered = slot->reachable = true;
    slot->error[0] = '\0';
}

/* Lock held: sleeps until the next full refresh is due (TUI_REFRESH_S),
 * *wake is set, or the model stops. */
static void wait_for_refresh(tui_model *m, const bool *wake)
{
    struct timespec deadline;
    deadline_after(&deadline, TUI_REFRESH_S);
    while (!m->stop && !*wake)
        if (pthread_cond_timedwait(&m->wake, &m->lock, &deadline) == ETIMEDOUT)
            break;
}

/* The capacity object of a ping (SPEC 7); unknown when the agent did not
 * answer or reported none. */
static tui_capacity capacity_of(json_t *ping)
{
    tui_capacity c = {0};
    json_t *cap = json_object_get(ping, "capacity");
    if (!json_is_object(cap))
        return c;
    c.cpu_pct = json_number_value(json_object_get(cap, "cpu_pct"));
    c.mem_pct = json_number_value(json_object_get(cap, "mem_pct"));
    c.threshold_pct = (long)json_integer_value(json_object_get(cap, "threshold_pct"));
    c.sessions = (long)json_integer_value(json_object_get(cap, "sessions"));
    c.known = c.cpu_pct >= 0 && c.cpu_pct <= 1000 && c.mem_pct >= 0 && c.mem_pct <= 100;
    return c;
}

/* Lock not held: one list, then (when it came back) one ping for the
 * capacity gauges, both on this agent's own thread. */
static json_t *ask_agent(agent_slot *slot, char *err, size_t errlen, tui_capacity *cap)
{
    json_t *list = agent_call(slot->agent, "list", NULL, err, errlen);
    if (list && !json_is_array(list)) {
        json_decref(list);
        list = NULL;
        snprintf(err, errlen, "agent %s answered list with something not a list", slot->agent->id);
    }
    memset(cap, 0, sizeof *cap);
    if (list) {
        char ping_err[256];
        json_t *ping = agent_call(slot->agent, "ping", NULL, ping_err, sizeof ping_err);
        *cap = capacity_of(ping);
        json_decref(ping);
    }
    return list;
}

static void *agent_list_thread(void *arg)
{
    agent_slot *slot = arg;
    tui_model *m = slot->model;
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        slot->busy = true;
        slot->wake = false;
        clock_gettime(CLOCK_MONOTONIC, &slot->busy_since);
        pthread_mutex_unlock(&m->lock);
        char err[256] = "";
        tui_capacity cap;
        json_t *list = ask_agent(slot, err, sizeof err, &cap);
        names_cache_store(slot->agent->id, list); /* for completion; NULL keeps it */
        pthread_mutex_lock(&m->lock);
        slot->busy = false;
        store_answer(slot, list, err);
        slot->capacity = cap;
        json_decref(list);
        notify(m);
        wait_for_refresh(m, &slot->wake);
    }
    m->running--;
    pthread_cond_broadcast(&m->ended);
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* Replaces the orphan rows under the lock; an unreadable scan (out of
 * memory) keeps the last ones. */
static void store_orphans(tui_model *m, json_t *list)
{
    size_t n = 0;
    tui_row *rows = list ? rows_from_list(list, ORPHAN_AGENT, &n) : NULL;
    if (list == NULL || (rows == NULL && json_array_size(list) > 0))
        return;
    free(m->orphans);
    m->orphans = rows;
    m->n_orphans = n;
    m->gen++;
}

/* Scans the shell's /home/claude on start, then with every full refresh
 * (every TUI_REFRESH_S, or when woken for all agents). A thread of its own
 * like each agent's, so a slow disk never holds up the screen. */
static void *orphan_scan_thread(void *arg)
{
    tui_model *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        m->orphans_wake = false;
        pthread_mutex_unlock(&m->lock);
        json_t *list = orphans_scan();
        pthread_mutex_lock(&m->lock);
        store_orphans(m, list);
        json_decref(list);
        notify(m);
        wait_for_refresh(m, &m->orphans_wake);
    }
    m->running--;
    pthread_cond_broadcast(&m->ended);
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

static int init_sync(tui_model *m)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&m->wake, &attr) == 0 && pthread_cond_init(&m->ended, &attr) == 0 &&
                     pthread_mutex_init(&m->lock, NULL) == 0
                 ? 0
                 : -1;
    pthread_condattr_destroy(&attr);
    return rc;
}

/* Without its thread the TUI simply shows no orphans; the CLI still does. */
static void start_orphan_scan(tui_model *m)
{
    pthread_t t;
    pthread_mutex_lock(&m->lock);
    if (pthread_create(&t, NULL, orphan_scan_thread, m) == 0) {
        pthread_detach(t);
        m->running++;
    }
    pthread_mutex_unlock(&m->lock);
}

tui_model *model_start(agent_registry *reg, int notify_fd)
{
    tui_model *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->reg = reg;
    m->notify_fd = notify_fd;
    m->n_slots = reg->n;
    m->slots = calloc(reg->n ? reg->n : 1, sizeof *m->slots);
    if (m->slots == NULL || init_sync(m) < 0) {
        free(m->slots);
        free(m);
        return NULL;
    }
    for (size_t i = 0; i < reg->n; i++) {
        agent_slot *slot = &m->slots[i];
        slot->model = m;
        slot->agent = &reg->items[i];
        snprintf(slot->error, sizeof slot->error, "not asked yet");
        pthread_t t;
        pthread_mutex_lock(&m->lock);
        if (pthread_create(&t, NULL, agent_list_thread, slot) == 0) {
            pthread_detach(t);
            m->running++;
        } else {
            snprintf(slot->error, sizeof slot->error, "cannot start a thread for this agent");
        }
        pthread_mutex_unlock(&m->lock);
    }
    start_orphan_scan(m);
    return m;
}

void model_refresh(tui_model *m, const char *agent_id)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_slots; i++)
        if (agent_id == NULL || strcmp(m->slots[i].agent->id, agent_id) == 0)
            m->slots[i].wake = true;
    if (agent_id == NULL)
        m->orphans_wake = true;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

void model_set_silent(tui_model *m, const char *agent_id, bool silent)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_slots; i++)
        if (strcmp(m->slots[i].agent->id, agent_id) == 0 && m->slots[i].silent != silent) {
            m->slots[i].silent = silent;
            m->gen++; /* every row of it shows "unknown" now, or no longer */
        }
    pthread_mutex_unlock(&m->lock);
}

/* Lock held: queues the change for the UI, or (queue full) makes it take
 * a whole snapshot, which holds the change too. */
static void queue_delta(tui_model *m, const char *uuid, const tui_activity *a)
{
    if (m->deltas == NULL)
        m->deltas = malloc(DELTAS_MAX * sizeof *m->deltas);
    if (m->deltas == NULL || m->n_deltas == DELTAS_MAX) {
        m->n_deltas = 0;
        m->gen++;
        return;
    }
    tui_delta *d = &m->deltas[m->n_deltas++];
    snprintf(d->uuid, sizeof d->uuid, "%s", uuid);
    d->activity = *a;
}

void model_apply_activity(tui_model *m, const char *agent_id, const char *session_id, json_t *data)
{
    tui_activity a;
    activity_from_json(&a, data); /* null: nothing known any more */
    bool found = false;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_slots; i++) {
        agent_slot *slot = &m->slots[i];
        if (strcmp(slot->agent->id, agent_id) != 0)
            continue;
        tui_row *row = find_row(slot->rows, slot->n_rows, session_id);
        if (row) {
            row->activity = a;
            queue_delta(m, session_id, &a);
            found = true;
        } else { /* a session this TUI has not listed yet: list it */
            slot->wake = true;
        }
    }
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
    if (found)
        notify(m);
}

static int newest_first(const void *a, const void *b)
{
    const tui_row *x = a, *y = b;
    /* RFC 3339 UTC strings of one format sort as text. */
    int c = strcmp(y->last_accessed, x->last_accessed);
    return c ? c : strcmp(x->name, y->name);
}

static void fill_agent_view(tui_agent_view *v, const agent_slot *slot, const struct timespec *now)
{
    snprintf(v->id, sizeof v->id, "%s", slot->agent->id);
    snprintf(v->addr, sizeof v->addr, "%s:%d", slot->agent->host, slot->agent->port);
    v->tried = slot->tried;
    v->answered = slot->answered;
    v->reachable = slot->reachable;
    v->silent = slot->silent;
    v->pending_s = slot->busy ? (long)(now->tv_sec - slot->busy_since.tv_sec) : 0;
    snprintf(v->error, sizeof v->error, "%s", slot->error);
    v->capacity = slot->capacity;
}

/* True when some agent's rows (even stale ones, the last it said) hold uuid. */
static bool claimed_by_an_agent(const tui_model *m, const char *uuid)
{
    for (size_t i = 0; i < m->n_slots; i++)
        if (find_row(m->slots[i].rows, m->slots[i].n_rows, uuid))
            return true;
    return false;
}

/* Appends the orphans no agent lists. Only once every agent has answered or
 * failed once: before that, a session its agent is about to list would
 * flash up as an orphan. An agent that is down claims what it last listed;
 * one never heard from claims nothing, as in `convocate ls`. */
static void add_orphan_rows(const tui_model *m, tui_snapshot *out)
{
    for (size_t i = 0; i < m->n_slots; i++)
        if (!m->slots[i].tried)
            return;
    for (size_t i = 0; i < m->n_orphans; i++)
        if (!claimed_by_an_agent(m, m->orphans[i].uuid))
            out->rows[out->n_rows++] = m->orphans[i];
}

int model_snapshot(tui_model *m, tui_snapshot *out)
{
    memset(out, 0, sizeof *out);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&m->lock);
    size_t total = 0;
    for (size_t i = 0; i < m->n_slots; i++)
        total += m->slots[i].n_rows;
    total += m->n_orphans;
    out->rows = calloc(total ? total : 1, sizeof *out->rows);
    out->agents = calloc(m->n_slots ? m->n_slots : 1, sizeof *out->agents);
    if (out->rows == NULL || out->agents == NULL) {
        pthread_mutex_unlock(&m->lock);
        snapshot_free(out);
        return -1;
    }
    for (size_t i = 0; i < m->n_slots; i++) {
        const agent_slot *slot = &m->slots[i];
        if (slot->n_rows)
            memcpy(out->rows + out->n_rows, slot->rows, slot->n_rows * sizeof *slot->rows);
        /* SPEC 16: what a silent or unreachable agent said is no longer known. */
        for (size_t j = 0; j < slot->n_rows; j++)
            out->rows[out->n_rows + j].activity_unknown = slot->silent || !slot->reachable;
        out->n_rows += slot->n_rows;
        fill_agent_view(&out->agents[i], slot, &now);
    }
    add_orphan_rows(m, out);
    out->n_agents = m->n_slots;
    out->gen = m->gen;
    m->n_deltas = 0; /* this copy holds them all */
    pthread_mutex_unlock(&m->lock);
    qsort(out->rows, out->n_rows, sizeof *out->rows, newest_first);
    return 0;
}

int model_take_deltas(tui_model *m, unsigned long seen_gen, tui_delta **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&m->lock);
    int rc = m->gen == seen_gen ? 0 : -1;
    if (rc == 0 && m->n_deltas > 0) {
        *out = malloc(m->n_deltas * sizeof **out);
        if (*out == NULL) {
            m->gen++; /* out of memory: the next snapshot holds them */
            rc = -1;
        } else {
            memcpy(*out, m->deltas, m->n_deltas * sizeof **out);
            *n = m->n_deltas;
        }
        m->n_deltas = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void model_agent_views(tui_model *m, tui_snapshot *snap)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_slots && i < snap->n_agents; i++)
        fill_agent_view(&snap->agents[i], &m->slots[i], &now);
    pthread_mutex_unlock(&m->lock);
}

void snapshot_free(tui_snapshot *s)
{
    free(s->rows);
    free(s->agents);
    memset(s, 0, sizeof *s);
}

bool model_stop(tui_model *m, int wait_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_cond_broadcast(&m->wake);
    while (m->running > 0)
        if (pthread_cond_timedwait(&m->ended, &m->lock, &deadline) == ETIMEDOUT)
            break;
    bool all_ended = m->running == 0;
    pthread_mutex_unlock(&m->lock);
    if (!all_ended)
        return false; /* a thread still reads the slots: leave them to exit() */
    for (size_t i = 0; i < m->n_slots; i++)
        free(m->slots[i].rows);
    free(m->slots);
    free(m->orphans);
    free(m->deltas);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->wake);
    pthread_cond_destroy(&m->ended);
    free(m);
    return true;
}
