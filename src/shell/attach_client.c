#include "shell/attach_client.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/fileio.h"

static int winch_pipe[2] = {-1, -1};

static void on_winch(int sig)
{
    (void)sig;
    int saved = errno;
    if (write(winch_pipe[1], "w", 1) < 0) {
        /* a full pipe already holds a pending resize */
    }
    errno = saved;
}

static void terminal_size(int *cols, int *rows)
{
    struct winsize ws;
    *cols = 80;
    *rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
        *cols = ws.ws_col;
        *rows = ws.ws_row;
    }
}

struct attach_ctx {
    const char *uuid;
    char *err;
    size_t errlen;
};

/* Before the relay starts the agent may answer with one error line; tmux's
 * output never starts with '{', so the first byte tells the two apart. */
static int check_refusal(const char *buf, int n, struct attach_ctx *c)
{
    if (n <= 0 || buf[0] != '{')
        return 0;
    json_t *root = json_loadb(buf, (size_t)n, JSON_DISABLE_EOF_CHECK, NULL);
    const char *text = json_string_value(json_object_get(root, "error"));
    int refused = text != NULL && json_is_false(json_object_get(root, "ok"));
    if (refused)
        snprintf(c->err, c->errlen, "%s", text);
    json_decref(root);
    return refused ? -1 : 0;
}

static int relay(ssh_session session, ssh_channel ch, void *arg)
{
    struct attach_ctx *c = arg;
    int cols, rows;
    terminal_size(&cols, &rows);
    char header[128];
    int hlen = snprintf(header, sizeof header, "{\"id\":\"%s\",\"cols\":%d,\"rows\":%d}\n", c->uuid,
                        cols, rows);
    if (ssh_channel_write(ch, header, (uint32_t)hlen) != hlen) {
        snprintf(c->err, c->errlen, "cannot send the attach header: %s", ssh_get_error(session));
        return -1;
    }
    bool first = true, stdin_open = true;
    char buf[16384];
    for (;;) {
        int n = ssh_channel_read_nonblocking(ch, buf, sizeof buf, 0);
        if (n == SSH_ERROR)
            return 0; /* connection lost: the relay simply ends */
        if (n > 0) {
            if (first && check_refusal(buf, n, c) < 0)
                return -1;
            first = false;
            if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
                return 0;
            continue;
        }
        if (ssh_channel_is_eof(ch) || ssh_channel_is_closed(ch))
            return 0;
        struct pollfd pfd[3] = {
            {.fd = ssh_get_fd(session), .events = POLLIN},
            {.fd = winch_pipe[0], .events = POLLIN},
            {.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN},
        };
        if (poll(pfd, 3, 1000) < 0 && errno != EINTR)
            return 0;
        if (pfd[1].revents & POLLIN) {
            char drain[64];
            while (read(winch_pipe[0], drain, sizeof drain) > 0) {
            }
            terminal_size(&cols, &rows);
            ssh_channel_change_pty_size(ch, cols, rows);
        }
        if (pfd[2].revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
            if (r > 0) {
                if (ssh_channel_write(ch, buf, (uint32_t)r) != (int)r)
                    return 0;
            } else if (r == 0 || errno != EINTR) {
                stdin_open = false;
                ssh_channel_send_eof(ch);
            }
        }
    }
}

int attach_run(agent_entry *agent, const char *uuid, char *err, size_t errlen)
{
    struct termios saved;
    bool raw = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    struct sigaction sa = {.sa_handler = on_winch}, old_sa;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGWINCH, &sa, &old_sa);
    if (raw) {
        struct termios t = saved;
        cfmakeraw(&t);
        tcsetattr(STDIN_FILENO, TCSANOW, &t);
    }
    struct attach_ctx ctx = {uuid, err, errlen};
    int rc =
        pinned_peer_with_channel(agent->peer, "convocate-agent-attach", relay, &ctx, err, errlen);
    if (raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    sigaction(SIGWINCH, &old_sa, NULL);
    close(winch_pipe[0]);
    close(winch_pipe[1]);
    winch_pipe[0] = winch_pipe[1] = -1;
    return rc;
}
