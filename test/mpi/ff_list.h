/* ff_list.h: the one comma-separated name list of the MPI test and benchmark programs (--only, --ops, ...). */
#ifndef FF_LIST_H
#define FF_LIST_H

#include <stdbool.h>

/* Whether `name` is one of the comma-separated names of `list`, whole names only; a NULL list holds every
 * name (the option was not given). */
bool ff_listed(const char *list, const char *name);

#endif
