/* Growing a malloc'd array by doubling. */
#ifndef CONVOCATE_COMMON_ARRAY_H
#define CONVOCATE_COMMON_ARRAY_H

#include <stddef.h>

/* Makes room for at least need elements of size bytes in the array that
 * itemsp points to (a T **, passed as &array), whose capacity is *cap: the
 * capacity doubles from first (or from *cap) until it holds need. 0, or -1
 * when out of memory, with the array and *cap as they were. */
int grow_array(void *itemsp, size_t *cap, size_t need, size_t size, size_t first);

#endif
