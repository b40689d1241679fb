#include "provision/shell_host.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/layout.h"
#include "common/paths.h"

gid_t shell_claude_gid(runner *r)
{
    gid_t gid;
    if (r->ops->lookup_group(r, "claude", &gid) == 0)
        return gid;
    return CLAUDE_GID_DEFAULT;
}

int shell_dns_steps(plan *p, runner *r)
{
    if (plan_dir(p, r, "/var/lib/convocate/", "/var/lib/convocate", 0755, 0, 0) < 0 ||
        plan_file_once(p, r, "dnsmasq-hosts", SHELL_DNSMASQ_HOSTS, "", 0, 0644, 0, 0) < 0)
        return -1;
    if (!r->ops->has_program(r, "dnsmasq")) {
        printf("  dnsmasq drop-in: skipped (dnsmasq is not installed)\n");
        return 0;
    }
    char hosts[PATH_BUF], *conf = NULL;
    if (runner_real_path(r, SHELL_DNSMASQ_HOSTS, hosts, sizeof hosts) < 0)
        return plan_fail(p, "dnsmasq drop-in", "the hosts file path is too long");
    int len = asprintf(&conf,
                       "# Installed by convocate: session DNS names, kept by status-serve.\n"
                       "addn-hosts=%s\n",
                       hosts);
    if (len < 0)
        return plan_fail(p, "dnsmasq drop-in", "out of memory");
    int rc =
        plan_file(p, r, "dnsmasq drop-in", SHELL_DNSMASQ_DROPIN, conf, (size_t)len, 0644, 0, 0);
    free(conf);
    return rc;
}
