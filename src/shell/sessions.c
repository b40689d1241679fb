#include "shell/sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/names_cache.h"
#include "shell/orphans.h"

/* A session and its sort key, looked up once: a comparison that looked the
 * key up in both objects every time cost more than the sort itself with
 * ten thousand sessions. */
typedef struct {
    const char *last_accessed;
    json_t *session;
} sort_item;

static int newest_first(const void *a, const void *b)
{
    /* RFC 3339 UTC strings of one format sort as text. */
    return strcmp(((const sort_item *)b)->last_accessed, ((const sort_item *)a)->last_accessed);
}

int sessions_sort_newest_first(json_t **all, size_t n)
{
    sort_item *items = calloc(n ? n : 1, sizeof *items);
    if (items == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *when = json_string_value(json_object_get(all[i], "last_accessed"));
        items[i] = (sort_item){when ? when : "", all[i]};
    }
    qsort(items, n, sizeof *items, newest_first);
    for (size_t i = 0; i < n; i++)
        all[i] = items[i].session;
    free(items);
    return 0;
}

/* True when some agent's list holds uuid. */
static bool listed_by_an_agent(json_t **all, size_t n, const char *uuid)
{
    for (size_t i = 0; i < n; i++) {
        const char *listed = json_string_value(json_object_get(all[i], "uuid"));
        if (listed && uuid && strcmp(listed, uuid) == 0)
            return true;
    }
    return false;
}

/* Adds the shell's own orphans (SPEC 6.5) that no agent listed. An agent
 * that did not answer may own one of them; it is listed as an orphan all the
 * same, since no reachable agent claims it, and `ls` says so. */
static int add_orphans(json_t *orphans, json_t ***all, size_t *n)
{
    size_t extra = json_array_size(orphans);
    if (extra == 0)
        return 0;
    json_t **grown = realloc(*all, (*n + extra) * sizeof **all);
    if (grown == NULL)
        return -1;
    *all = grown;
    size_t agents_n = *n, i;
    json_t *o;
    json_array_foreach(orphans, i, o)
    {
        if (!listed_by_an_agent(grown, agents_n, json_string_value(json_object_get(o, "uuid"))))
            grown[(*n)++] = o;
    }
    return 0;
}

int cluster_list_load(agent_registry *r, cluster_list *out)
{
    memset(out, 0, sizeof *out);
    out->sessions = json_array();
    out->replies = calloc(r->n ? r->n : 1, sizeof *out->replies);
    if (out->sessions == NULL || out->replies == NULL)
        return -1;
    out->n_agents = r->n;
    /* Scanned before the agents are asked: a migration that ends in between
     * leaves the session in both answers and the agent's copy wins below;
     * scanning after could miss it in both. */
    json_t *orphans = orphans_scan();
    if (orphans == NULL || agent_call_all(r, "list", NULL, out->replies) < 0) {
        json_decref(orphans);
        return -1;
    }
    size_t total = 0;
    for (size_t i = 0; i < r->n; i++) {
        total += json_array_size(out->replies[i].result);
        names_cache_store(r->items[i].id, out->replies[i].result); /* for completion */
    }
    json_t **all = calloc(total ? total : 1, sizeof *all);
    if (all == NULL) {
        json_decref(orphans);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t j;
        json_t *s;
        json_array_foreach(out->replies[i].result, j, s)
        {
            if (!json_is_object(s))
                continue;
            json_object_set_new(s, "agent", json_string(r->items[i].id));
            all[k++] = s;
        }
    }
    if (add_orphans(orphans, &all, &k) < 0) {
        json_decref(orphans);
        free(all);
        return -1;
    }
    if (sessions_sort_newest_first(all, k) < 0) {
        json_decref(orphans);
        free(all);
        return -1;
    }
    for (size_t i = 0; i < k; i++)
        json_array_append(out->sessions, all[i]);
    json_decref(orphans); /* out->sessions holds its own references now */
    free(all);
    return 0;
}

void cluster_list_free(cluster_list *l)
{
    json_decref(l->sessions);
    if (l->replies)
        agent_replies_clear(l->replies, l->n_agents);
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
