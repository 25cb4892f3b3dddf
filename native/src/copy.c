#include "freeflow.h"

#include <string.h>

/* glibc's memcpy copies blocks above about 2 KiB with `rep movsb`, which here runs at either full or
 * about 60% speed for a whole process depending on where its buffers landed: measured as bimodal 4 MiB
 * bandwidth (10 vs 17 GB/s) across otherwise identical runs. Fixed-size block copies compile to plain
 * vector loads and stores, which do not have that failure mode. */
void ff_copy(void *restrict dst, const void *restrict src, size_t len)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (len >= 256) {
        memcpy(d, s, 256);
        d += 256;
        s += 256;
        len -= 256;
    }
    memcpy(d, s, len);
}
