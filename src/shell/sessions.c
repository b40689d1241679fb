#include "shell/sessions.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/ls_timing.h"
#include "shell/names_cache.h"
#include "shell/orphans.h"
#include "shell/session_json.h"

/* A session as the merge sees it: its sort key, looked up once (a
 * comparison that looked the key up in both objects every time cost more
 * than the sort itself with ten thousand sessions), and, for `ls --json`,
 * its text. */
typedef struct {
    const char *last_accessed;
    json_t *session;
    char *text; /* NULL unless rendered */
} listed_session;

static listed_session listed(json_t *session)
{
    const char *when = json_string_value(json_object_get(session, "last_accessed"));
    return (listed_session){when ? when : "", session, NULL};
}

static int newest_first(const void *a, const void *b)
{
    /* RFC 3339 UTC strings of one format sort as text. */
    return strcmp(((const listed_session *)b)->last_accessed,
                  ((const listed_session *)a)->last_accessed);
}

int sessions_sort_newest_first(json_t **all, size_t n)
{
    listed_session *items = calloc(n ? n : 1, sizeof *items);
    if (items == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        items[i] = listed(all[i]);
    qsort(items, n, sizeof *items, newest_first);
    for (size_t i = 0; i < n; i++)
        all[i] = items[i].session;
    free(items);
    return 0;
}

/* What one agent's call thread leaves for the merge. */
typedef struct {
    listed_session *items;
    size_t n;
    bool out_of_memory;
} agent_listing;

typedef struct {
    agent_registry *registry;
    agent_listing *per_agent; /* one per registered agent */
    bool render;              /* also render each session for ls --json */
    bool hang_up;             /* CLUSTER_LIST_ONCE */
    bool store_names;         /* not CLUSTER_LIST_NO_NAMES */
} listing_job;

/* Runs on agent i's call thread as soon as its list is in: stamps each
 * session with its agent, takes its sort key and, for ls --json, renders
 * it, so that a hundred agents' lists are prepared in parallel with the
 * answers still on their way. Touches only agent i's reply and listing. */
static void prepare_listing(size_t i, agent_reply *reply, void *ctx)
{
    listing_job *job = ctx;
    agent_listing *out = &job->per_agent[i];
    const char *agent = job->registry->items[i].id;
    if (job->hang_up)
        agent_hang_up(&job->registry->items[i]);
    if (job->store_names)
        names_cache_store(agent, reply->result); /* for completion; a file per agent */
    size_t n = json_array_size(reply->result), j;
    json_t *s;
    if (n == 0)
        return;
    out->items = calloc(n, sizeof *out->items);
    if (out->items == NULL) {
        out->out_of_memory = true;
        return;
    }
    json_array_foreach(reply->result, j, s)
    {
        if (!json_is_object(s))
            continue;
        json_object_set_new(s, "agent", json_string(agent));
        listed_session *item = &out->items[out->n++];
        *item = listed(s);
        if (job->render && (item->text = session_json_render(s)) == NULL)
            out->out_of_memory = true;
    }
}

static void free_texts(listed_session *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].text);
        items[i].text = NULL;
    }
}

/* True when some agent's list holds uuid. */
static bool listed_by_an_agent(const listed_session *all, size_t n, const char *uuid)
{
    for (size_t i = 0; i < n; i++) {
        const char *held = json_string_value(json_object_get(all[i].session, "uuid"));
        if (held && uuid && strcmp(held, uuid) == 0)
            return true;
    }
    return false;
}

/* Adds the shell's own orphans (SPEC 6.5) that no agent listed. An agent
 * that did not answer may own one of them; it is listed as an orphan all the
 * same, since no reachable agent claims it, and `ls` says so. all has room
 * for every orphan. */
static int add_orphans(json_t *orphans, bool render, listed_session *all, size_t *n)
{
    size_t agents_n = *n, i;
    json_t *o;
    json_array_foreach(orphans, i, o)
    {
        if (listed_by_an_agent(all, agents_n, json_string_value(json_object_get(o, "uuid"))))
            continue;
        all[*n] = listed(o);
        if (render && (all[*n].text = session_json_render(o)) == NULL)
            return -1;
        (*n)++;
    }
    return 0;
}

/* Every agent's prepared listing and the orphans, in one array of *k;
 * NULL when out of memory (the texts moved into it are then freed). */
static listed_session *merge_listings(listing_job *job, size_t n_agents, json_t *orphans, size_t *k)
{
    size_t total = json_array_size(orphans);
    bool failed = false;
    for (size_t i = 0; i < n_agents; i++) {
        total += job->per_agent[i].n;
        failed |= job->per_agent[i].out_of_memory;
    }
    listed_session *all = failed ? NULL : calloc(total ? total : 1, sizeof *all);
    *k = 0;
    for (size_t i = 0; i < n_agents; i++) {
        agent_listing *a = &job->per_agent[i];
        if (all != NULL)
            memcpy(all + *k, a->items, a->n * sizeof *a->items);
        else
            free_texts(a->items, a->n);
        *k += a->n;
        free(a->items);
    }
    if (all != NULL && add_orphans(orphans, job->render, all, k) < 0) {
        free_texts(all, *k); /* the orphan that failed holds no text */
        free(all);
        all = NULL;
    }
    return all;
}

/* Moves the sorted sessions (and their texts) into out. */
static int fill_list(cluster_list *out, listed_session *all, size_t k, bool render)
{
    if (render) {
        out->texts = calloc(k ? k : 1, sizeof *out->texts);
        if (out->texts == NULL)
            return -1;
        out->n_texts = k;
    }
    for (size_t i = 0; i < k; i++) {
        if (json_array_append(out->sessions, all[i].session) < 0)
            return -1;
        if (render) {
            out->texts[i] = all[i].text;
            all[i].text = NULL;
        }
    }
    return 0;
}

int cluster_list_load_with(agent_registry *r, cluster_list *out, unsigned flags)
{
    bool render = flags & CLUSTER_LIST_RENDER_JSON;
    memset(out, 0, sizeof *out);
    out->sessions = json_array();
    out->replies = calloc(r->n ? r->n : 1, sizeof *out->replies);
    listing_job job = {r, calloc(r->n ? r->n : 1, sizeof *job.per_agent), render,
                       flags & CLUSTER_LIST_ONCE, !(flags & CLUSTER_LIST_NO_NAMES)};
    if (out->sessions == NULL || out->replies == NULL || job.per_agent == NULL) {
        free(job.per_agent);
        return -1;
    }
    out->n_agents = r->n;
    /* Scanned before the agents are asked: a migration that ends in between
     * leaves the session in both answers and the agent's copy wins below;
     * scanning after could miss it in both. */
    json_t *orphans = orphans_scan();
    int rc = -1;
    size_t k = 0;
    listed_session *all = NULL;
    if (orphans == NULL ||
        agent_call_some_then(r, "list", NULL, NULL, out->replies, prepare_listing, &job) < 0)
        goto out;
    ls_timing_mark(LS_ANSWERS);
    all = merge_listings(&job, r->n, orphans, &k);
    if (all == NULL)
        goto out;
    qsort(all, k, sizeof *all, newest_first);
    rc = fill_list(out, all, k, render);
    free_texts(all, k);
out:
    free(all);
    free(job.per_agent);
    json_decref(orphans); /* out->sessions holds its own references now */
    return rc;
}

int cluster_list_load(agent_registry *r, cluster_list *out)
{
    return cluster_list_load_with(r, out, 0);
}

void cluster_list_warn_unreachable(agent_registry *r, cluster_list *l, FILE *out)
{
    for (size_t i = 0; i < r->n; i++)
        if (l->replies[i].result == NULL)
            fprintf(out, "convocate: agent %s (%s:%d) unreachable: %s\n", r->items[i].id,
                    r->items[i].host, r->items[i].port, l->replies[i].error);
}

/* Orphans are listed even while an agent is down (no reachable agent claims
 * them); say that the missing agent may be their owner after all. */
static void warn_orphans_maybe_owned(agent_registry *r, cluster_list *l, FILE *out)
{
    size_t orphans = 0, i;
    json_t *s;
    json_array_foreach(l->sessions, i, s)
    {
        orphans += session_is_orphan(s);
    }
    bool down = false;
    for (size_t a = 0; a < r->n; a++)
        down |= l->replies[a].result == NULL;
    if (orphans && down)
        fprintf(out,
                "convocate: %zu orphan%s (state O) listed while an agent is unreachable: "
                "that agent may own %s\n",
                orphans, orphans == 1 ? "" : "s", orphans == 1 ? "it" : "some of them");
}

void cluster_list_warn(agent_registry *r, cluster_list *l, FILE *out)
{
    cluster_list_warn_unreachable(r, l, out);
    warn_orphans_maybe_owned(r, l, out);
}

void cluster_list_free_decoded(cluster_list *l)
{
    json_decref(l->sessions);
    l->sessions = NULL;
    if (l->replies)
        agent_replies_clear(l->replies, l->n_agents);
}

static void *free_decoded(void *l)
{
    cluster_list_free_decoded(l);
    return NULL;
}

int cluster_list_print_json(cluster_list *l, FILE *out)
{
    pthread_t freer;
    bool started = pthread_create(&freer, NULL, free_decoded, l) == 0;
    int rc = session_json_print(out, l->texts, l->n_texts);
    int saved = errno;
    if (started)
        pthread_join(freer, NULL);
    else
        free_decoded(l);
    errno = saved;
    return rc;
}

void cluster_list_free(cluster_list *l)
{
    cluster_list_free_decoded(l);
    for (size_t i = 0; i < l->n_texts; i++)
        free(l->texts[i]);
    free(l->texts);
    free(l->replies);
    memset(l, 0, sizeof *l);
}

json_t *cluster_find(cluster_list *l, const char *target, char *err, size_t errlen)
{
    json_t *by_name = NULL, *by_prefix = NULL, *s;
    size_t i, names = 0, prefixes = 0;
    char candidates[400] = "";
    size_t tlen = strlen(target);
    json_array_foreach(l->sessions, i, s)
    {
        const char *uuid = json_string_value(json_object_get(s, "uuid"));
        const char *name = json_string_value(json_object_get(s, "name"));
        bool hit = false;
        if (uuid && strcmp(uuid, target) == 0)
            return s;
        if (name && strcmp(name, target) == 0) {
            by_name = s;
            names++;
            hit = true;
        } else if (uuid && tlen >= 4 && strncmp(uuid, target, tlen) == 0) {
            by_prefix = s;
            prefixes++;
            hit = true;
        }
        if (hit && strlen(candidates) + 64 < sizeof candidates) {
            char one[80];
            snprintf(one, sizeof one, "%s%.8s (%s)", candidates[0] ? ", " : "", uuid ? uuid : "?",
                     name ? name : "?");
            strcat(candidates, one);
        }
    }
    if (names == 1)
        return by_name;
    if (names == 0 && prefixes == 1)
        return by_prefix;
    if (names + prefixes == 0)
        snprintf(err, errlen, "no session matches \"%s\" (try 'convocate ls')", target);
    else
        snprintf(err, errlen, "\"%s\" matches several sessions: %s; give more of the UUID", target,
                 candidates);
    return NULL;
}

const char *cluster_dns_owner(cluster_list *l, const char *dns_name, const char *except_uuid)
{
    size_t i;
    json_t *s;
    json_array_foreach(l->sessions, i, s)
    {
        const char *dns = json_string_value(json_object_get(s, "dns_name"));
        const char *uuid = json_string_value(json_object_get(s, "uuid"));
        if (dns && *dns && strcmp(dns, dns_name) == 0 &&
            !(except_uuid && uuid && strcmp(uuid, except_uuid) == 0))
            return json_string_value(json_object_get(s, "name"));
    }
    return NULL;
}
