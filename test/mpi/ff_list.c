#include "ff_list.h"

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
