#include "common/array.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int grow_array(void *itemsp, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size) {
            errno = ENOMEM;
            return -1;
        }
        n *= 2;
    }
    /* The caller's pointer is read and written as bytes: itemsp may point
     * to any object pointer type, which void ** may not alias. */
    void *items;
    memcpy(&items, itemsp, sizeof items);
    void *grown = realloc(items, n * size);
    if (grown == NULL)
        return -1;
    memcpy(itemsp, &grown, sizeof grown);
    *cap = n;
    return 0;
}
