/* The one spelling of a session container's name. Its own file: callers
 * that need only the name (the attach relay, migrate, tests that fake the
 * driver) link it without the driver. */
#include <stdio.h>

#include "engine/docker.h"

void engine_container_name(const char *uuid, char out[ENGINE_CONTAINER_NAME_LEN])
{
    snprintf(out, ENGINE_CONTAINER_NAME_LEN, ENGINE_CONTAINER_PREFIX "%.36s", uuid);
}
