/* ff_size.h: the one message-size syntax of the MPI test and benchmark programs (ffcheck_*, ffbench_mpi). */
#ifndef FF_SIZE_H
#define FF_SIZE_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes with an optional K, M or G suffix (powers of 1024; "K", "KB" and "KiB" alike, any case) and an
 * optional offset: "4097", "64M", "1M+13", "2GiB-1". False for anything else, a negative result or one
 * that does not fit; range checks are the caller's. */
bool ff_parse_size(const char *text, size_t *out);

#endif
