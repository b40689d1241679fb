#include "shell/secret_input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/fileio.h"

/* The largest input that can still trim to a valid secret, plus one byte so
 * a longer one is noticed rather than cut. */
#define READ_CAP (CLAUDE_VALUE_MAX + 2)

int secret_from_bytes(const char *buf, size_t len, char *out, size_t size, char *err, size_t errlen)
{
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len == 0) {
        snprintf(err, errlen, "is empty");
        return -1;
    }
    if (len > CLAUDE_VALUE_MAX || len >= size) {
        snprintf(err, errlen, "is longer than %d bytes", CLAUDE_VALUE_MAX);
        return -1;
    }
    if (!claude_value_is_valid(buf, len)) {
        snprintf(err, errlen,
                 "holds a space, a control character or a non-ASCII byte (only one trailing "
                 "newline is trimmed)");
        return -1;
    }
    memcpy(out, buf, len);
    out[len] = '\0';
    return 0;
}

/* One line from the terminal with echo off, so the secret is not shown. */
static ssize_t read_terminal(char *buf, size_t cap)
{
    struct termios saved, quiet;
    if (tcgetattr(STDIN_FILENO, &saved) < 0)
        return -1;
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    fprintf(stderr, "Paste the secret, then Enter (it is not shown): ");
    fflush(stderr);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
        return -1;
    ssize_t n = read_full(STDIN_FILENO, buf, cap, true);
    int saved_errno = errno;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    fputc('\n', stderr);
    errno = saved_errno;
    return n;
}

int secret_read(const char *path, char *out, size_t size, char *err, size_t errlen)
{
    char buf[READ_CAP];
    char why[200];
    bool from_stdin = strcmp(path, "-") == 0;
    int fd = from_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read the secret from %s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = from_stdin && isatty(fd) ? read_terminal(buf, sizeof buf)
                                         : read_full(fd, buf, sizeof buf, false);
    int saved = errno;
    if (!from_stdin)
        close(fd);
    int rc = -1;
    if (n < 0)
        snprintf(err, errlen, "cannot read the secret from %s: %s", from_stdin ? "stdin" : path,
                 strerror(saved));
    else if (secret_from_bytes(buf, (size_t)n, out, size, why, sizeof why) < 0)
        snprintf(err, errlen, "the secret from %s %s", from_stdin ? "stdin" : path, why);
    else
        rc = 0;
    explicit_bzero(buf, sizeof buf);
    return rc;
}
