/* ff_list.c: the comma-separated list syntax of the C programs' options (ff_cli.h). */
#include "ff_cli.h"

#include <string.h>

bool ff_listed(const char *list, const char *name)
{
    if (!list) return true;
    const size_t want = strlen(name);
    for (const char *p = list; *p;) {
        const size_t len = strcspn(p, ",");
        if (len == want && strncmp(p, name, len) == 0) return true;
        p += len + (p[len] == ',');
    }
    return false;
}

size_t ff_split_list(const char *text, char *items, size_t size, size_t cap)
{
    size_t n = 0;
    for (const char *p = text;;) {
        const size_t len = strcspn(p, ",");
        if (len == 0 || len >= size || n == cap) return 0;
        memcpy(items + n * size, p, len);
        items[n * size + len] = 0;
        n++;
        if (!p[len]) return n;
        p += len + 1;
    }
}
