/* Shared by the libFuzzer harnesses: each one feeds one parser the bytes
 * libFuzzer makes up and checks what the parser promises (bounds, round
 * trips), so a wrong answer is found like a crash is. */
#ifndef CONVOCATE_FUZZ_H
#define CONVOCATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The entry point every harness defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a NUL-terminated string (malloc'd; NULs inside stay, so C string
 * parsers see only the part before the first one). */
char *fuzz_cstring(const uint8_t *data, size_t size);

/* Writes data to this process's scratch file and returns its path, for
 * parsers that take a path. The file is a real file (not /proc/self/fd):
 * the readers refuse symlinks. */
const char *fuzz_file(const uint8_t *data, size_t size);

/* Aborts (a crash libFuzzer reports, with the input) when cond is false. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(#cond, __FILE__, __LINE__);                                                  \
    } while (0)
void fuzz_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#endif
