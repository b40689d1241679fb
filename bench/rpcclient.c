/* A C client for the RPC rows, as the shell's own client calls: one libssh
 * connection, a fresh channel of the subsystem per call. It times each call
 * itself, so a row's figures hold no interpreter pauses of the Python that
 * drives it.
 *
 *   rpcclient PORT USER KEY KNOWN_HOSTS [SUBSYSTEM]
 *
 * Connects to 127.0.0.1:PORT as USER with the private KEY, the server's key
 * checked against KNOWN_HOSTS. Then, for each line read on stdin (one
 * request), writes one line on stdout: the call's microseconds, a tab, and
 * the answer's first line (its newline kept), then flushes. Exits 1 with a
 * message on stderr when anything fails. */
#include <libssh/libssh.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ANSWER_MAX (1 << 20)

static void die(const char *what, ssh_session s)
{
    fprintf(stderr, "rpcclient: %s: %s\n", what, s ? ssh_get_error(s) : "failed");
    exit(1);
}

static ssh_session connect_to(int port, const char *user, const char *key, const char *known)
{
    ssh_session s = ssh_new();
    int nodelay = 1;
    if (s == NULL || ssh_options_set(s, SSH_OPTIONS_HOST, "127.0.0.1") < 0 ||
        ssh_options_set(s, SSH_OPTIONS_PORT, &port) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_USER, user) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, known) < 0 ||
        ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0 ||
        ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay) < 0)
        die("options", s);
    if (ssh_connect(s) != SSH_OK)
        die("connect", s);
    if (ssh_session_is_known_server(s) != SSH_KNOWN_HOSTS_OK)
        die("the server's key is not the one in KNOWN_HOSTS", s);
    ssh_key priv = NULL;
    if (ssh_pki_import_privkey_file(key, NULL, NULL, NULL, &priv) != SSH_OK)
        die("reading KEY", s);
    if (ssh_userauth_publickey(s, NULL, priv) != SSH_AUTH_SUCCESS)
        die("authentication", s);
    ssh_key_free(priv);
    return s;
}

/* One request on a fresh channel; the answer in buf (NUL-terminated). */
static void call(ssh_session s, const char *subsystem, const char *req, size_t len, char *buf)
{
    ssh_channel ch = ssh_channel_new(s);
    if (ch == NULL || ssh_channel_open_session(ch) != SSH_OK ||
        ssh_channel_request_subsystem(ch, subsystem) != SSH_OK ||
        ssh_channel_write(ch, req, (uint32_t)len) != (int)len || ssh_channel_send_eof(ch) != SSH_OK)
        die("the call", s);
    size_t got = 0;
    for (;;) {
        int n = ssh_channel_read(ch, buf + got, (uint32_t)(ANSWER_MAX - 1 - got), 0);
        if (n < 0)
            die("reading the answer", s);
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == ANSWER_MAX - 1)
            die("an answer of 1 MiB or more", NULL);
    }
    buf[got] = '\0';
    ssh_channel_close(ch);
    ssh_channel_free(ch);
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: rpcclient PORT USER KEY KNOWN_HOSTS [SUBSYSTEM]\n");
        return 2;
    }
    const char *subsystem = argc == 6 ? argv[5] : "convocate-agent-rpc";
    ssh_session s = connect_to(atoi(argv[1]), argv[2], argv[3], argv[4]);
    char *answer = malloc(ANSWER_MAX), *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (answer == NULL)
        die("out of memory", NULL);
    while ((len = getline(&line, &cap, stdin)) > 0) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        call(s, subsystem, line, (size_t)len, answer);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
        char *nl = strchr(answer, '\n');
        printf("%lld\t%.*s\n", us, nl ? (int)(nl - answer) : (int)strlen(answer), answer);
        fflush(stdout);
    }
    free(line);
    free(answer);
    ssh_disconnect(s);
    ssh_free(s);
    return 0;
}
