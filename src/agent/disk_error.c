#include "agent/disk_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool errno_is_disk_full(int errnum)
{
    return errnum == ENOSPC || errnum == EDQUOT;
}

void disk_error(char *err, size_t errlen, int errnum, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s%s: %s", errno_is_disk_full(errnum) ? DISK_FULL_PREFIX : "", what,
             strerror(errnum));
}
