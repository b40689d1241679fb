/* The options field of an authorized_keys line (the part before the key
 * type, e.g. `from="10.0.0.0/8,!10.0.0.9"`), as the SPEC 5 listeners take
 * it: from= is honoured, every other option refuses the key. */
#ifndef CONVOCATE_SSH_AUTH_OPTIONS_H
#define CONVOCATE_SSH_AUTH_OPTIONS_H

#include <stddef.h>

enum auth_options_result {
    AUTH_OPTIONS_OK,      /* *from is the from= list (malloc'd) or NULL */
    AUTH_OPTIONS_REFUSED, /* why says what, naming the option */
    AUTH_OPTIONS_NOMEM,
};

/* Parses opts[0..len): comma-separated `name` or `name="value"` (a `\"`
 * inside the quotes is a quote), names case-insensitive as in sshd. */
enum auth_options_result auth_options_parse(const char *opts, size_t len, char **from, char *why,
                                            size_t whylen);

#endif
