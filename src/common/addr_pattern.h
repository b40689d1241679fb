/* Address pattern lists with OpenSSH's from="..." semantics: comma-separated
 * entries, each an address ("10.0.0.7", "::1"), a CIDR block
 * ("10.0.0.0/8", "fd00::/8"), or a pattern with `*` (any run of characters)
 * and `?` (one character) matched against the address as text; any entry
 * may start with `!` to negate it. A source matches the list when at least
 * one plain entry matches and no negated entry does. Names are never
 * resolved: an entry such as "*.example.com" only matches an address
 * spelled that way, which none is. */
#ifndef CONVOCATE_COMMON_ADDR_PATTERN_H
#define CONVOCATE_COMMON_ADDR_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_PATTERN_MAX_LEN 4096 /* a whole list */
#define ADDR_PATTERN_MAX_ENTRIES 256

/* 0 when list is well formed (bounded; no empty entry; no whitespace or
 * control characters; every entry with '/' a valid CIDR block with no host
 * bits set); -1 with err naming the first bad entry. */
int addr_pattern_check(const char *list, char *err, size_t errlen);

/* True when ip (a numeric IPv4 or IPv6 address) matches list. A list that
 * fails addr_pattern_check matches nothing. */
bool addr_pattern_match(const char *list, const char *ip);

#endif
