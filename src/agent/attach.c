/* The process side of an attach relay (SPEC 9): the docker CLI under a PTY,
 * running tmux attach inside the session's container. The CLI is the right
 * tool here: it forwards the terminal size (SIGWINCH) to the exec and ends
 * when tmux detaches. Nothing here ever stops the container. */
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
#include <time.h>
#include <unistd.h>

#include "agent/attach.h"
#include "common/paths.h"
#include "common/ids.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define STOP_GRACE_MS 2000
#define REAP_STEP_MS 20

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
    char container[64];
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
    snprintf(container, sizeof container, "convocate-session-%s", uuid);
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
        struct timespec step = {.tv_sec = 0, .tv_nsec = REAP_STEP_MS * 1000L * 1000L};
        nanosleep(&step, NULL);
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
