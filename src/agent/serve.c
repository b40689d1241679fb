/* STUB: replaced by the tcp/222 listener. */
#include <stdio.h>

#include "agent/serve.h"

int agent_serve(const agent_config *cfg)
{
    (void)cfg;
    fprintf(stderr, "convocate-agent: serve is not implemented yet\n");
    return 1;
}
