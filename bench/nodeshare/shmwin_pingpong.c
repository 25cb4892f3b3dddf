/*
 * ffbench_shmwin_pingpong: the load/store round trip through an MPI-3 shared window
 * (MPI_Win_allocate_shared on MPI_COMM_TYPE_SHARED), two ranks, no MPI call on the timed path.
 * Rank 0 stores sequence number i into the ping flag (its own cache line) and spins until the pong flag
 * holds i; rank 1 spins on ping and answers in pong. Release stores and acquire loads (C11 atomics on the
 * window memory, which both ranks map) order the flags. Prints one line per round:
 *   round R: median N ns, min M ns (I round trips)
 * and a last line with the median of the round medians. Run it once per configuration (two containers
 * of one host under ffrun, two ranks in one namespace with plain mpirun) and interleave the runs.
 *   ffbench_shmwin_pingpong [--iterations I] [--rounds R]
 */
#define _GNU_SOURCE
#include "ff_cli.h"

#include <limits.h>
#include <mpi.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t) t.tv_sec * 1000000000 + t.tv_nsec;
}

static int compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    long iterations = 20000, rounds = 5;
    int world_rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    const ff_option options[] = {
        {"iterations", FF_OPT_LONG, &iterations, 1, LONG_MAX, "round trips per round"},
        {"rounds", FF_OPT_LONG, &rounds, 1, LONG_MAX, "rounds (the median is reported)"},
        {0},
    };
    const ff_cli cli = {.program = "ffbench_shmwin_pingpong",
                        .usage = "[--iterations I] [--rounds R]   (under mpirun -n 2)",
                        .tables = {options}};
    /* Every rank parses the same arguments; rank 0 says why and every rank exits 2. */
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, world_rank == 0);
    if (status != FF_CLI_PROCEED) {
        MPI_Finalize();
        return status;
    }
    MPI_Comm shared;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &shared);
    int rank, size;
    MPI_Comm_rank(shared, &rank);
    MPI_Comm_size(shared, &size);
    if (size != 2 || iterations < 1 || rounds < 1) {
        if (rank == 0)
            fprintf(stderr,
                    "ffbench_shmwin_pingpong: needs exactly 2 ranks in one MPI_COMM_TYPE_SHARED group (got %d)\n",
                    size);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    /* ping and pong flags on separate cache lines, both in rank 0's segment */
    _Atomic int64_t *flags;
    MPI_Win win;
    MPI_Win_allocate_shared(rank == 0 ? 256 : 0, 1, MPI_INFO_NULL, shared, &flags, &win);
    MPI_Aint bytes;
    int unit;
    MPI_Win_shared_query(win, 0, &bytes, &unit, &flags);
    _Atomic int64_t *ping = flags, *pong = flags + 8;
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    if (rank == 0) {
        atomic_store_explicit(ping, 0, memory_order_relaxed);
        atomic_store_explicit(pong, 0, memory_order_relaxed);
    }
    MPI_Win_sync(win);
    MPI_Barrier(shared);
    MPI_Win_sync(win);
    int64_t *samples = malloc(sizeof(int64_t) * (size_t) iterations);
    int64_t *medians = malloc(sizeof(int64_t) * (size_t) rounds);
    int64_t sequence = 0;
    for (long round = 0; round < rounds; ++round) {
        for (long i = -iterations / 10; i < iterations; ++i) { /* the first tenth warms up, untimed */
            ++sequence;
            if (rank == 0) {
                const int64_t start = now_ns();
                /* release: nothing to publish but the flag; acquire pairs with rank 1's release */
                atomic_store_explicit(ping, sequence, memory_order_release);
                while (atomic_load_explicit(pong, memory_order_acquire) != sequence) {
                }
                if (i >= 0) samples[i] = now_ns() - start;
            } else {
                while (atomic_load_explicit(ping, memory_order_acquire) != sequence) {
                }
                atomic_store_explicit(pong, sequence, memory_order_release);
            }
        }
        if (rank == 0) {
            qsort(samples, (size_t) iterations, sizeof *samples, compare);
            medians[round] = samples[iterations / 2];
            printf("round %ld: median %lld ns, min %lld ns (%ld round trips)\n", round, (long long) medians[round],
                   (long long) samples[0], iterations);
        }
    }
    if (rank == 0) {
        qsort(medians, (size_t) rounds, sizeof *medians, compare);
        printf("shmwin round trip: median of %ld round medians %lld ns\n", rounds, (long long) medians[rounds / 2]);
    }
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    MPI_Comm_free(&shared);
    free(samples);
    free(medians);
    MPI_Finalize();
    return 0;
}
