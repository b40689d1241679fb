/* How an agent's lines reach <agent-id>.log on the shell, and why this way.
 *
 * The shell's listener accepts only clients whose certificate chains to the
 * cluster CA (x509/certvalid), and each agent's certificate has CN = its
 * agent id. rsyslog 8.2302 does not expose the TLS peer's certificate name
 * as a message property, so the listener cannot file a line by the CN
 * itself. Instead each agent's forwarder writes its agent id, as a constant
 * of its own template, into the HOSTNAME field of every RFC 5424 line it
 * sends; the listener files lines by HOSTNAME. Nothing a container logs can
 * change that field: the agent's rsyslog builds the line, and the
 * container's text only ever lands in MSG. The listener checks the field
 * against the agent-id form before it becomes part of a file name; a line
 * without a valid id goes to unattributed.log (a name no agent id can take).
 *
 * What this does not stop: an agent host that is itself compromised holds a
 * valid certificate and may write another id into its lines. Agents are
 * trusted only with their own host (SPEC 14); binding the id to the CN
 * needs a receiver that can see the peer's certificate.
 *
 * Every rule of the listener runs in its own ruleset, so lines received
 * from agents never pass through the forwarder's filter: on a single-box
 * host both drop-ins live in one rsyslogd, and this keeps them from looping. */
#include "host/pki/rsyslog_conf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/pki/ca.h"
#include "ssh/registry.h"

#define VALUE_MAX 1024

/* Names the parameter that cannot be written; returns -1. */
static int bad_value(char *err, size_t errlen, const char *what, const char *value)
{
    snprintf(err, errlen, "%s \"%.80s\" cannot go into an rsyslog configuration", what,
             value ? value : "(none)");
    return -1;
}

/* A value written between double quotes: no quote, backslash or control
 * character can end the string early or start a new statement. */
static bool quotable(const char *s)
{
    if (s == NULL || *s == '\0' || strnlen(s, VALUE_MAX + 1) > VALUE_MAX)
        return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '"' || *c == '\\')
            return false;
    return true;
}

static bool is_path(const char *s)
{
    return quotable(s) && s[0] == '/';
}

/* A host name or address literal as omfwd's target and as a permitted
 * peer name. */
static bool is_host(const char *s)
{
    size_t n = s ? strnlen(s, CA_NAME_MAX + 1) : 0;
    return n > 0 && n <= CA_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-") == n &&
           s[0] != '-';
}

static bool is_port(int port)
{
    return port > 0 && port <= 65535;
}

static int check_server(const rsyslog_server_params *p, char *err, size_t errlen)
{
    if (!is_port(p->port))
        return bad_value(err, errlen, "port", "out of range");
    const char *const paths[][2] = {{"CA file", p->ca_file},
                                    {"certificate file", p->cert_file},
                                    {"key file", p->key_file},
                                    {"log directory", p->log_dir}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!is_path(paths[i][1]))
            return bad_value(err, errlen, paths[i][0], paths[i][1]);
    return 0;
}

char *rsyslog_server_conf(const rsyslog_server_params *p, char *err, size_t errlen)
{
    if (check_server(p, err, errlen) < 0)
        return NULL;
    char *text = NULL;
    int n = asprintf(&text,
                     "# Installed by convocate-host init-shell; rewritten on each run.\n"
                     "# Session container logs from every agent arrive here over mutual TLS\n"
                     "# (ECDSA P-256, the cluster CA in the rsyslog-ca directory) and are written\n"
                     "# to one file per agent. Each agent puts its agent id into the HOSTNAME\n"
                     "# field of what it forwards (see 10-convocate-client.conf); a client whose\n"
                     "# certificate does not chain to the CA is refused during the handshake.\n"
                     "\n"
                     "template(name=\"convocate_agent_file\" type=\"string\"\n"
                     "         string=\"%s/%%hostname%%.log\")\n"
                     "template(name=\"convocate_agent_line\" type=\"string\"\n"
                     "         string=\"%%timereported:::date-rfc3339%% "
                     "%%syslogtag%%%%msg:::sp-if-no-1st-sp%%%%msg:::drop-last-lf%%\\n\")\n"
                     "\n"
                     "ruleset(name=\"convocate_agent_logs\") {\n"
                     "    # The id becomes a file name: only the agent-id form is accepted.\n"
                     "    if re_match($hostname, '^[a-z0-9]{8}$') then {\n"
                     "        action(type=\"omfile\" dynaFile=\"convocate_agent_file\"\n"
                     "               template=\"convocate_agent_line\"\n"
                     "               dirCreateMode=\"0750\" fileCreateMode=\"0640\")\n"
                     "    } else {\n"
                     "        action(type=\"omfile\" file=\"%s/unattributed.log\"\n"
                     "               template=\"convocate_agent_line\" fileCreateMode=\"0640\")\n"
                     "    }\n"
                     "    stop\n"
                     "}\n"
                     "\n"
                     "module(load=\"imtcp\")\n"
                     "input(type=\"imtcp\" port=\"%d\" ruleset=\"convocate_agent_logs\"\n"
                     "      streamDriver.name=\"ossl\" streamDriver.mode=\"1\"\n"
                     "      streamDriver.authMode=\"x509/certvalid\"\n"
                     "      streamDriver.CAFile=\"%s\"\n"
                     "      streamDriver.CertFile=\"%s\"\n"
                     "      streamDriver.KeyFile=\"%s\")\n",
                     p->log_dir, p->log_dir, p->port, p->ca_file, p->cert_file, p->key_file);
    if (n < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return text;
}

/* 0 when every parameter may be written into the drop-in. */
static int check_client(const rsyslog_client_params *p, char *err, size_t errlen)
{
    if (p->agent_id == NULL || !agent_id_is_valid(p->agent_id))
        return bad_value(err, errlen, "agent id", p->agent_id);
    if (!is_host(p->target))
        return bad_value(err, errlen, "shell address", p->target);
    if (!is_host(p->server_name))
        return bad_value(err, errlen, "shell certificate name", p->server_name);
    if (!is_port(p->port))
        return bad_value(err, errlen, "port", "out of range");
    const char *const paths[][2] = {{"CA file", p->ca_file},
                                    {"certificate file", p->cert_file},
                                    {"key file", p->key_file},
                                    {"spool directory", p->spool_dir}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!is_path(paths[i][1]))
            return bad_value(err, errlen, paths[i][0], paths[i][1]);
    return 0;
}

char *rsyslog_client_conf(const rsyslog_client_params *p, char *err, size_t errlen)
{
    if (check_client(p, err, errlen) < 0)
        return NULL;
    char *text = NULL;
    int n = asprintf(&text,
                     "# Installed by convocate-host init-agent; rewritten on each run.\n"
                     "# Forwards the session containers' logs (Docker's syslog driver tags them\n"
                     "# with the container name) to the shell over mutual TLS. The shell files\n"
                     "# them by the agent id this template puts into HOSTNAME. The queue keeps\n"
                     "# lines in memory, spills to disk when full or at shutdown, and retries\n"
                     "# forever, so lines logged while the shell is down arrive when it is back.\n"
                     "\n"
                     "template(name=\"convocate_forward\" type=\"string\"\n"
                     "         string=\"<%%PRI%%>1 %%TIMESTAMP:::date-rfc3339%% %s %%APP-NAME%% "
                     "%%PROCID%% - - %%msg%%\\n\")\n"
                     "\n"
                     "if $programname startswith \"" RSYSLOG_SESSION_TAG_PREFIX "\" then {\n"
                     "    action(type=\"omfwd\" target=\"%s\" port=\"%d\" protocol=\"tcp\"\n"
                     "           template=\"convocate_forward\" TCP_Framing=\"octet-counted\"\n"
                     "           StreamDriver=\"ossl\" StreamDriverMode=\"1\"\n"
                     "           StreamDriverAuthMode=\"x509/name\"\n"
                     "           StreamDriverPermittedPeers=\"%s\"\n"
                     "           streamDriver.CAFile=\"%s\"\n"
                     "           streamDriver.CertFile=\"%s\"\n"
                     "           streamDriver.KeyFile=\"%s\"\n"
                     "           queue.type=\"LinkedList\" queue.filename=\"convocate-forward\"\n"
                     "           queue.spoolDirectory=\"%s\"\n"
                     "           queue.maxDiskSpace=\"512m\" queue.saveOnShutdown=\"on\"\n"
                     "           action.resumeRetryCount=\"-1\" action.resumeInterval=\"5\")\n"
                     "    # Forwarded, not also written to the host's own syslog files.\n"
                     "    stop\n"
                     "}\n",
                     p->agent_id, p->target, p->port, p->server_name, p->ca_file, p->cert_file,
                     p->key_file, p->spool_dir);
    if (n < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return text;
}
