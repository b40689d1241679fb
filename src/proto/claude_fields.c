#include "proto/claude_fields.h"

#include <string.h>

bool claude_value_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > CLAUDE_VALUE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static bool is_model_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool claude_model_is_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n >= CLAUDE_MODEL_MAX || !is_model_char(s[n]))
            return false;
    return n > 0;
}

/* ":<1..65535>" or nothing, exactly the n bytes at p. */
static bool port_suffix_is_valid(const char *p, size_t n)
{
    if (n == 0)
        return true;
    if (p[0] != ':' || n < 2 || n > 6)
        return false;
    long port = 0;
    for (size_t i = 1; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        port = port * 10 + (p[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

/* host[:port] of an authority (userinfo already cut off), n bytes. */
static bool host_port_is_valid(const char *p, size_t n)
{
    if (n > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (close == NULL || close == p + 1)
            return false;
        size_t used = (size_t)(close - p) + 1;
        return port_suffix_is_valid(close + 1, n - used);
    }
    const char *colon = memchr(p, ':', n);
    size_t host_len = colon ? (size_t)(colon - p) : n;
    if (host_len == 0 || memchr(p, '[', host_len) || memchr(p, ']', host_len))
        return false;
    return port_suffix_is_valid(p + host_len, n - host_len);
}

bool claude_base_url_is_valid(const char *s)
{
    size_t len = strlen(s);
    if (len > CLAUDE_BASE_URL_MAX || !claude_value_is_valid(s, len))
        return false;
    size_t scheme;
    if (strncmp(s, "http://", 7) == 0)
        scheme = 7;
    else if (strncmp(s, "https://", 8) == 0)
        scheme = 8;
    else
        return false;
    const char *auth = s + scheme;
    size_t n = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < n; i++)
        if (auth[i] == '@')
            at = auth + i; /* the last '@' ends any userinfo */
    if (at != NULL) {
        n -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    return host_port_is_valid(auth, n);
}
