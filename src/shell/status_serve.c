/* status-serve wires three parts together: the narrow SSH listener (one
 * thread per agent connection) hands each complete line to handle_line();
 * the key that authenticated names the agent (status_identity.c), and an
 * event claiming another agent's id is dropped. The rest goes out unchanged
 * to the feed's subscribers, updates the agent table (live/silent) and, for
 * container events, the DNS hosts file (only for that agent's own
 * sessions). The agents never get anything back. */
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

#include "common/fileio.h"
#include "common/hostport.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/ratelimit.h"
#include "common/timeutil.h"
#include "proto/status_event.h"
#include "provision/dnsmasq_hosts.h"
#include "shell/ls_service.h"
#include "shell/status_agents.h"
#include "shell/status_feed.h"
#include "shell/status_identity.h"
#include "ssh/listener.h"

#define EXIT_USAGE 2
#define DEFAULT_DOMAIN "convocate.internal"
#define IP_BUF (INET6_ADDRSTRLEN + 1)

typedef struct {
    status_feed *feed;
    status_agents *agents;
    dns_hosts *dns;
    ls_service *ls; /* NULL when it could not start: ls then dials the agents itself */
} status_app;

/* One convocate-status channel: whose key opened it and the bytes of the
 * line being read. An agent's sender uses one channel per connection, so
 * the rate limits here are per connection in practice. */
typedef struct {
    status_app *app;
    lchan *ch;
    char agent_id[AGENT_ID_LEN + 1]; /* decided by the key, never by the events */
    char ip[IP_BUF];                 /* where its DNS names point; "" = not looked up yet */
    char *buf;                       /* STATUS_LINE_MAX + 1 bytes */
    size_t len;
    bool discarding; /* inside a line that is too long: skip to its end */
    unsigned long skipped;
    unsigned long spoofed; /* events naming another agent, dropped */
    ratelimit spoof_log, dns_log;
} status_chan;

/* ---- one event ---------------------------------------------------------- */

static void dns_refused(status_chan *sc, const char *session, const char *err)
{
    unsigned long held;
    if (!ratelimit_pass(&sc->dns_log, monotonic_ms(), RATELIMIT_DEFAULT_MS, &held))
        return;
    if (held > 0)
        log_warn("%s: agent %s, session %s: DNS record refused: %s (and %lu refusals since the "
                 "last report)",
                 lchan_name(sc->ch), sc->agent_id, session, err, held);
    else
        log_warn("%s: agent %s, session %s: DNS record refused: %s", lchan_name(sc->ch),
                 sc->agent_id, session, err);
}

/* The address is looked up once per connection: a name in agent-host is
 * resolved, and that must not happen for every event of a burst. */
static const char *agent_address(status_chan *sc)
{
    if (sc->ip[0] == '\0' && status_identity_address(sc->agent_id, sc->ip, sizeof sc->ip) < 0)
        sc->ip[0] = '\0';
    return sc->ip[0] ? sc->ip : NULL;
}

static void update_dns(status_chan *sc, const status_event *ev)
{
    if (ev->session_id == NULL)
        return;
    char err[512];
    enum dns_result rc;
    const char *name = status_event_dns_name(ev);
    if (status_event_is(ev, "container.deleted")) {
        rc = dns_hosts_forget(sc->app->dns, sc->agent_id, ev->session_id, err, sizeof err);
    } else if (*name != '\0' && agent_address(sc) == NULL) {
        snprintf(err, sizeof err, "no usable address in its agent-host file");
        rc = DNS_REFUSED;
    } else {
        rc = dns_hosts_set(sc->app->dns, sc->agent_id, ev->session_id, name, sc->ip, err,
                           sizeof err);
    }
    if (rc == DNS_ERROR)
        log_error("dns hosts: session %s: %s", ev->session_id, err);
    else if (rc == DNS_REFUSED)
        dns_refused(sc, ev->session_id, err);
}

/* An event naming another agent is dropped and counted: the key decides
 * who is speaking (SPEC 8.4). One log line per 10 s names both. */
static bool speaks_for_itself(status_chan *sc, const status_event *ev)
{
    if (strcmp(ev->agent_id, sc->agent_id) == 0)
        return true;
    sc->spoofed++;
    unsigned long held;
    if (ratelimit_pass(&sc->spoof_log, monotonic_ms(), RATELIMIT_DEFAULT_MS, &held))
        log_warn("%s: agent %s sent an event naming agent %s; dropped (%lu such events on this "
                 "connection)",
                 lchan_name(sc->ch), sc->agent_id, ev->agent_id, sc->spoofed);
    return false;
}

static void handle_line(status_chan *sc, char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0)
        return;
    status_event ev;
    char err[256];
    if (status_event_parse(line, len, &ev, err, sizeof err) < 0) {
        log_warn("%s: a line of %d bytes %s; skipped", lchan_name(sc->ch), (int)len, err);
        return;
    }
    if (!speaks_for_itself(sc, &ev)) {
        status_event_clear(&ev);
        return;
    }
    /* Forwarded as the same bytes; the buffer has room for the newline. */
    line[len] = '\n';
    status_feed_publish(sc->app->feed, line, len + 1);
    char *turned = status_agents_seen(sc->app->agents, sc->agent_id, status_event_heartbeat(&ev),
                                      status_event_is(&ev, "agent.shutdown"), monotonic_ms());
    if (turned != NULL) {
        status_feed_publish(sc->app->feed, turned, strlen(turned));
        free(turned);
    }
    if (status_event_is(&ev, "container.created") || status_event_is(&ev, "container.edited") ||
        status_event_is(&ev, "container.deleted"))
        update_dns(sc, &ev);
    status_event_clear(&ev);
}

/* ---- the convocate-status subsystem ------------------------------------- */

/* The key in status_authorized_keys let the connection in; it must also be
 * a registered agent's own key, which then names the agent. */
static void *chan_open(lchan *ch, void *app)
{
    char id[AGENT_ID_LEN + 1], why[PATH_BUF + 64];
    if (status_identity_of_key(lchan_key_fingerprint(ch), id, why, sizeof why) !=
        STATUS_IDENTITY_FOUND) {
        log_warn("%s: key %s is authorized but names no single agent (%s); refused", lchan_name(ch),
                 lchan_key_fingerprint(ch), why);
        return NULL;
    }
    /* The line buffer counts against the connection's input budget. */
    if (lchan_hold_input(ch, STATUS_LINE_MAX + 1) < 0)
        return NULL;
    status_chan *sc = calloc(1, sizeof *sc);
    if (sc == NULL || (sc->buf = malloc(STATUS_LINE_MAX + 1)) == NULL) {
        free(sc);
        return NULL;
    }
    sc->app = app;
    sc->ch = ch;
    memcpy(sc->agent_id, id, sizeof sc->agent_id);
    log_info("%s: agent %s", lchan_name(ch), id);
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
    if (sc->spoofed > 0)
        log_warn("agent %s: %lu events naming another agent were dropped on this connection",
                 sc->agent_id, sc->spoofed);
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

/* The ls service's socket goes beside the feed's, where the CLI looks. */
static void start_ls_service(status_app *app, const serve_options *o)
{
    char path[PATH_BUF], err[512];
    snprintf(path, sizeof path, "%s", o->feed);
    char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    if (dir_len + strlen(LS_SOCKET_NAME) >= sizeof path) {
        log_warn("ls service: the feed's directory is too long; `convocate ls` dials the agents");
        return;
    }
    snprintf(path + dir_len, sizeof path - dir_len, "%s", LS_SOCKET_NAME);
    app->ls = ls_service_start(path, geteuid() == 0 ? claude_gid() : (gid_t)-1, err, sizeof err);
    if (app->ls == NULL)
        log_warn("%s; `convocate ls --json` dials the agents itself", err);
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
    start_ls_service(&app, o); /* after SIGPIPE is ignored: a client may hang up mid-answer */
    log_info("status-serve listening on %s:%d, feed %s, domain %s", o->listen_host, o->listen_port,
             o->feed, domain);
    rc = listener_run(l) == 0 ? 0 : 1;
    running_listener = NULL;
    log_info("stopped");
out:
    listener_free(l);
    ls_service_stop(app.ls);
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
