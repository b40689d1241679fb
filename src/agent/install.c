/* STUB: replaced by convocate-agent install. */
#include <stdio.h>

#include "agent/install.h"

int agent_install(const install_options *opt)
{
    (void)opt;
    fprintf(stderr, "convocate-agent: install is not implemented yet\n");
    return 1;
}
