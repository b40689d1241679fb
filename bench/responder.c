/* The OpenSSH reference's Subsystem for `make bench`: what a minimal RPC
 * server does per channel, in C, so the reference is measured at its best.
 *
 *   responder          reads one request line, writes one ping-sized
 *                      response line, exits (the ping reference);
 *   responder --sink   reads lines until EOF, then writes their count and the
 *                      microseconds from the first byte to EOF (the transport
 *                      reference for the events rows);
 *   responder --cat F  reads one request line, writes the bytes of file F
 *                      (the store rows: the same answer a big list gives).
 *
 * Built by bench/reference.py with the machine's cc. Bounded reads only. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (1024 * 1024)

/* The same shape and about the same size as convocate's ping result. */
static const char RESPONSE[] =
    "{\"ok\":true,\"result\":{\"agent_id\":\"referenc\",\"version\":\"v0.0.0\","
    "\"server_time\":\"2026-01-01T00:00:00Z\",\"image_tag\":\"convocate:v0.0.0\","
    "\"capacity\":{\"cpu_pct\":0.0,\"mem_pct\":0.0,\"threshold_pct\":90,\"sessions\":0}}}\n";

static int write_all(const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, p, len);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until a newline, EOF or the bound; 0 once a newline or EOF came. */
static int read_request(void)
{
    static char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0)
            return 0;
        total += (size_t)n;
        if (memchr(buf, '\n', (size_t)n) != NULL)
            return 0;
        if (total > LINE_MAX_BYTES)
            return -1;
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int sink(void)
{
    static char buf[65536];
    unsigned long long lines = 0;
    double first = 0;
    ssize_t n;
    while ((n = read(STDIN_FILENO, buf, sizeof buf)) > 0) {
        if (first == 0)
            first = now_us();
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    }
    char out[96];
    int len = snprintf(out, sizeof out, "%llu %.0f\n", lines, first ? now_us() - first : 0.0);
    return write_all(out, (size_t)len);
}

/* Streams a file to stdout, in bounded chunks. */
static int cat(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = write_all(buf, n);
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--sink") == 0)
        return sink() == 0 ? 0 : 1;
    if (argc > 2 && strcmp(argv[1], "--cat") == 0)
        return read_request() == 0 && cat(argv[2]) == 0 ? 0 : 1;
    if (read_request() < 0)
        return 1;
    return write_all(RESPONSE, sizeof RESPONSE - 1) == 0 ? 0 : 1;
}
