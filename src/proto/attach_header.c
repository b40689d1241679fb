#include "proto/attach_header.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int get_dimension(json_t *root, const char *key, int fallback, int *out, char *err,
                         size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (v == NULL) {
        *out = fallback;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000) {
        snprintf(err, errlen, "attach header: \"%s\" must be an integer from 1 to 1000", key);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

int attach_header_decode(const char *line, size_t len, attach_header *h, char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (len > ATTACH_HEADER_MAX) {
        snprintf(err, errlen, "attach header longer than %d bytes", ATTACH_HEADER_MAX);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "attach header: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "attach header: not a JSON object");
        goto out;
    }
    json_t *id = json_object_get(root, "id");
    if (!json_is_string(id)) {
        snprintf(err, errlen, "attach header: \"id\" must be a string");
        goto out;
    }
    if (!uuid_v4_is_valid(json_string_value(id))) {
        snprintf(err, errlen, "invalid id \"%.64s\"", json_string_value(id));
        goto out;
    }
    memcpy(h->id, json_string_value(id), UUID_STR_LEN);
    if (get_dimension(root, "cols", 80, &h->cols, err, errlen) < 0 ||
        get_dimension(root, "rows", 24, &h->rows, err, errlen) < 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}
