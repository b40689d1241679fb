#include "ssh/channel_io.h"

#include <stdint.h>

int channel_write_all(ssh_channel ch, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        uint32_t n = len > CHANNEL_WRITE_CHUNK ? CHANNEL_WRITE_CHUNK : (uint32_t)len;
        int w = ssh_channel_write(ch, p, n);
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}
