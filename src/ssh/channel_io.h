/* Writing to a blocking libssh channel. */
#ifndef CONVOCATE_SSH_CHANNEL_IO_H
#define CONVOCATE_SSH_CHANNEL_IO_H

#include <libssh/libssh.h>
#include <stddef.h>

/* Writes all len bytes to ch, at most CHANNEL_WRITE_CHUNK per call so
 * that no one call holds a large buffer against the peer's window.
 * 0, or -1 when the channel failed (ssh_get_error says why). */
#define CHANNEL_WRITE_CHUNK 16384
int channel_write_all(ssh_channel ch, const void *data, size_t len);

#endif
