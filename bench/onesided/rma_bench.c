/*
 * ffbench_rma: IMB-RMA-style one-sided microbenchmarks between 2 ranks, without IMB (docs/onesided.md,
 * "Cost"). Rank 0 is the origin, rank 1 the passive target (it waits in MPI_Barrier, which progresses, as
 * in IMB). The window is MPI_Alloc_mem memory given to MPI_Win_create, inside one MPI_Win_lock_all epoch.
 * For each operation and size:
 *   latency:   one operation then MPI_Win_flush, repeated (IMB's NON-AGGREGATE mode); usec per operation
 *   bandwidth: a batch of `window` operations, one MPI_Win_flush (IMB's AGGREGATE mode); MB/s (10^6 B/s)
 * Operations: put (MPI_Put), get (MPI_Get), acc (MPI_Accumulate of MPI_INT with MPI_SUM). The first
 * int the target holds after the acc runs is checked (it must equal the count of additions of 1), and a
 * put/get round trip is checked byte for byte once per size, so a broken path cannot report a speed.
 * Output: one line per (operation, size, mode) on stdout from rank 0:
 *   rma op=put bytes=65536 mode=bandwidth value=1234.5 unit=MB/s
 *   ffbench_rma [--sizes 8,64K,4M] [--iterations N] [--window W] [--ops put,get,acc]
 * (sizes in the syntax of native/cli/ff_cli.h, the one of every C program here)
 */
#define _GNU_SOURCE
#include "ff_cli.h"

#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SIZES = 16 };

static void die(const char *message)
{
    fprintf(stderr, "ffbench_rma: %s\n", message);
    MPI_Abort(MPI_COMM_WORLD, 2);
}

/* One operation of `bytes` at displacement 0 of the target. */
static void issue(const char *op, unsigned char *origin, unsigned char *result, size_t bytes, MPI_Win win)
{
    if (!strcmp(op, "put")) {
        MPI_Put(origin, (int) bytes, MPI_BYTE, 1, 0, (int) bytes, MPI_BYTE, win);
    } else if (!strcmp(op, "get")) {
        MPI_Get(result, (int) bytes, MPI_BYTE, 1, 0, (int) bytes, MPI_BYTE, win);
    } else {
        const int ints = (int) (bytes / sizeof(int));
        MPI_Accumulate(origin, ints, MPI_INT, 1, 0, ints, MPI_INT, MPI_SUM, win);
    }
}

/* Iterations for a size: IMB-like, fewer for large messages so each size takes comparable time. */
static long iterations_for(size_t bytes, long requested)
{
    if (requested > 0) return requested;
    if (bytes <= 4096) return 2000;
    if (bytes <= 65536) return 400;
    return 40;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    size_t sizes[MAX_SIZES] = {8, 65536, 4194304};
    ff_size_list size_list = {sizes, MAX_SIZES, 3};
    long requested_iterations = 0, window = 32;
    const char *ops = "put,get,acc";
    const ff_option options[] = {
        {"sizes", FF_OPT_SIZES, &size_list, 4, 1L << 30, "bytes per operation, multiples of 4 (accumulate adds ints)"},
        {"iterations", FF_OPT_LONG, &requested_iterations, 0, LONG_MAX, "operations per size (0: fewer for larger)"},
        {"window", FF_OPT_LONG, &window, 1, INT_MAX, "operations per synchronisation"},
        {"ops", FF_OPT_STRING, &ops, 0, 0, "comma-separated operations: put,get,acc", .value_name = "LIST"},
        {0},
    };
    const ff_cli cli = {.program = "ffbench_rma", .usage = "[options]   (under mpirun -n 2)", .tables = {options}};
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, rank == 0);
    if (status != FF_CLI_PROCEED) {
        MPI_Finalize();
        return status;
    }
    const int nsizes = (int) size_list.count;
    size_t largest = 0;
    for (int s = 0; s < nsizes; ++s) {
        if (sizes[s] < sizeof(int) || sizes[s] % sizeof(int) != 0)
            die("sizes must be multiples of 4 bytes (accumulate adds ints)");
        if (sizes[s] > largest) largest = sizes[s];
    }
    if (size != 2) die("needs exactly 2 ranks");

    unsigned char *memory, *origin, *result;
    MPI_Alloc_mem((MPI_Aint) largest, MPI_INFO_NULL, &memory);
    origin = malloc(largest);
    result = malloc(largest);
    if (!origin || !result) die("out of memory");
    memset(memory, 0, largest);
    MPI_Win win;
    MPI_Win_create(memory, (MPI_Aint) largest, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &win);

    static const char *const all_ops[] = {"put", "get", "acc"};
    int failed = 0;
    for (int o = 0; o < 3; ++o) {
        const char *op = all_ops[o];
        if (!ff_listed(ops, op)) continue;
        for (int s = 0; s < nsizes; ++s) {
            const size_t bytes = sizes[s];
            const long iterations = iterations_for(bytes, requested_iterations);
            /* the target's memory starts at zero for every (operation, size) */
            MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win);
            memset(memory, 0, largest);
            MPI_Win_unlock(rank, win);
            MPI_Barrier(MPI_COMM_WORLD);
            long accumulated = 0;
            if (rank == 0) {
                for (size_t i = 0; i < bytes; ++i) origin[i] = (unsigned char) (i * 7 + bytes);
                if (!strcmp(op, "acc")) {
                    for (size_t i = 0; i < bytes / sizeof(int); ++i) ((int *) origin)[i] = 1;
                }
                MPI_Win_lock_all(0, win);
                /* warm-up and check: one operation, flushed */
                issue(op, origin, result, bytes, win);
                MPI_Win_flush(1, win);
                accumulated += !strcmp(op, "acc");
                if (!strcmp(op, "put")) {
                    MPI_Get(result, (int) bytes, MPI_BYTE, 1, 0, (int) bytes, MPI_BYTE, win);
                    MPI_Win_flush(1, win);
                    if (memcmp(result, origin, bytes) != 0) {
                        fprintf(stderr, "ffbench_rma: put of %zu bytes: the target does not hold what was put\n",
                                bytes);
                        failed = 1;
                    }
                }
                double start = MPI_Wtime();
                for (long i = 0; i < iterations; ++i) {
                    issue(op, origin, result, bytes, win);
                    MPI_Win_flush(1, win);
                }
                const double latency_us = (MPI_Wtime() - start) * 1e6 / (double) iterations;
                accumulated += !strcmp(op, "acc") ? iterations : 0;
                /* at least 4 batches: one preempted batch must not be the whole measurement */
                const long batches = iterations / window > 4 ? iterations / window : 4;
                start = MPI_Wtime();
                for (long b = 0; b < batches; ++b) {
                    for (int w = 0; w < window; ++w) issue(op, origin, result, bytes, win);
                    MPI_Win_flush(1, win);
                }
                const double seconds = MPI_Wtime() - start;
                accumulated += !strcmp(op, "acc") ? batches * window : 0;
                MPI_Win_unlock_all(win);
                printf("rma op=%s bytes=%zu mode=latency value=%.3f unit=us\n", op, bytes, latency_us);
                printf("rma op=%s bytes=%zu mode=bandwidth value=%.1f unit=MB/s\n", op, bytes,
                       (double) bytes * (double) (batches * window) / seconds / 1e6);
                fflush(stdout);
            }
            MPI_Bcast(&accumulated, 1, MPI_LONG, 0, MPI_COMM_WORLD);
            MPI_Barrier(MPI_COMM_WORLD); /* the target progresses the origin's operations here */
            if (rank == 1) {
                MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win);
                int first, last;
                memcpy(&first, memory, sizeof(int));
                memcpy(&last, memory + bytes - sizeof(int), sizeof(int));
                MPI_Win_unlock(rank, win);
                if (!strcmp(op, "acc") && (first != accumulated || last != accumulated)) {
                    fprintf(stderr, "ffbench_rma: accumulate of %zu bytes: the target holds %d and %d, expected %ld\n",
                            bytes, first, last, accumulated);
                    failed = 1;
                }
            }
        }
    }
    int any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    MPI_Win_free(&win);
    MPI_Free_mem(memory);
    free(origin);
    free(result);
    MPI_Finalize();
    return any_failed ? 1 : 0;
}
