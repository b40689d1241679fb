/* `convocate ls --json` answered by status-serve, which keeps one pinned SSH
 * connection to every registered agent open between calls. A one-shot CLI
 * otherwise pays a key exchange and an authentication with every agent on
 * every call, on its side and on each agent's: with a hundred agents that
 * handshake CPU was most of the call (docs/decisions.md, "ls through
 * status-serve").
 *
 * The unix socket LS_SOCKET_NAME sits next to the status feed's socket,
 * mode 0660, group claude. One exchange per connection:
 *   request:  {"op":"ls","format":"json"}\n   (at most LS_REQUEST_MAX bytes)
 *   answer:   LS_ACK at once, then, once the list is made,
 *             {"ok":true,"bytes":N,"agents":A,"sessions":S,"stderr":"…"}\n
 *             followed by exactly N bytes: what `ls --json` prints
 *   or:       {"ok":false,"error":"…"}\n  (instead of either line)
 * "stderr" holds the lines `ls` writes to stderr (unreachable agents, orphans
 * such an agent may own). The acknowledgement lets the CLI tell within
 * LS_ACK_TIMEOUT_MS a service that is stuck, or busy with another client,
 * from one that is listing. The list is made as the CLI makes it (every agent
 * asked now, an agent within a redial backoff dialled anyway), so both paths
 * print the same bytes. Clients are served one at a time. */
#ifndef CONVOCATE_SHELL_LS_SERVICE_H
#define CONVOCATE_SHELL_LS_SERVICE_H

#include <stddef.h>
#include <sys/types.h>

#define LS_SOCKET_NAME "ls.sock"
#define LS_REQUEST_MAX 256
#define LS_ACK "{\"ok\":true,\"listing\":true}\n"
#define LS_ACK_TIMEOUT_MS 2000
#define LS_HEADER_MAX (1024 * 1024)
#define LS_BODY_MAX ((size_t)1 << 30)

typedef struct ls_service ls_service;

/* Binds the socket at path (see unix_listen.h for a stale one) and starts
 * the thread that serves it; NULL with err filled on failure. */
ls_service *ls_service_start(const char *path, gid_t gid, char *err, size_t errlen);
/* Stops the thread (after the client being served, if any), closes every
 * held agent connection and removes the socket. NULL is fine. */
void ls_service_stop(ls_service *s);

#endif
