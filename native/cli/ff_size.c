/* ff_size.c: the size and whole-number syntax of the C programs' options (ff_cli.h). */
#include "ff_cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
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
    enum { ITEM = 64, MOST = 64 };
    char items[MOST][ITEM];
    const size_t n = ff_split_list(text, &items[0][0], ITEM, cap < MOST ? cap : MOST);
    for (size_t i = 0; i < n; i++)
        if (!ff_parse_size(items[i], &out[i])) return 0;
    return n;
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

const char *ff_size_str(size_t n, char *buf, size_t len)
{
    const size_t kib = 1024, mib = kib * 1024, gib = mib * 1024;
    if (n >= gib && n % gib < kib)
        snprintf(buf, len, n % gib ? "%zu GiB+%zu" : "%zu GiB", n / gib, n % gib);
    else if (n >= gib && gib - n % gib < kib)
        snprintf(buf, len, "%zu GiB-%zu", n / gib + 1, gib - n % gib);
    else if (n >= mib && n % mib < kib)
        snprintf(buf, len, n % mib ? "%zu MiB+%zu" : "%zu MiB", n / mib, n % mib);
    else if (n >= mib && mib - n % mib < kib)
        snprintf(buf, len, "%zu MiB-%zu", n / mib + 1, mib - n % mib);
    else if (n >= kib && n % kib == 0)
        snprintf(buf, len, "%zu KiB", n / kib);
    else
        snprintf(buf, len, "%zu B", n);
    return buf;
}
