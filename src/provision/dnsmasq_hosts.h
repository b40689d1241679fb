/* The shell's hosts file of session DNS names (SPEC 4, 8.4), read by
 * dnsmasq through addn-hosts. Each session with a DNS name owns one line
 * "<agent-ip> <name>.<domain> <name>"; lines written by others (e.g. a VM
 * added by create-vm) are kept. Every rewrite is atomic and followed by a
 * SIGHUP to dnsmasq when its pidfile names a running dnsmasq. */
#ifndef CONVOCATE_PROVISION_DNSMASQ_HOSTS_H
#define CONVOCATE_PROVISION_DNSMASQ_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

#define DNS_HOSTS_FILE_MAX (4 * 1024 * 1024)

typedef struct dns_hosts dns_hosts;

/* Paths are real paths (already under --root). */
dns_hosts *dns_hosts_new(const char *hosts_path, const char *domain, const char *pidfile);
void dns_hosts_free(dns_hosts *h);

/* One RFC 1123 label, lowercase (SPEC 3). */
bool dns_name_is_valid(const char *name);

/* The session now has name (NULL or "": none) at ip. Rewrites the file
 * when that changes it; 0, or -1 with err. */
int dns_hosts_set(dns_hosts *h, const char *session_id, const char *name, const char *ip, char *err,
                  size_t errlen);
/* The session is gone: its line goes. */
int dns_hosts_forget(dns_hosts *h, const char *session_id, char *err, size_t errlen);

/* SIGHUP to the dnsmasq whose pid the file holds, only when that pid
 * really is a dnsmasq (a stale pidfile must not signal another process);
 * nothing when the file is missing. Also for create-vm's line. */
void dns_hosts_reload(const char *pidfile);

/* Pure: text without the lines naming name (as "<name>.<domain>" or
 * "<name>"), plus "<ip> <name>.<domain> <name>" when ip is not NULL.
 * malloc'd. For unit tests and the rewrite. */
char *dns_hosts_edit(const char *text, const char *domain, const char *remove_name,
                     const char *add_name, const char *ip);

#endif
