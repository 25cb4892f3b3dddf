/* ff_size.c: the size syntax of the C test and benchmark programs (ff_size.h). */
#include "ff_size.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool ff_parse_size(const char *text, size_t *out)
{
    const char *p = text;
    if (!isdigit((unsigned char) *p)) return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno) return false;
    p = end;
    unsigned long long unit = 1;
    switch (toupper((unsigned char) *p)) {
    case 'K': unit = 1ull << 10; break;
    case 'M': unit = 1ull << 20; break;
    case 'G': unit = 1ull << 30; break;
    default: break;
    }
    if (unit > 1) {
        p++;
        if (strncmp(p, "iB", 2) == 0)
            p += 2;
        else if (*p == 'B')
            p++;
    }
    if (v > (unsigned long long) INT64_MAX / unit) return false;
    long long total = (long long) (v * unit);
    if (*p == '+' || *p == '-') {
        int sign = *p == '+' ? 1 : -1;
        p++;
        if (!isdigit((unsigned char) *p)) return false;
        errno = 0;
        unsigned long long off = strtoull(p, &end, 10);
        if (errno || off > (unsigned long long) INT32_MAX) return false;
        p = end;
        total += sign * (long long) off;
    }
    if (*p || total < 0 || (unsigned long long) total > SIZE_MAX) return false;
    *out = (size_t) total;
    return true;
}

size_t ff_parse_size_list(const char *text, size_t *out, size_t cap)
{
    size_t n = 0;
    char item[64];
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item || n == cap) return 0;
        memcpy(item, p, len);
        item[len] = 0;
        if (!ff_parse_size(item, &out[n++])) return 0;
        if (!p[len]) return n;
        p += len + 1;
    }
}

bool ff_parse_whole(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    const long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) return false;
    *out = v;
    return true;
}
