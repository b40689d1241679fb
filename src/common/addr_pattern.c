/* OpenSSH-style address pattern lists (from="..."); see addr_pattern.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/addr_pattern.h"

#define ENTRY_MAX 255 /* one entry of a list */

typedef struct {
    int family; /* AF_INET or AF_INET6 */
    unsigned char bytes[16];
} address;

/* A numeric address; an IPv4-mapped IPv6 address counts as IPv4, so that
 * "10.0.0.0/8" matches a peer seen through a dual-stack socket. */
static bool parse_address(const char *s, address *a)
{
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, s, a->bytes) == 1) {
        a->family = AF_INET;
        return true;
    }
    struct in6_addr v6;
    if (inet_pton(AF_INET6, s, &v6) != 1)
        return false;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
        a->family = AF_INET;
        memcpy(a->bytes, &v6.s6_addr[12], 4);
    } else {
        a->family = AF_INET6;
        memcpy(a->bytes, &v6, 16);
    }
    return true;
}

static int family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

/* True when the first bits bits of a and b are equal. */
static bool same_prefix(const address *a, const address *b, int bits)
{
    if (a->family != b->family)
        return false;
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a->bytes, b->bytes, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a->bytes[whole] & mask) == (b->bytes[whole] & mask);
}

/* "addr/bits" with bits in decimal and no host bit set, as sshd wants. */
static int parse_cidr(const char *entry, address *net, int *bits)
{
    char addr_text[ENTRY_MAX + 1];
    const char *slash = strchr(entry, '/');
    size_t alen = (size_t)(slash - entry);
    if (alen == 0 || alen > ENTRY_MAX)
        return -1;
    memcpy(addr_text, entry, alen);
    addr_text[alen] = '\0';
    if (!parse_address(addr_text, net))
        return -1;
    const char *p = slash + 1;
    int n = 0, digits = 0;
    for (; isdigit((unsigned char)*p) && digits < 4; p++, digits++)
        n = n * 10 + (*p - '0');
    if (digits == 0 || *p != '\0' || n > family_bits(net->family))
        return -1;
    address host = *net;
    for (int i = n; i < family_bits(net->family); i++)
        host.bytes[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
    if (memcmp(host.bytes, net->bytes, sizeof host.bytes) != 0)
        return -1; /* host bits set: a typo more often than intent */
    *bits = n;
    return 0;
}

/* `*` and `?` glob, case-insensitive, without recursion: on a mismatch
 * after a star, the star takes one more character and matching resumes. */
static bool glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s != '\0') {
        if (*pat == '*') {
            star = pat++;
            resume = s;
        } else if (*pat != '\0' &&
                   (*pat == '?' || tolower((unsigned char)*pat) == tolower((unsigned char)*s))) {
            pat++;
            s++;
        } else if (star != NULL) {
            pat = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

/* One entry (without its '!') against ip; -1 when the entry is malformed. */
static int entry_matches(const char *entry, const char *ip, const address *ip_addr, bool ip_ok)
{
    if (strchr(entry, '/') != NULL) {
        address net;
        int bits;
        if (parse_cidr(entry, &net, &bits) < 0)
            return -1;
        return ip_ok && same_prefix(ip_addr, &net, bits);
    }
    address lit;
    if (strpbrk(entry, "*?") == NULL && parse_address(entry, &lit))
        return ip_ok && same_prefix(ip_addr, &lit, family_bits(lit.family));
    return glob_match(entry, ip);
}

static bool entry_char_ok(char c)
{
    return c > ' ' && c < 0x7f && c != '"';
}

static int bad_list(char *err, size_t errlen, const char *what, const char *entry)
{
    if (*entry == '\0')
        snprintf(err, errlen, "%s", what);
    else
        snprintf(err, errlen, "entry \"%.64s\" %s", entry, what);
    return -1;
}

/* Walks the list: calls back each entry as a C string. Returns -1 with err
 * filled on a malformed list, else 0. *positive and *negative say whether
 * some plain and some negated entry matched ip (when ip is not NULL). */
static int walk(const char *list, const char *ip, bool *positive, bool *negative, char *err,
                size_t errlen)
{
    address ip_addr = {0};
    bool ip_ok = ip != NULL && parse_address(ip, &ip_addr);
    size_t total = strnlen(list, ADDR_PATTERN_MAX_LEN + 1), entries = 0;
    if (total > ADDR_PATTERN_MAX_LEN)
        return bad_list(err, errlen, "the list is longer than 4096 characters", "");
    const char *p = list;
    for (;;) {
        char entry[ENTRY_MAX + 1];
        size_t len = strcspn(p, ",");
        if (len == 0 || len > ENTRY_MAX || ++entries > ADDR_PATTERN_MAX_ENTRIES)
            return bad_list(err, errlen,
                            "an entry is empty or over 255 characters, or there are over 256", "");
        memcpy(entry, p, len);
        entry[len] = '\0';
        for (size_t i = 0; i < len; i++)
            if (!entry_char_ok(entry[i]))
                return bad_list(err, errlen, "holds a space, quote or control character", entry);
        bool negated = entry[0] == '!';
        int m = entry_matches(entry + negated, ip ? ip : "", &ip_addr, ip_ok);
        if (m < 0 || (negated && entry[1] == '\0'))
            return bad_list(err, errlen, "is not a valid address or address block", entry);
        if (m > 0)
            *(negated ? negative : positive) = true;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

int addr_pattern_check(const char *list, char *err, size_t errlen)
{
    bool positive = false, negative = false;
    return walk(list, NULL, &positive, &negative, err, errlen);
}

bool addr_pattern_match(const char *list, const char *ip)
{
    bool positive = false, negative = false;
    char err[128];
    if (walk(list, ip, &positive, &negative, err, sizeof err) < 0)
        return false;
    return positive && !negative;
}
