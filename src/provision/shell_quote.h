/* Building the one command string an SSH exec request carries. The remote
 * side hands it to the target user's login shell, so every word is quoted
 * for a POSIX shell: nothing an operator typed is ever read as syntax. */
#ifndef CONVOCATE_PROVISION_SHELL_QUOTE_H
#define CONVOCATE_PROVISION_SHELL_QUOTE_H

#include <stddef.h>

/* Appends one word to buf (size bytes, NUL-terminated), single-quoted
 * unless it is a plain word of [A-Za-z0-9_/.,:+-] that no shell reads
 * specially; returns the length the result needs (like snprintf). */
size_t shell_quote_word(const char *word, char *buf, size_t size);

/* The words of argv (NULL-terminated) quoted and joined by single spaces;
 * malloc'd, NULL when out of memory or argv is empty. */
char *shell_quote_argv(char *const argv[]);

#endif
