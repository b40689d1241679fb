/* The attach relay (SPEC 9), both halves.
 *
 * The process side: the docker CLI under a PTY, running tmux attach inside
 * the session's container. The CLI is the right tool here: it forwards the
 * terminal size (SIGWINCH) to the exec and ends when tmux detaches. Nothing
 * here ever stops the container.
 *
 * The channel side: the convocate-agent-attach subsystem. One header line
 * in, the preparation (start the container, spawn the CLI) on a worker
 * thread, then bytes both ways between the channel and the PTY, never more
 * than the SSH window or the PTY takes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/attach.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "engine/docker.h"
#include "proto/attach_header.h"
#include "proto/rpc.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define STOP_GRACE_MS 2000
#define REAP_STEP_MS 20
#define RELAY_BUF 16384
#define RELAY_READS_PER_ROUND 8

/* ---------- the process side ---------- */

/* Finds the docker CLI before forking: after fork only async-signal-safe
 * calls are allowed, and a PATH search is not one. */
static int find_docker(char *out, size_t size)
{
    const char *path = getenv("PATH");
    char dirs[PATH_BUF];
    snprintf(dirs, sizeof dirs, "%s", path && *path ? path : DEFAULT_PATH);
    char *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
        if (*dir != '/')
            continue; /* relative PATH entries would depend on our cwd */
        int n = snprintf(out, size, "%s/docker", dir);
        if (n > 0 && (size_t)n < size && access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* The child: a clean signal state, no inherited descriptors but the PTY
 * (another thread may be between openpty() and closing its slave), exec. */
static void exec_docker(const char *docker, char *const argv[], char *const envp[])
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    close_range(3, ~0U, 0);
    execve(docker, argv, envp);
    static const char msg[] = "convocate-agent: cannot run the docker CLI\r\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(127);
}

int attach_proc_start(attach_proc *p, const char *docker_host, const char *uuid, int cols, int rows,
                      char *err, size_t errlen)
{
    char docker[PATH_BUF];
    char container[ENGINE_CONTAINER_NAME_LEN];
    char env_docker_host[PATH_BUF + 16];
    char env_home[PATH_BUF + 8];
    int master = -1;

    p->pid = -1;
    p->master_fd = -1;
    if (!uuid_v4_is_valid(uuid)) {
        snprintf(err, errlen, "invalid id \"%.40s\"", uuid);
        return -1;
    }
    if (cols < 1 || rows < 1 || cols > 1000 || rows > 1000) {
        snprintf(err, errlen, "invalid terminal size %dx%d", cols, rows);
        return -1;
    }
    if (find_docker(docker, sizeof docker) < 0) {
        snprintf(err, errlen, "the docker CLI is not installed on this agent");
        return -1;
    }
    engine_container_name(uuid, container);
    snprintf(env_docker_host, sizeof env_docker_host, "DOCKER_HOST=%s", docker_host);
    const char *home = getenv("HOME");
    snprintf(env_home, sizeof env_home, "HOME=%s", home && *home == '/' ? home : "/root");
    char *const argv[] = {"docker",  "exec",           "-it", "-e",     "TERM=xterm-256color",
                          container, "sudo",           "-u",  "claude", "--",
                          "tmux",    "attach-session", "-t",  "claude", NULL};
    char *const envp[] = {"PATH=" DEFAULT_PATH,  env_docker_host, env_home,
                          "TERM=xterm-256color", "LANG=C.UTF-8",  NULL};
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};

    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid < 0) {
        snprintf(err, errlen, "cannot open a terminal for the session: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        exec_docker(docker, argv, envp);
    /* The relay loop must never block on the PTY. */
    int flags = fcntl(master, F_GETFL);
    if (flags < 0 || fcntl(master, F_SETFL, flags | O_NONBLOCK) < 0 ||
        fcntl(master, F_SETFD, FD_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot set up the session terminal: %s", strerror(errno));
        p->pid = pid;
        p->master_fd = master;
        attach_proc_stop(p);
        return -1;
    }
    p->pid = pid;
    p->master_fd = master;
    return 0;
}

int attach_proc_resize(attach_proc *p, int cols, int rows)
{
    if (p->master_fd < 0 || cols < 1 || rows < 1 || cols > 1000 || rows > 1000)
        return -1;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    /* The kernel signals SIGWINCH to the CLI, which resizes the exec. */
    return ioctl(p->master_fd, TIOCSWINSZ, &ws);
}

/* Waits up to ms for the child to exit; true once reaped. */
static bool reap_within(pid_t pid, int ms)
{
    for (int waited = 0;; waited += REAP_STEP_MS) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        if (r < 0 && errno != EINTR)
            return false;
        if (waited >= ms)
            return false;
        sleep_ms(REAP_STEP_MS);
    }
}

void attach_proc_stop(attach_proc *p)
{
    /* Closing the master hangs up the terminal: the CLI gets SIGHUP and ends
     * its exec stream; the container and its tmux session stay. */
    if (p->master_fd >= 0) {
        close(p->master_fd);
        p->master_fd = -1;
    }
    if (p->pid <= 0)
        return;
    if (!reap_within(p->pid, STOP_GRACE_MS)) {
        kill(p->pid, SIGTERM);
        if (!reap_within(p->pid, STOP_GRACE_MS)) {
            kill(p->pid, SIGKILL);
            while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
    }
    p->pid = -1;
}

/* ---------- the channel side: convocate-agent-attach ---------- */

enum attach_phase { ATTACH_HEADER, ATTACH_PREPARING, ATTACH_RELAY, ATTACH_DONE };

typedef struct {
    agent *a;
    enum attach_phase phase;
    char header[ATTACH_HEADER_MAX];
    size_t header_used;
    attach_header hdr;
    char to_pty[RELAY_BUF]; /* operator keystrokes not yet written to the PTY */
    size_t to_pty_used;
    int cols, rows; /* latest window-change; 0 = none */
    bool client_eof;
    int prepare_rc; /* set by the worker */
    char error[256];
    attach_proc proc;
    bool proc_started;
    bool entered; /* counted in agent_attach_enter() */
} attach_chan;

static void *attach_open(lchan *ch, void *app)
{
    (void)ch;
    attach_chan *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->a = app;
    st->proc.pid = -1;
    st->proc.master_fd = -1;
    return st;
}

static void attach_fail(lchan *ch, attach_chan *st, const char *why)
{
    log_info("%s: attach refused: %s", lchan_name(ch), why);
    st->phase = ATTACH_DONE;
    lchan_reply_and_close(ch, rpc_response_error(why));
}

static void attach_stop_work(void *arg)
{
    attach_chan *st = arg;
    attach_proc_stop(&st->proc);
}

/* Ends the process side off the connection thread: it may wait seconds. */
static void attach_stop_proc(lchan *ch, attach_chan *st)
{
    if (!st->proc_started)
        return;
    st->proc_started = false;
    if (lchan_run_job(ch, attach_stop_work, NULL, st) < 0)
        attach_proc_stop(&st->proc);
}

static void attach_end_relay(lchan *ch, attach_chan *st, const char *why)
{
    if (st->phase != ATTACH_RELAY)
        return;
    log_info("%s: attach to %s ended: %s", lchan_name(ch), st->hdr.id, why);
    st->phase = ATTACH_DONE;
    lchan_watch_fd(ch, st->proc.master_fd, 0);
    if (st->entered) {
        agent_attach_leave(st->a, st->hdr.id);
        st->entered = false;
    }
    attach_stop_proc(ch, st);
    lchan_close(ch);
}

static void attach_prepare_work(void *arg)
{
    attach_chan *st = arg;
    st->prepare_rc = agent_attach_prepare(st->a, st->hdr.id, st->error, sizeof st->error);
    if (st->prepare_rc != 0)
        return;
    st->prepare_rc = attach_proc_start(&st->proc, agent_cfg(st->a)->docker_host, st->hdr.id,
                                       st->hdr.cols, st->hdr.rows, st->error, sizeof st->error);
    st->proc_started = st->prepare_rc == 0;
}

static void attach_prepare_done(lchan *ch, void *arg, void *state)
{
    attach_chan *st = arg;
    (void)state;
    if (lchan_is_closing(ch) || st->client_eof) {
        st->phase = ATTACH_DONE;
        attach_stop_proc(ch, st);
        lchan_close(ch);
        return;
    }
    if (st->prepare_rc != 0) {
        attach_fail(ch, st, st->error[0] ? st->error : "attach failed");
        return;
    }
    st->phase = ATTACH_RELAY;
    agent_attach_enter(st->a, st->hdr.id);
    st->entered = true;
    if (st->cols > 0 && attach_proc_resize(&st->proc, st->cols, st->rows) < 0)
        log_info("%s: resize: %s", lchan_name(ch), strerror(errno));
    log_info("%s: attached to %s", lchan_name(ch), st->hdr.id);
}

static void attach_take_header(lchan *ch, attach_chan *st)
{
    char *nl = memchr(st->header, '\n', st->header_used);
    if (nl == NULL) {
        if (st->header_used >= ATTACH_HEADER_MAX)
            attach_fail(ch, st, "attach header too long");
        return;
    }
    size_t line_len = (size_t)(nl - st->header);
    char err[256];
    if (attach_header_decode(st->header, line_len, &st->hdr, err, sizeof err) < 0) {
        attach_fail(ch, st, err);
        return;
    }
    /* Bytes after the header are the operator's first keystrokes. */
    size_t rest = st->header_used - line_len - 1;
    memcpy(st->to_pty, nl + 1, rest);
    st->to_pty_used = rest;
    st->phase = ATTACH_PREPARING;
    if (lchan_run_job(ch, attach_prepare_work, attach_prepare_done, st) < 0)
        attach_fail(ch, st, "agent busy: cannot start a worker, try again");
}

static size_t attach_room(void *state)
{
    attach_chan *st = state;
    switch (st->phase) {
    case ATTACH_HEADER:
        return sizeof st->header - st->header_used;
    case ATTACH_PREPARING:
    case ATTACH_RELAY:
        return sizeof st->to_pty - st->to_pty_used;
    default:
        return 0;
    }
}

static void attach_input(lchan *ch, const void *buf, size_t len, void *state)
{
    attach_chan *st = state;
    if (st->phase == ATTACH_HEADER) {
        memcpy(st->header + st->header_used, buf, len);
        st->header_used += len;
        attach_take_header(ch, st);
    } else if (st->phase == ATTACH_PREPARING || st->phase == ATTACH_RELAY) {
        memcpy(st->to_pty + st->to_pty_used, buf, len);
        st->to_pty_used += len;
    }
}

static void attach_eof(lchan *ch, void *state)
{
    attach_chan *st = state;
    st->client_eof = true;
    if (st->phase == ATTACH_HEADER)
        attach_fail(ch, st, "attach header missing");
    else if (st->phase == ATTACH_RELAY)
        attach_end_relay(ch, st, "operator sent EOF");
}

static int attach_window_change(lchan *ch, int cols, int rows, void *state)
{
    attach_chan *st = state;
    (void)ch;
    if (cols < 1 || rows < 1 || cols > 1000 || rows > 1000)
        return -1;
    st->cols = cols;
    st->rows = rows;
    if (st->phase == ATTACH_RELAY)
        return attach_proc_resize(&st->proc, cols, rows) < 0 ? -1 : 0;
    return 0; /* applied when the relay starts */
}

/* Operator -> PTY. Returns false when the PTY is gone. */
static bool relay_to_pty(attach_chan *st)
{
    while (st->to_pty_used > 0) {
        ssize_t n = write(st->proc.master_fd, st->to_pty, st->to_pty_used);
        if (n > 0) {
            memmove(st->to_pty, st->to_pty + n, st->to_pty_used - (size_t)n);
            st->to_pty_used -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return true; /* the PTY is full: wait for POLLOUT */
        } else {
            return false;
        }
    }
    return true;
}

/* PTY -> operator, never more than the SSH window takes. Returns false
 * when the PTY closed (detach, or the container ended). */
static bool relay_from_pty(lchan *ch, attach_chan *st)
{
    char buf[RELAY_BUF];
    for (int i = 0; i < RELAY_READS_PER_ROUND; i++) {
        size_t room = lchan_writable(ch);
        if (room == 0)
            return true;
        if (room > sizeof buf)
            room = sizeof buf;
        ssize_t n = read(st->proc.master_fd, buf, room);
        if (n > 0) {
            if (lchan_write(ch, buf, (size_t)n) < 0)
                return false;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return true;
        } else {
            return false; /* EOF, or EIO once the last slave descriptor closed */
        }
    }
    return true;
}

static void attach_pump(lchan *ch, void *state)
{
    attach_chan *st = state;
    if (st->phase != ATTACH_RELAY)
        return;
    if (!relay_to_pty(st)) {
        attach_end_relay(ch, st, "terminal closed");
        return;
    }
    if (!relay_from_pty(ch, st)) {
        attach_end_relay(ch, st, "terminal closed");
        return;
    }
    /* Watch only for what we can act on, so a full window never spins. */
    short events = 0;
    if (lchan_writable(ch) > 0)
        events |= POLLIN;
    if (st->to_pty_used > 0)
        events |= POLLOUT;
    if (lchan_watch_fd(ch, st->proc.master_fd, events) < 0)
        attach_end_relay(ch, st, "cannot watch the terminal");
}

static void attach_closed(lchan *ch, void *state)
{
    attach_chan *st = state;
    if (st->phase == ATTACH_RELAY)
        attach_end_relay(ch, st, "channel closed");
    else if (st->phase == ATTACH_HEADER)
        st->phase = ATTACH_DONE;
    /* ATTACH_PREPARING: attach_prepare_done() sees the channel closing. */
}

static void attach_release(void *state)
{
    attach_chan *st = state;
    if (st->entered)
        agent_attach_leave(st->a, st->hdr.id);
    if (st->proc_started)
        attach_proc_stop(&st->proc);
    free(st);
}

const lchan_handler attach_relay_handler = {.open = attach_open,
                                            .room = attach_room,
                                            .input = attach_input,
                                            .eof = attach_eof,
                                            .window_change = attach_window_change,
                                            .pump = attach_pump,
                                            .closed = attach_closed,
                                            .release = attach_release};
