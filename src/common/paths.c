#include "common/paths.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char root_dir[PATH_BUF];

int paths_set_root(const char *root)
{
    if (root == NULL || root[0] == '\0' || strcmp(root, "/") == 0) {
        root_dir[0] = '\0';
        return 0;
    }
    size_t len = strlen(root);
    while (len > 1 && root[len - 1] == '/')
        len--;
    if (len >= sizeof root_dir - 256) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(root_dir, root, len);
    root_dir[len] = '\0';
    return 0;
}

const char *paths_root(void)
{
    return root_dir[0] ? root_dir : "/";
}

int root_path(char *out, size_t size, const char *fmt, ...)
{
    char rel[PATH_BUF];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof rel) {
        errno = ENAMETOOLONG;
        return -1;
    }
    n = snprintf(out, size, "%s%s", root_dir, rel);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}
