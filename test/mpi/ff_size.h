/* ff_size.h: the one size syntax, and the one whole-number syntax, of the C test and benchmark programs'
 * options (ffcheck_*, ffbench_*, rawstream): the ff_size library (test/mpi/CMakeLists.txt). */
#ifndef FF_SIZE_H
#define FF_SIZE_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes with an optional K, M or G suffix (powers of 1024; "K", "KB" and "KiB" alike, any case) and an
 * optional offset: "4097", "64M", "1M+13", "2GiB-1". False for anything else, a negative result or one
 * that does not fit; range checks are the caller's. */
bool ff_parse_size(const char *text, size_t *out);
/* A comma-separated list of such sizes ("8,64K,1M+13") into out[0..cap): the count, or 0 when an item is
 * empty or not a size, or there are more than `cap`. */
size_t ff_parse_size_list(const char *text, size_t *out, size_t cap);
/* A whole decimal number from min to max: "64", not "64x", "", "0x40" or one out of range. The counts of
 * the same programs' options (--iterations, --window, ...). */
bool ff_parse_whole(const char *text, long min, long max, long *out);

#endif
