#include "host/vm/request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vm_parse_count(const char *s, long min, long max, long *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1; /* strtol would accept " 4" and "-4" */
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

bool vm_username_is_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > VM_USERNAME_MAX || strcmp(s, "root") == 0)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

static bool label_is_valid(const char *s, size_t len)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyz0123456789-";
    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (memchr(ok, s[i], sizeof ok - 1) == NULL)
            return false;
    return true;
}

bool vm_domain_is_valid(const char *s)
{
    size_t total = strlen(s), labels = 0, last_len = 0;
    const char *last = s;
    if (total == 0 || total > VM_DOMAIN_MAX)
        return false;
    for (const char *p = s;; p++) {
        size_t len = strcspn(p, ".");
        if (!label_is_valid(p, len))
            return false;
        labels++;
        last = p;
        last_len = len;
        p += len;
        if (*p == '\0')
            break;
    }
    return labels >= 2 && strspn(last, "0123456789") != last_len;
}
