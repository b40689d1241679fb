#include "shell/status_identity.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "common/fileio.h"
#include "common/hostport.h"
#include "common/log.h"
#include "common/paths.h"
#include "ssh/pubkey.h"

#define AGENT_KEYS_DIR "/etc/convocate/agent-keys"
#define AGENT_KEY_FILE "agent_to_shell_ed25519_key.pub"

/* True when agent-keys/<id>/ holds a readable key with this fingerprint. A
 * broken key file only costs its own agent the connection, so it is logged
 * and treated as no match. */
static bool agent_has_key(const char *dir, const char *id, const char *fingerprint)
{
    char path[PATH_BUF], fp[FINGERPRINT_LEN], err[PATH_BUF + 128];
    int n = snprintf(path, sizeof path, "%s/%s/%s", dir, id, AGENT_KEY_FILE);
    if (n < 0 || (size_t)n >= sizeof path)
        return false;
    if (pubkey_file_fingerprint(path, fp, err, sizeof err) < 0) {
        if (errno != ENOENT)
            log_warn("agent %s: its status key is unusable: %s", id, err);
        return false;
    }
    return strcmp(fp, fingerprint) == 0;
}

enum status_identity status_identity_of_key(const char *fingerprint, char id[AGENT_ID_LEN + 1],
                                            char *why, size_t whylen)
{
    char dir[PATH_BUF];
    if (root_path(dir, sizeof dir, AGENT_KEYS_DIR) < 0) {
        snprintf(why, whylen, "the agent-keys path is too long");
        return STATUS_IDENTITY_NONE;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(why, whylen, "%s: %s", dir, strerror(errno));
        return STATUS_IDENTITY_NONE;
    }
    int found = 0, looked = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && looked < STATUS_IDENTITY_MAX_AGENTS) {
        if (!agent_id_is_valid(e->d_name))
            continue;
        looked++;
        if (!agent_has_key(dir, e->d_name, fingerprint))
            continue;
        if (found++ == 0)
            memcpy(id, e->d_name, AGENT_ID_LEN + 1);
    }
    closedir(d);
    if (found == 1)
        return STATUS_IDENTITY_FOUND;
    if (found > 1) {
        snprintf(why, whylen, "%d registered agents share this key", found);
        return STATUS_IDENTITY_AMBIGUOUS;
    }
    snprintf(why, whylen, "no agent under %s has this key", dir);
    return STATUS_IDENTITY_NONE;
}

int status_identity_address(const char *id, char *ip, size_t iplen)
{
    char path[PATH_BUF], line[300], host[256];
    int port;
    if (root_path(path, sizeof path, AGENT_KEYS_DIR "/%s/agent-host", id) < 0 ||
        read_line_file(path, line, sizeof line) < 0 ||
        parse_host_port(line, 222, host, sizeof host, &port) < 0)
        return -1;
    unsigned char bin[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1) {
        int n = snprintf(ip, iplen, "%s", host);
        return n > 0 && (size_t)n < iplen ? 0 : -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    int rc = getnameinfo(res->ai_addr, res->ai_addrlen, ip, (socklen_t)iplen, NULL, 0,
                         NI_NUMERICHOST) == 0
                 ? 0
                 : -1;
    freeaddrinfo(res);
    return rc;
}
