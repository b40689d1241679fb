/* What one reference channel's processes cost without sshd: n times, start
 * `/bin/sh -c RESPONDER` on two pipes, write the request, read the answer to
 * EOF, reap it. Prints one line per run, in microseconds. Built and run by
 * bench/reference.py with the machine's cc: measured in C so that no
 * interpreter's own spawning overhead lands in the figure. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char REQUEST[] = "{\"op\":\"ping\",\"params\":null}\n";

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One run; 0 when the responder answered and exited 0. */
static int run_once(const char *responder)
{
    int in[2], out[2];
    if (pipe(in) < 0 || pipe(out) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {"sh", "-c", (char *)responder, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0)
        return -1;
    ssize_t w = write(in[1], REQUEST, sizeof REQUEST - 1);
    close(in[1]);
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0)
        got += (size_t)n;
    close(out[0]);
    int status;
    if (waitpid(pid, &status, 0) < 0 || w < 0 || got == 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: spawncost N RESPONDER\n");
        return 2;
    }
    int n = atoi(argv[1]);
    for (int i = 0; i < n && i < 100000; i++) {
        double t0 = now_us();
        if (run_once(argv[2]) < 0) {
            fprintf(stderr, "spawncost: run %d failed\n", i);
            return 1;
        }
        printf("%.1f\n", now_us() - t0);
    }
    return 0;
}
