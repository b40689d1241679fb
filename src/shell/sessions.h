/* Cluster-wide session views for the CLI and TUI: every agent's list merged,
 * each session stamped with its agent, and operator targets resolved. */
#ifndef CONVOCATE_SHELL_SESSIONS_H
#define CONVOCATE_SHELL_SESSIONS_H

#include <jansson.h>
#include <stdio.h>

#include "ssh/registry.h"

typedef struct {
    json_t *sessions;     /* array of session objects, each with "agent" set */
    agent_reply *replies; /* per agent, in registry order; errors for unreachable ones */
    size_t n_agents;
    char **texts; /* CLUSTER_LIST_RENDER_JSON: sessions[i] as ls --json prints it */
    size_t n_texts;
} cluster_list;

/* Lists every agent in parallel; sessions sorted by last_accessed, newest
 * first. -1 when out of memory; free out with cluster_list_free either way. */
int cluster_list_load(agent_registry *r, cluster_list *out);
/* cluster_list_load with flags: */
enum {
    CLUSTER_LIST_RENDER_JSON = 1, /* each session also rendered for ls --json
                                     (session_json.h) on its agent's call thread */
    CLUSTER_LIST_ONCE = 2,        /* a one-shot command: hang up on each agent as soon
                                     as its list is in (agent_hang_up) */
    CLUSTER_LIST_NO_NAMES = 4,    /* leave the operator's names cache alone: the ls
                                     service lists for others, as root */
};
int cluster_list_load_with(agent_registry *r, cluster_list *out, unsigned flags);
/* What `ls` tells the operator besides the list, one line each: agents
 * that did not answer, and orphans that such an agent may own. Call before
 * anything frees the decoded sessions. */
void cluster_list_warn(agent_registry *r, cluster_list *l, FILE *out);
/* Only the first kind: the agents that did not answer. */
void cluster_list_warn_unreachable(agent_registry *r, cluster_list *l, FILE *out);
void cluster_list_free(cluster_list *l);
/* Frees the decoded sessions (the list and every agent's answer) and keeps
 * the rendered texts; cluster_list_free is still due. */
void cluster_list_free_decoded(cluster_list *l);
/* Prints a CLUSTER_LIST_RENDER_JSON list's texts (session_json_print) while
 * another thread frees the decoded sessions, which the texts no longer
 * need: ten thousand sessions' worth of frees overlap the writing instead
 * of following it. -1 with errno when writing failed. */
int cluster_list_print_json(cluster_list *l, FILE *out);

/* Sorts sessions by last_accessed, newest first (no "last_accessed" sorts
 * last); -1 when out of memory, the order then untouched. */
int sessions_sort_newest_first(json_t **all, size_t n);

/* Resolves a session name, full UUID or UUID prefix to exactly one session.
 * Returns a borrowed session object, or NULL with err naming the candidates. */
json_t *cluster_find(cluster_list *l, const char *target, char *err, size_t errlen);

/* True when some session other than except_uuid uses dns_name. */
const char *cluster_dns_owner(cluster_list *l, const char *dns_name, const char *except_uuid);

#endif
