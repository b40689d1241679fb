#include "provision/conf_dir.h"

#include "common/layout.h"

#define PARENT_MODE 0750

mode_t conf_dir_mode(runner *r)
{
    gid_t gid;
    return r->ops->lookup_group(r, RSYSLOG_READER_GROUP, &gid) == 0 ? RSYSLOG_SHARED_PARENT_MODE
                                                                    : PARENT_MODE;
}
