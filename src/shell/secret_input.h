/* The secret of `convocate auth set` (SPEC 15): read from a file or from
 * stdin, never from argv (where `ps` and shell history would show it).
 * Checked before it is sent: one trailing newline is trimmed; an empty
 * secret, one longer than 4096 bytes, or one holding a space, a control
 * character or a non-ASCII byte is refused. No error text holds the
 * secret's bytes. */
#ifndef CONVOCATE_SHELL_SECRET_INPUT_H
#define CONVOCATE_SHELL_SECRET_INPUT_H

#include <stddef.h>

#include "proto/claude_fields.h"

#define SECRET_BUF (CLAUDE_VALUE_MAX + 1)

/* Checks len raw bytes and copies the secret into out (size >= SECRET_BUF).
 * 0, or -1 with err saying what is wrong. */
int secret_from_bytes(const char *buf, size_t len, char *out, size_t size, char *err,
                      size_t errlen);

/* path "-" is stdin: on a terminal, one line is read with echo off after a
 * prompt on stderr; otherwise everything up to EOF. 0, or -1 with err. */
int secret_read(const char *path, char *out, size_t size, char *err, size_t errlen);

#endif
