/* STUB: replaced by the Engine API driver. */
#include <stdio.h>
#include <stdlib.h>

#include "agent/docker.h"

struct docker_client {
    int unused;
};

docker_client *docker_new(const char *url, char *err, size_t errlen)
{
    (void)url; (void)err; (void)errlen;
    return calloc(1, sizeof(docker_client));
}
void docker_free(docker_client *d) { free(d); }
int docker_ping(docker_client *d, char *err, size_t errlen)
{
    (void)d;
    snprintf(err, errlen, "docker driver not implemented");
    return -1;
}
int docker_start_session(docker_client *d, const docker_run_spec *spec, char *err, size_t errlen)
{
    (void)spec;
    return docker_ping(d, err, errlen);
}
int docker_stop_session(docker_client *d, const char *uuid, int grace_s, char *err, size_t errlen)
{
    (void)uuid; (void)grace_s;
    return docker_ping(d, err, errlen);
}
int docker_list_sessions(docker_client *d, const char *agent_id, docker_session_info **out,
                         size_t *n, char *err, size_t errlen)
{
    (void)agent_id; *out = NULL; *n = 0;
    return docker_ping(d, err, errlen);
}
int docker_session_running(docker_client *d, const char *uuid, bool *running, char *err,
                           size_t errlen)
{
    (void)uuid; *running = false;
    return docker_ping(d, err, errlen);
}
int docker_detach_clients(docker_client *d, const char *uuid, char *err, size_t errlen)
{
    (void)uuid;
    return docker_ping(d, err, errlen);
}
