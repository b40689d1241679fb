/* STUB: replaced by the PTY relay process side. */
#include <stdio.h>

#include "agent/attach.h"

int attach_proc_start(attach_proc *p, const char *docker_host, const char *uuid, int cols,
                      int rows, char *err, size_t errlen)
{
    (void)p; (void)docker_host; (void)uuid; (void)cols; (void)rows;
    snprintf(err, errlen, "attach not implemented");
    return -1;
}
int attach_proc_resize(attach_proc *p, int cols, int rows) { (void)p; (void)cols; (void)rows; return -1; }
void attach_proc_stop(attach_proc *p) { (void)p; }
