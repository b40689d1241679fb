/* The shell's hosts file of session DNS names (SPEC 4, 8.4), read by
 * dnsmasq through addn-hosts. Each session with a DNS name owns one line
 * "<agent-ip> <name>.<domain> <name>"; lines written by others (e.g. a VM
 * added by create-vm) are kept. Every rewrite is atomic and followed by a
 * SIGHUP to dnsmasq when its pidfile names a running dnsmasq.
 *
 * The table behind the file remembers which agent each name belongs to, so
 * one agent can neither touch another agent's sessions nor take a name
 * another agent's session holds, and each agent has a bounded number of
 * names: an agent is trusted with its own host only (SPEC 14). */
#ifndef CONVOCATE_PROVISION_DNSMASQ_HOSTS_H
#define CONVOCATE_PROVISION_DNSMASQ_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

#define DNS_HOSTS_FILE_MAX (16 * 1024 * 1024)
#define DNS_NAMES_PER_AGENT 4096
#define DNS_NAMES_MAX 32768 /* across all agents: bounds memory and the file */
#define DNS_NAME_MAX_LEN 63

typedef struct dns_hosts dns_hosts;

enum dns_result {
    DNS_ERROR = -1,  /* the file could not be read or written; err says why */
    DNS_OK = 0,      /* the file says what was asked (changed or already so) */
    DNS_REFUSED = 1, /* not allowed (name taken, cap, other agent's session, bad
                        name or address); err says why, the file is unchanged */
};

/* Paths are real paths (already under --root). */
dns_hosts *dns_hosts_new(const char *hosts_path, const char *domain, const char *pidfile);
void dns_hosts_free(dns_hosts *h);

/* One RFC 1123 label, lowercase (SPEC 3). */
bool dns_name_is_valid(const char *name);

/* Agent agent_id says its session now has name (NULL or "": none) at ip (a
 * numeric address). */
enum dns_result dns_hosts_set(dns_hosts *h, const char *agent_id, const char *session_id,
                              const char *name, const char *ip, char *err, size_t errlen);
/* Agent agent_id's session is gone: its line goes. Unknown sessions are
 * DNS_OK (a name given before this run is not known to it). */
enum dns_result dns_hosts_forget(dns_hosts *h, const char *agent_id, const char *session_id,
                                 char *err, size_t errlen);
/* How many names agent_id (NULL: every agent) holds now. */
size_t dns_hosts_count(dns_hosts *h, const char *agent_id);

/* SIGHUP to the dnsmasq whose pid the file holds, only when that pid
 * really is a dnsmasq (a stale pidfile must not signal another process);
 * nothing when the file is missing. Also for create-vm's line. */
void dns_hosts_reload(const char *pidfile);

/* Pure: text without the lines naming remove_name or add_name (as
 * "<name>.<domain>" or "<name>" in any field after the first), plus
 * "<ip> <add_name>.<domain> <add_name>" when add_name and ip are not NULL.
 * Comment lines (first field starting with '#') are kept; blank lines go.
 * malloc'd; NULL when out of memory. For the rewrite, create-vm and tests. */
char *dns_hosts_edit(const char *text, const char *domain, const char *remove_name,
                     const char *add_name, const char *ip);

#endif
