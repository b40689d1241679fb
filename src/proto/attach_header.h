/* convocate-agent-attach header line (SPEC 9): {"id":"<uuid>","cols":120,"rows":40} */
#ifndef CONVOCATE_PROTO_ATTACH_HEADER_H
#define CONVOCATE_PROTO_ATTACH_HEADER_H

#include <stddef.h>

#include "common/ids.h"

#define ATTACH_HEADER_MAX 4096

typedef struct {
    char id[UUID_STR_LEN];
    int cols; /* 80 when absent */
    int rows; /* 24 when absent */
} attach_header;

/* Unknown fields are ignored; id must be a canonical UUIDv4; cols and rows
 * must be integers in 1..1000. Returns 0, or -1 with err filled. */
int attach_header_decode(const char *line, size_t len, attach_header *h, char *err, size_t errlen);

#endif
