#include "provision/dnsmasq_hosts.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/paths.h"

#define IP_MAX 45 /* the longest numeric IPv6 address */

/* One session's name, as this run of status-serve published it. */
typedef struct {
    char session[UUID_STR_LEN];
    char agent[AGENT_ID_LEN + 1];
    char name[DNS_NAME_MAX_LEN + 1];
    char ip[IP_MAX + 1];
} dns_record;

struct dns_hosts {
    char path[PATH_BUF], pidfile[PATH_BUF], domain[254];
    pthread_mutex_t mu;  /* events of several agents arrive on several threads */
    dns_record *records; /* only sessions that have a name now */
    size_t n, cap;
};

bool dns_name_is_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > DNS_NAME_MAX_LEN || name[0] == '-' || name[len - 1] == '-')
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

static bool ip_is_numeric(const char *ip)
{
    size_t len = strlen(ip);
    return len > 0 && len <= IP_MAX && strspn(ip, "0123456789abcdefABCDEF.:") == len;
}

dns_hosts *dns_hosts_new(const char *hosts_path, const char *domain, const char *pidfile)
{
    dns_hosts *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    snprintf(h->path, sizeof h->path, "%s", hosts_path);
    snprintf(h->pidfile, sizeof h->pidfile, "%s", pidfile ? pidfile : "");
    snprintf(h->domain, sizeof h->domain, "%s", domain);
    pthread_mutex_init(&h->mu, NULL);
    return h;
}

void dns_hosts_free(dns_hosts *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h->records);
    free(h);
}

/* ---- the text of the file ----------------------------------------------- */

/* A name as it may appear in a line: bare or followed by ".<domain>". */
typedef struct {
    const char *name, *domain;
    size_t nlen, dlen;
} name_match;

static bool field_is(const name_match *m, const char *f, size_t flen)
{
    if (m->name == NULL || flen < m->nlen || memcmp(f, m->name, m->nlen) != 0)
        return false;
    if (flen == m->nlen)
        return true;
    return flen == m->nlen + 1 + m->dlen && f[m->nlen] == '.' &&
           memcmp(f + m->nlen + 1, m->domain, m->dlen) == 0;
}

/* True when a field after the first (the address) is one of the names. */
static bool line_names(const char *line, size_t len, const name_match *a, const name_match *b)
{
    size_t i = 0, field = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
            i++;
        size_t flen = i - start;
        if (flen == 0)
            break;
        if (field == 0 && line[start] == '#')
            return false;
        if (field > 0 && (field_is(a, line + start, flen) || field_is(b, line + start, flen)))
            return true;
        field++;
    }
    return false;
}

static name_match match_of(const char *name, const char *domain)
{
    name_match m = {.name = name, .domain = domain};
    m.nlen = name ? strlen(name) : 0;
    m.dlen = strlen(domain);
    return m;
}

char *dns_hosts_edit(const char *text, const char *domain, const char *remove_name,
                     const char *add_name, const char *ip)
{
    name_match rm = match_of(remove_name, domain), add = match_of(add_name, domain);
    bool adding = add_name != NULL && ip != NULL;
    /* Every kept line may gain a newline; the new line is counted apart. */
    size_t cap = strlen(text) + 2;
    if (adding)
        cap += strlen(ip) + 2 * add.nlen + add.dlen + 4;
    char *out = malloc(cap), *w = out;
    if (out == NULL)
        return NULL;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (len > 0 && !line_names(p, len, &rm, &add)) {
            memcpy(w, p, len);
            w += len;
            *w++ = '\n';
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    if (adding)
        w += sprintf(w, "%s %s.%s %s\n", ip, add_name, domain, add_name);
    *w = '\0';
    return out;
}

/* SIGHUP to the dnsmasq named by the pidfile, only when that pid really is a
 * dnsmasq: a stale pidfile must not signal an unrelated process. */
void dns_hosts_reload(const char *pidfile)
{
    char line[32], comm_path[64], comm[64];
    if (pidfile[0] == '\0' || read_line_file(pidfile, line, sizeof line) < 0)
        return;
    char *end;
    long pid = strtol(line, &end, 10);
    if (*end != '\0' || pid <= 1 || pid > 4194304)
        return;
    snprintf(comm_path, sizeof comm_path, "/proc/%ld/comm", pid);
    if (read_line_file(comm_path, comm, sizeof comm) < 0 || strcmp(comm, "dnsmasq") != 0)
        return;
    if (kill((pid_t)pid, SIGHUP) < 0)
        log_warn("dnsmasq pid %ld: SIGHUP failed: %s", pid, strerror(errno));
    else
        log_debug("dnsmasq pid %ld told to reload its hosts", pid);
}

/* Drops old_name's line and writes new_name's (when not NULL), atomically. */
static int rewrite(dns_hosts *h, const char *old_name, const char *new_name, const char *ip,
                   char *err, size_t errlen)
{
    char *text = NULL;
    if (read_file_bounded(h->path, DNS_HOSTS_FILE_MAX, &text, NULL) < 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "read %s: %s", h->path, strerror(errno));
            return -1;
        }
        text = strdup("");
        if (text == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    char *next = dns_hosts_edit(text, h->domain, old_name, new_name, ip);
    int rc = 0;
    if (next == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    } else if (strcmp(next, text) != 0) {
        if (atomic_write_file(h->path, next, strlen(next), 0644, KEEP_OWNER, 0) < 0) {
            snprintf(err, errlen, "write %s: %s", h->path, strerror(errno));
            rc = -1;
        } else {
            dns_hosts_reload(h->pidfile);
        }
    }
    free(next);
    free(text);
    return rc;
}

/* ---- the table ---------------------------------------------------------- */

static dns_record *by_session(dns_hosts *h, const char *session_id)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->records[i].session, session_id) == 0)
            return &h->records[i];
    return NULL;
}

static dns_record *by_name(dns_hosts *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->records[i].name, name) == 0)
            return &h->records[i];
    return NULL;
}

static size_t count_of(dns_hosts *h, const char *agent_id)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += agent_id == NULL || strcmp(h->records[i].agent, agent_id) == 0;
    return n;
}

static void drop_record(dns_hosts *h, dns_record *r)
{
    *r = h->records[--h->n];
}

static dns_record *new_record(dns_hosts *h)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        dns_record *more = realloc(h->records, cap * sizeof *more);
        if (more == NULL)
            return NULL;
        h->records = more;
        h->cap = cap;
    }
    return &h->records[h->n++];
}

static void fill_record(dns_record *r, const char *agent_id, const char *session_id,
                        const char *name, const char *ip)
{
    snprintf(r->session, sizeof r->session, "%s", session_id);
    snprintf(r->agent, sizeof r->agent, "%s", agent_id);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->ip, sizeof r->ip, "%s", ip);
}

/* Room for one more record, made before the file changes so that the file
 * and the table cannot disagree for want of memory. */
static int reserve(dns_hosts *h)
{
    if (new_record(h) == NULL)
        return -1;
    h->n--;
    return 0;
}

/* Whether agent_id may give session the name. r is the session's record,
 * holder the record that has the name now (either may be NULL). */
static enum dns_result may_set(dns_hosts *h, const char *agent_id, const dns_record *r,
                               const dns_record *holder, const char *name, char *err, size_t errlen)
{
    if (r != NULL && strcmp(r->agent, agent_id) != 0) {
        snprintf(err, errlen, "session %s belongs to agent %s", r->session, r->agent);
        return DNS_REFUSED;
    }
    if (holder != NULL && holder != r && strcmp(holder->agent, agent_id) != 0) {
        snprintf(err, errlen, "name %s is held by session %s of agent %s", name, holder->session,
                 holder->agent);
        return DNS_REFUSED;
    }
    if (r != NULL || holder != NULL)
        return DNS_OK; /* a rename or a move within the agent: no new name */
    if (count_of(h, agent_id) >= DNS_NAMES_PER_AGENT) {
        snprintf(err, errlen, "agent %s already has %d DNS names", agent_id, DNS_NAMES_PER_AGENT);
        return DNS_REFUSED;
    }
    if (h->n >= DNS_NAMES_MAX) {
        snprintf(err, errlen, "%d DNS names are published in all", DNS_NAMES_MAX);
        return DNS_REFUSED;
    }
    return DNS_OK;
}

/* Lock held; the checks of may_set() passed. */
static enum dns_result apply_set(dns_hosts *h, const char *agent_id, const char *session_id,
                                 const char *name, const char *ip, char *err, size_t errlen)
{
    /* Reserved first: growing the table moves the records. */
    if (reserve(h) < 0) {
        snprintf(err, errlen, "out of memory");
        return DNS_ERROR;
    }
    dns_record *r = by_session(h, session_id), *holder = by_name(h, name);
    if (rewrite(h, r ? r->name : NULL, name, ip, err, errlen) < 0)
        return DNS_ERROR;
    if (holder != NULL && holder != r) {
        /* The agent gave the name to another of its sessions: the old
         * holder's line is gone with the rewrite, so is its record. */
        log_info("DNS name %s moves from session %s to session %s of agent %s", name,
                 holder->session, session_id, agent_id);
        drop_record(h, holder);
        r = by_session(h, session_id); /* the drop may have moved it */
    }
    if (r == NULL)
        r = new_record(h); /* cannot fail: reserved */
    fill_record(r, agent_id, session_id, name, ip);
    return DNS_OK;
}

static enum dns_result forget_locked(dns_hosts *h, const char *agent_id, const char *session_id,
                                     char *err, size_t errlen)
{
    dns_record *r = by_session(h, session_id);
    if (r == NULL)
        return DNS_OK;
    if (strcmp(r->agent, agent_id) != 0) {
        snprintf(err, errlen, "session %s belongs to agent %s", session_id, r->agent);
        return DNS_REFUSED;
    }
    if (rewrite(h, r->name, NULL, NULL, err, errlen) < 0)
        return DNS_ERROR;
    drop_record(h, r);
    return DNS_OK;
}

enum dns_result dns_hosts_set(dns_hosts *h, const char *agent_id, const char *session_id,
                              const char *name, const char *ip, char *err, size_t errlen)
{
    if (name == NULL || *name == '\0')
        return dns_hosts_forget(h, agent_id, session_id, err, errlen);
    if (!dns_name_is_valid(name)) {
        snprintf(err, errlen, "invalid DNS name \"%.64s\"", name);
        return DNS_REFUSED;
    }
    if (ip == NULL || !ip_is_numeric(ip)) {
        snprintf(err, errlen, "no numeric address for DNS name %s", name);
        return DNS_REFUSED;
    }
    pthread_mutex_lock(&h->mu);
    enum dns_result rc =
        may_set(h, agent_id, by_session(h, session_id), by_name(h, name), name, err, errlen);
    if (rc == DNS_OK)
        rc = apply_set(h, agent_id, session_id, name, ip, err, errlen);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

enum dns_result dns_hosts_forget(dns_hosts *h, const char *agent_id, const char *session_id,
                                 char *err, size_t errlen)
{
    pthread_mutex_lock(&h->mu);
    enum dns_result rc = forget_locked(h, agent_id, session_id, err, errlen);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

size_t dns_hosts_count(dns_hosts *h, const char *agent_id)
{
    pthread_mutex_lock(&h->mu);
    size_t n = count_of(h, agent_id);
    pthread_mutex_unlock(&h->mu);
    return n;
}
