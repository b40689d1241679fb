#include "provision/systemd_escape.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Characters systemd keeps as they are; '.' only where it does not start
 * the escaped string (a leading dot would make a hidden file name). */
static bool kept_as_is(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    if (c == ':' || c == '_')
        return true;
    return c == '.' && !first;
}

typedef struct {
    char *out;
    size_t size;
    size_t len;
} escape_buf;

static int put(escape_buf *b, const char *s, size_t n)
{
    if (b->len + n >= b->size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(b->out + b->len, s, n);
    b->len += n;
    b->out[b->len] = '\0';
    return 0;
}

static int put_component(escape_buf *b, const char *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (kept_as_is(c[i], b->len == 0)) {
            if (put(b, &c[i], 1) < 0)
                return -1;
            continue;
        }
        char hex[5];
        snprintf(hex, sizeof hex, "\\x%02x", (unsigned char)c[i]);
        if (put(b, hex, 4) < 0)
            return -1;
    }
    return 0;
}

static bool is_dot_component(const char *c, size_t n)
{
    return (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.');
}

int systemd_escape_path(const char *path, char *out, size_t size)
{
    escape_buf b = {.out = out, .size = size, .len = 0};
    if (size == 0 || path == NULL || path[0] != '/') {
        errno = size == 0 ? ENAMETOOLONG : EINVAL;
        return -1;
    }
    out[0] = '\0';
    const char *p = path;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 0)
            break;
        if (is_dot_component(p, n)) {
            errno = EINVAL;
            return -1;
        }
        if ((b.len > 0 && put(&b, "-", 1) < 0) || put_component(&b, p, n) < 0)
            return -1;
        p += n;
    }
    /* The root directory alone is spelt "-". */
    return b.len == 0 ? put(&b, "-", 1) : 0;
}

int systemd_mount_unit_name(const char *path, char *out, size_t size)
{
    if (systemd_escape_path(path, out, size) < 0)
        return -1;
    size_t len = strlen(out);
    if (len + sizeof ".mount" > size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out + len, ".mount", sizeof ".mount");
    return 0;
}
