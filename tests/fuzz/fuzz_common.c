#include "fuzz.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* /dev/shm when there is one: the file is rewritten for every input. */
static const char *scratch_path(void)
{
    static char path[64];
    if (path[0] == '\0')
        snprintf(path, sizeof path, "%s/convocate-fuzz-%ld",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
    return path;
}

static void remove_scratch(void)
{
    unlink(scratch_path());
}

/* The file stays open for writing across inputs: each input is written
 * over the last and the file cut to its length, which saves an open and a
 * close per input and keeps tmpfs from freeing and refilling its pages. */
const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    const char *path = scratch_path();
    if (fd < 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            abort();
        atexit(remove_scratch);
    }
    for (size_t off = 0; off < size;) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    if (ftruncate(fd, (off_t)size) < 0)
        abort();
    return path;
}

/* The sanitizer runtime's own report line: libFuzzer's -close_fd_mask=2
 * closes stderr but keeps the sanitizers' report fd open. */
extern void __sanitizer_report_error_summary(const char *summary) __attribute__((weak));

void fuzz_fail(const char *what, const char *file, int line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "fuzz check failed at %s:%d: %s", file, line, what);
    if (__sanitizer_report_error_summary != NULL)
        __sanitizer_report_error_summary(msg);
    fprintf(stderr, "%s\n", msg);
    abort();
}
