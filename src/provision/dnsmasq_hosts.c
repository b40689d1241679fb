#include "provision/dnsmasq_hosts.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/ids.h"

#define NAME_MAX_LEN 63
#define MAX_RECORDS 4096

typedef struct {
    char session[UUID_STR_LEN];
    char name[NAME_MAX_LEN + 1];
} dns_record;

struct dns_hosts {
    char path[PATH_BUF], pidfile[PATH_BUF], domain[254];
    pthread_mutex_t mu;  /* events of several agents arrive on several threads */
    dns_record *records; /* the sessions seen with a name since start */
    size_t n;
};

bool dns_name_is_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN || name[0] == '-' || name[len - 1] == '-')
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
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

/* True when the line's second or third field is name. */
static bool line_names(const char *line, size_t len, const char *domain, const char *name)
{
    char fqdn[NAME_MAX_LEN + 256];
    snprintf(fqdn, sizeof fqdn, "%s.%s", name, domain);
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
        if (field > 0 && ((flen == strlen(name) && memcmp(line + start, name, flen) == 0) ||
                          (flen == strlen(fqdn) && memcmp(line + start, fqdn, flen) == 0)))
            return true;
        field++;
    }
    return false;
}

char *dns_hosts_edit(const char *text, const char *domain, const char *remove_name,
                     const char *add_name, const char *ip)
{
    size_t cap = strlen(text) + 2 * NAME_MAX_LEN + strlen(domain) + 64;
    char *out = malloc(cap), *w = out;
    if (out == NULL)
        return NULL;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        bool drop = (remove_name && line_names(p, len, domain, remove_name)) ||
                    (add_name && line_names(p, len, domain, add_name));
        if (!drop && len > 0) {
            memcpy(w, p, len);
            w += len;
            *w++ = '\n';
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    if (add_name && ip)
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

static int rewrite(dns_hosts *h, const char *old_name, const char *new_name, const char *ip,
                   char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    if (read_file_bounded(h->path, DNS_HOSTS_FILE_MAX, &text, &len) < 0) {
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

static dns_record *find_record(dns_hosts *h, const char *session_id)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->records[i].session, session_id) == 0)
            return &h->records[i];
    return NULL;
}

static dns_record *add_record(dns_hosts *h, const char *session_id)
{
    if (h->n == MAX_RECORDS)
        return NULL;
    dns_record *more = realloc(h->records, (h->n + 1) * sizeof *more);
    if (more == NULL)
        return NULL;
    h->records = more;
    dns_record *r = &h->records[h->n++];
    snprintf(r->session, sizeof r->session, "%s", session_id);
    r->name[0] = '\0';
    return r;
}

int dns_hosts_set(dns_hosts *h, const char *session_id, const char *name, const char *ip, char *err,
                  size_t errlen)
{
    if (name && *name && !dns_name_is_valid(name)) {
        snprintf(err, errlen, "invalid dns name \"%.64s\"", name);
        return -1;
    }
    pthread_mutex_lock(&h->mu);
    dns_record *r = find_record(h, session_id);
    if (r == NULL)
        r = add_record(h, session_id);
    int rc = -1;
    if (r == NULL) {
        snprintf(err, errlen, "too many sessions with DNS names");
    } else {
        char old[NAME_MAX_LEN + 1];
        snprintf(old, sizeof old, "%s", r->name);
        bool have_new = name && *name;
        rc = rewrite(h, old[0] ? old : NULL, have_new ? name : NULL, have_new ? ip : NULL, err,
                     errlen);
        if (rc == 0)
            snprintf(r->name, sizeof r->name, "%s", have_new ? name : "");
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int dns_hosts_forget(dns_hosts *h, const char *session_id, char *err, size_t errlen)
{
    pthread_mutex_lock(&h->mu);
    dns_record *r = find_record(h, session_id);
    int rc = 0;
    if (r != NULL && r->name[0]) {
        rc = rewrite(h, r->name, NULL, NULL, err, errlen);
        if (rc == 0)
            r->name[0] = '\0';
    } else if (r == NULL) {
        log_info("session %s: deleted, but its DNS name is not known to this run", session_id);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}
