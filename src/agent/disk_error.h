/* Error texts for failed writes to the agent's own disk. A full disk is the
 * one such failure an operator can fix without reading code, so it is named
 * first, in words, wherever a write can hit it (session homes, metadata,
 * locks, settings, claude.env). */
#ifndef CONVOCATE_AGENT_DISK_ERROR_H
#define CONVOCATE_AGENT_DISK_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#define DISK_FULL_PREFIX "no space left on the agent's disk: "

/* ENOSPC or EDQUOT: nothing but freeing space will help. */
bool errno_is_disk_full(int errnum);

/* Writes "<what>: <strerror(errnum)>" into err, what formatted from fmt,
 * behind DISK_FULL_PREFIX when errnum says the disk is full. Pass errno as
 * errnum: it is read before anything here can change it. */
void disk_error(char *err, size_t errlen, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
