/* collectives.h: what ffcheck_collectives' two files (collectives.c, reductions.c) share. */
#ifndef FFCHECK_COLLECTIVES_H
#define FFCHECK_COLLECTIVES_H

#include "ffcheck.h"

/* One communicator of the set every subtest runs on. */
typedef struct {
    MPI_Comm comm;
    const char *name;
    int index; /* in the set; part of pattern keys */
    int rank, size;
} cctx;

/* Runs body once per communicator of the set (world, reversed, halves, parity-reversed). */
void for_each_comm(void (*body)(const cctx *c));
/* n bytes (plus FF_GUARD) of FF_POISON. */
unsigned char *poisoned(size_t n);

/* reductions.c */
void test_reduce(void);
void test_allreduce(void);
void test_reduce_scatter(void);
void test_scan(void);
/* An int64 SUM reduction of `count` elements on c, keyed by salt: this rank's input, and the check
 * of a result. */
void sum_int64_fill(const cctx *c, uint64_t salt, size_t count, int64_t *out);
void sum_int64_check(const cctx *c, uint64_t salt, size_t count, int64_t *got);

#endif
