/* status-serve wires three parts together: the narrow SSH listener (one
 * thread per agent connection) hands each complete line to handle_line();
 * the line goes out unchanged to the feed's subscribers, updates the agent
 * table (live/silent) and, for container events with a DNS name, the hosts
 * file. The agents never get anything back. */
#include "shell/status_serve.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/hostport.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "common/ids.h"
#include "provision/dnsmasq_hosts.h"
#include "ssh/registry.h"
#include "shell/status_agents.h"
#include "shell/status_feed.h"
#include "ssh/listener.h"

#define EXIT_USAGE 2
#define TYPE_MAX 64
#define DEFAULT_DOMAIN "convocate.internal"

typedef struct {
    status_feed *feed;
    status_agents *agents;
    dns_hosts *dns;
} status_app;

/* One convocate-status channel: the bytes of the line being read. */
typedef struct {
    status_app *app;
    lchan *ch;
    char *buf; /* STATUS_LINE_MAX bytes */
    size_t len;
    bool discarding; /* inside a line that is too long: skip to its end */
    unsigned long skipped;
} status_chan;

/* ---- agents' addresses -------------------------------------------------- */

/* The address the shell dials the agent at is where its sessions' names
 * point. A literal is used as it is; a name is resolved once per event. */
static int agent_ip(const char *id, char *ip, size_t iplen)
{
    char path[PATH_BUF], line[300], host[256];
    int port;
    if (root_path(path, sizeof path, "/etc/convocate/agent-keys/%s/agent-host", id) < 0 ||
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

/* ---- one event ---------------------------------------------------------- */

static void update_dns(status_app *app, const char *agent_id, const char *type, json_t *ev)
{
    const char *session = json_string_value(json_object_get(ev, "session_id"));
    if (session == NULL || !uuid_v4_is_valid(session))
        return;
    char err[512];
    if (strcmp(type, "container.deleted") == 0) {
        if (dns_hosts_forget(app->dns, session, err, sizeof err) < 0)
            log_error("dns hosts: %s", err);
        return;
    }
    json_t *dns = json_object_get(json_object_get(ev, "data"), "dns_name");
    const char *name = json_is_string(dns) ? json_string_value(dns) : "";
    char ip[INET6_ADDRSTRLEN + 1] = "";
    if (*name && agent_ip(agent_id, ip, sizeof ip) < 0) {
        log_warn("agent %s: no usable address in its agent-host file; DNS name %s not published",
                 agent_id, name);
        return;
    }
    if (dns_hosts_set(app->dns, session, name, ip, err, sizeof err) < 0)
        log_error("dns hosts: session %s: %s", session, err);
}

static int heartbeat_of(const char *type, json_t *ev)
{
    if (strcmp(type, "agent.started") != 0 && strcmp(type, "agent.settings") != 0)
        return 0;
    json_t *hb = json_object_get(json_object_get(ev, "data"), "heartbeat_s");
    json_int_t v = json_is_integer(hb) ? json_integer_value(hb) : 0;
    return v >= 5 && v <= 300 ? (int)v : 0;
}

/* Validates one line; returns the event (new reference) or NULL, logged. */
static json_t *parse_event(lchan *ch, const char *line, size_t len, const char **type,
                           const char **agent_id)
{
    json_error_t jerr;
    json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (ev == NULL || !json_is_object(ev)) {
        log_warn("%s: line %d bytes does not parse as a JSON object (%s); skipped", lchan_name(ch),
                 (int)len, ev ? "not an object" : jerr.text);
        json_decref(ev);
        return NULL;
    }
    *type = json_string_value(json_object_get(ev, "type"));
    *agent_id = json_string_value(json_object_get(ev, "agent_id"));
    if (*type == NULL || **type == '\0' || strlen(*type) > TYPE_MAX || *agent_id == NULL ||
        !agent_id_is_valid(*agent_id) || !json_is_string(json_object_get(ev, "timestamp"))) {
        log_warn("%s: event without a valid type, agent_id or timestamp; skipped", lchan_name(ch));
        json_decref(ev);
        return NULL;
    }
    return ev;
}

static void handle_line(status_chan *sc, char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0)
        return;
    const char *type, *agent_id;
    json_t *ev = parse_event(sc->ch, line, len, &type, &agent_id);
    if (ev == NULL)
        return;
    /* Forwarded as the same bytes; the buffer has room for the newline. */
    line[len] = '\n';
    status_feed_publish(sc->app->feed, line, len + 1);
    char *turned = status_agents_seen(sc->app->agents, agent_id, heartbeat_of(type, ev),
                                      strcmp(type, "agent.shutdown") == 0, monotonic_ms());
    if (turned != NULL) {
        status_feed_publish(sc->app->feed, turned, strlen(turned));
        free(turned);
    }
    if (strcmp(type, "container.created") == 0 || strcmp(type, "container.edited") == 0 ||
        strcmp(type, "container.deleted") == 0)
        update_dns(sc->app, agent_id, type, ev);
    json_decref(ev);
}

/* ---- the convocate-status subsystem ------------------------------------- */

static void *chan_open(lchan *ch, void *app)
{
    status_chan *sc = calloc(1, sizeof *sc);
    if (sc == NULL || (sc->buf = malloc(STATUS_LINE_MAX + 1)) == NULL) {
        free(sc);
        return NULL;
    }
    sc->app = app;
    sc->ch = ch;
    return sc;
}

static size_t chan_room(void *state)
{
    (void)state;
    return STATUS_LINE_MAX; /* every byte is consumed at once: lines or skips */
}

/* Takes bytes up to and including a newline, or all of them. */
static size_t take_bytes(status_chan *sc, const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    size_t chunk = nl ? (size_t)(nl - p) : n;
    if (sc->discarding) {
        sc->skipped += chunk;
    } else if (sc->len + chunk > STATUS_LINE_MAX) {
        sc->discarding = true;
        sc->skipped = sc->len + chunk;
        sc->len = 0;
    } else {
        memcpy(sc->buf + sc->len, p, chunk);
        sc->len += chunk;
    }
    if (nl == NULL)
        return n;
    if (sc->discarding) {
        log_warn("%s: a line of %lu bytes is over the %d byte limit; skipped", lchan_name(sc->ch),
                 sc->skipped, STATUS_LINE_MAX);
        sc->discarding = false;
    } else {
        handle_line(sc, sc->buf, sc->len);
    }
    sc->len = 0;
    return chunk + 1;
}

static void chan_input(lchan *ch, const void *buf, size_t len, void *state)
{
    const char *p = buf;
    while (len > 0) {
        size_t used = take_bytes(state, p, len);
        p += used;
        len -= used;
    }
}

static void chan_eof(lchan *ch, void *state)
{
    status_chan *sc = state;
    if (sc->len > 0 && !sc->discarding)
        handle_line(sc, sc->buf, sc->len); /* a last line without its newline */
    sc->len = 0;
    lchan_close(ch);
}

static void chan_release(void *state)
{
    status_chan *sc = state;
    free(sc->buf);
    free(sc);
}

/* ---- feed hooks --------------------------------------------------------- */

typedef struct {
    status_feed *feed;
    void *sub;
} greeting;

static void greet_one(const char *line, size_t len, void *ctx)
{
    greeting *g = ctx;
    status_feed_greet_line(g->feed, g->sub, line, len);
}

static void feed_greet(status_feed *f, void *sub, void *ctx)
{
    status_app *app = ctx;
    greeting g = {.feed = f, .sub = sub};
    status_agents_each(app->agents, greet_one, &g);
}

static void feed_tick(status_feed *f, void *ctx)
{
    status_app *app = ctx;
    char *lines = status_agents_check(app->agents, monotonic_ms());
    if (lines != NULL) {
        status_feed_publish(f, lines, strlen(lines));
        free(lines);
    }
}

/* ---- start-up ----------------------------------------------------------- */

typedef struct {
    char listen_host[256];
    int listen_port;
    char host_key[PATH_BUF], auth_keys[PATH_BUF], feed[PATH_BUF], pidfile[PATH_BUF];
    bool feed_is_default; /* only our own run directory is re-owned */
} serve_options;

static listener *volatile running_listener;

static void on_stop_signal(int sig)
{
    (void)sig;
    listener *l = running_listener;
    if (l != NULL)
        listener_stop(l);
}

static void install_signals(void)
{
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void read_domain(char *out, size_t size)
{
    char path[PATH_BUF], line[254];
    snprintf(out, size, "%s", DEFAULT_DOMAIN);
    if (root_path(path, sizeof path, "/etc/convocate/domain") < 0 ||
        read_line_file(path, line, sizeof line) < 0)
        return;
    size_t n = strlen(line);
    if (n > 0 && strspn(line, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n && line[0] != '.' &&
        line[0] != '-')
        snprintf(out, size, "%s", line);
    else
        log_warn("%s does not hold a domain; using %s", path, DEFAULT_DOMAIN);
}

/* Agents registered with init-agent are known before they call. */
static void register_known_agents(status_agents *agents)
{
    char path[PATH_BUF];
    if (root_path(path, sizeof path, "/etc/convocate/agent-keys") < 0)
        return;
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (agent_id_is_valid(e->d_name))
            status_agents_register(agents, e->d_name, monotonic_ms());
    closedir(d);
}

static gid_t claude_gid(void)
{
    struct group *g = getgrnam("claude");
    return g != NULL ? g->gr_gid : (gid_t)-1;
}

static int open_feed(status_app *app, const serve_options *o)
{
    char dir[PATH_BUF], err[512];
    snprintf(dir, sizeof dir, "%s", o->feed);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (mkdir_p(dir, 0750) < 0) {
            fprintf(stderr, "convocate status-serve: feed: mkdir %s: %s\n", dir, strerror(errno));
            return -1;
        }
        /* TUIs run as claude: they must be able to reach the socket. */
        gid_t gid = claude_gid();
        if (o->feed_is_default && geteuid() == 0 && gid != (gid_t)-1 && chown(dir, 0, gid) < 0)
            log_warn("feed: chown %s: %s", dir, strerror(errno));
    }
    app->feed = status_feed_open(o->feed, geteuid() == 0 ? claude_gid() : (gid_t)-1, feed_greet,
                                 feed_tick, app, err, sizeof err);
    if (app->feed == NULL || status_feed_start(app->feed, err, sizeof err) < 0) {
        fprintf(stderr, "convocate status-serve: feed: %s\n", err);
        return -1;
    }
    return 0;
}

static int serve(const serve_options *o)
{
    status_app app = {0};
    char domain[254], hosts[PATH_BUF], err[512];
    read_domain(domain, sizeof domain);
    int rc = 1;
    listener *l = NULL;
    if (root_path(hosts, sizeof hosts, "/var/lib/convocate/dnsmasq-hosts") < 0 ||
        (app.agents = status_agents_new()) == NULL ||
        (app.dns = dns_hosts_new(hosts, domain, o->pidfile)) == NULL) {
        fprintf(stderr, "convocate status-serve: out of memory or path too long\n");
        goto out;
    }
    register_known_agents(app.agents);
    if (open_feed(&app, o) < 0)
        goto out;
    static const listener_subsystem subsystems[] = {
        {STATUS_SUBSYSTEM,
         {.open = chan_open,
          .room = chan_room,
          .input = chan_input,
          .eof = chan_eof,
          .release = chan_release}},
    };
    listener_config cfg = {.bind_addr = o->listen_host,
                           .port = o->listen_port,
                           .host_key_path = o->host_key,
                           .auth_keys_path = o->auth_keys,
                           .subsystems = subsystems,
                           .n_subsystems = 1,
                           .app = &app};
    if (listener_open(&l, &cfg, err, sizeof err) != LISTENER_OK) {
        fprintf(stderr, "convocate status-serve: %s\n", err);
        goto out;
    }
    running_listener = l;
    install_signals();
    log_info("status-serve listening on %s:%d, feed %s, domain %s", o->listen_host, o->listen_port,
             o->feed, domain);
    rc = listener_run(l) == 0 ? 0 : 1;
    running_listener = NULL;
    log_info("stopped");
out:
    listener_free(l);
    status_feed_free(app.feed);
    dns_hosts_free(app.dns);
    status_agents_free(app.agents);
    return rc;
}

/* ---- options ------------------------------------------------------------ */

static void serve_usage(FILE *out)
{
    fprintf(out, "usage: convocate [--root DIR] status-serve [--listen ADDR:PORT] "
                 "[--host-key PATH]\n"
                 "           [--auth-keys PATH] [--feed PATH] [--dnsmasq-pidfile PATH] [-v]\n"
                 "defaults (under --root): 0.0.0.0:223, "
                 "/etc/convocate/status_host_ed25519_key,\n"
                 "  /etc/convocate/status_authorized_keys, /run/convocate/status.sock,\n"
                 "  /run/dnsmasq/dnsmasq.pid\n");
}

static int copy_opt(char *dst, size_t size, const char *value, const char *flag)
{
    if (snprintf(dst, size, "%s", value) >= (int)size) {
        fprintf(stderr, "convocate status-serve: %s is too long\n", flag);
        return -1;
    }
    return 0;
}

static int default_path(char *dst, const char *host_path)
{
    if (dst[0] != '\0')
        return 0;
    if (root_path(dst, PATH_BUF, "%s", host_path) < 0) {
        fprintf(stderr, "convocate status-serve: --root is too long\n");
        return -1;
    }
    return 0;
}

int status_serve_main(int argc, char **argv)
{
    enum { OPT_LISTEN = 256, OPT_HOST_KEY, OPT_AUTH_KEYS, OPT_FEED, OPT_PIDFILE, OPT_ROOT };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"host-key", required_argument, NULL, OPT_HOST_KEY},
        {"auth-keys", required_argument, NULL, OPT_AUTH_KEYS},
        {"feed", required_argument, NULL, OPT_FEED},
        {"dnsmasq-pidfile", required_argument, NULL, OPT_PIDFILE},
        {"root", required_argument, NULL, OPT_ROOT},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    serve_options o = {.listen_host = "0.0.0.0", .listen_port = 223};
    int c, bad = 0;
    optind = 1;
    opterr = 0; /* our own message names the program */
    while (!bad && (c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            bad = parse_host_port(optarg, 223, o.listen_host, sizeof o.listen_host,
                                  &o.listen_port) < 0;
            if (bad)
                fprintf(stderr, "convocate status-serve: --listen wants ADDR:PORT, got \"%s\"\n",
                        optarg);
            break;
        case OPT_HOST_KEY:
            bad = copy_opt(o.host_key, PATH_BUF, optarg, "--host-key");
            break;
        case OPT_AUTH_KEYS:
            bad = copy_opt(o.auth_keys, PATH_BUF, optarg, "--auth-keys");
            break;
        case OPT_FEED:
            bad = copy_opt(o.feed, PATH_BUF, optarg, "--feed");
            break;
        case OPT_PIDFILE:
            bad = copy_opt(o.pidfile, PATH_BUF, optarg, "--dnsmasq-pidfile");
            break;
        case OPT_ROOT:
            bad = paths_set_root(optarg) < 0;
            break;
        case 'v':
            log_init("convocate", true);
            break;
        case 'h':
            serve_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "convocate status-serve: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            bad = 1;
            break;
        }
    }
    if (bad || optind < argc) {
        serve_usage(stderr);
        return EXIT_USAGE;
    }
    o.feed_is_default = o.feed[0] == '\0';
    if (default_path(o.host_key, "/etc/convocate/status_host_ed25519_key") < 0 ||
        default_path(o.auth_keys, "/etc/convocate/status_authorized_keys") < 0 ||
        default_path(o.feed, "/run/convocate/status.sock") < 0 ||
        default_path(o.pidfile, "/run/dnsmasq/dnsmasq.pid") < 0)
        return EXIT_USAGE;
    return serve(&o);
}
