/*
 * ffcheck_onesided: MPI one-sided communication among ranks of ONE container (or one host namespace).
 * Every rank exposes a window (MPI_Win_create), puts a checked block into every other rank's window
 * inside a fence epoch, gets it back, and accumulates into a counter; then the same through
 * MPI_Win_allocate. Prints PASS onesided / FAIL onesided from rank 0 and exits non-zero on any failure.
 *
 * Regression (found by validation, 2026-11-29): under ffrun --network freeflow the btl list is
 * `self,freeflow,tcp`, so ranks that share a container lose vader, the only BTL here with RDMA
 * operations; osc rdma then finds no BTL and MPI_Win_create fails with MPI_ERR_WIN, although the same
 * job works with --network overlay (`self,vader,tcp`) and on the bare host.
 *   ffcheck_onesided [--count N]      (N ints per peer block, default 4096)
 */
#include "ff_cli.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int value(int from, int to, int i)
{
    return from * 1000003 + to * 7919 + i;
}

static long run(MPI_Win win, int *base, int rank, int size, int count)
{
    long bad = 0;
    int *block = malloc(sizeof(int) * (size_t) count);
    int *back = malloc(sizeof(int) * (size_t) count);
    MPI_Win_fence(0, win);
    for (int peer = 0; peer < size; ++peer) {
        if (peer == rank) continue;
        for (int i = 0; i < count; ++i) block[i] = value(rank, peer, i);
        /* Each rank owns slot `rank` of the peer's window (slot size count ints, plus one counter). */
        MPI_Put(block, count, MPI_INT, peer, (MPI_Aint) rank * count, count, MPI_INT, win);
        MPI_Win_fence(0, win);
        MPI_Get(back, count, MPI_INT, peer, (MPI_Aint) rank * count, count, MPI_INT, win);
        MPI_Win_fence(0, win);
        for (int i = 0; i < count; ++i) {
            if (back[i] != block[i] && bad++ < 3) {
                fprintf(stderr, "rank %d: get from %d differs at %d (%d != %d)\n", rank, peer, i, back[i], block[i]);
            }
        }
    }
    int one = 1;
    for (int peer = 0; peer < size; ++peer) {
        MPI_Accumulate(&one, 1, MPI_INT, peer, (MPI_Aint) size * count, 1, MPI_INT, MPI_SUM, win);
    }
    MPI_Win_fence(0, win);
    for (int from = 0; from < size; ++from) {
        if (from == rank) continue;
        for (int i = 0; i < count; ++i) {
            if (base[(size_t) from * count + i] != value(from, rank, i) && bad++ < 3) {
                fprintf(stderr, "rank %d: window slot of %d differs at %d\n", rank, from, i);
            }
        }
    }
    if (base[(size_t) size * count] != size && bad++ < 3) {
        fprintf(stderr, "rank %d: accumulated counter %d != %d\n", rank, base[(size_t) size * count], size);
    }
    free(block);
    free(back);
    return bad;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, count = 4096;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long count_value = count;
    const ff_option options[] = {
        {"count", FF_OPT_LONG, &count_value, 1, 1 << 24, "ints per block each rank puts to every other"},
        {0},
    };
    const ff_cli cli = {.program = "ffcheck_onesided", .usage = "[--count N]   (under mpirun)", .tables = {options}};
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, rank == 0);
    if (status != FF_CLI_PROCEED) {
        MPI_Finalize();
        return status;
    }
    count = (int) count_value;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    const MPI_Aint bytes = (MPI_Aint) sizeof(int) * ((MPI_Aint) size * count + 1);
    long bad = 0;
    char message[MPI_MAX_ERROR_STRING];
    int length;

    int *mem = calloc(1, (size_t) bytes);
    MPI_Win win;
    int rc = MPI_Win_create(mem, bytes, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &win);
    if (rc != MPI_SUCCESS) {
        MPI_Error_string(rc, message, &length);
        fprintf(stderr, "rank %d: MPI_Win_create failed: %s\n", rank, message);
        bad++;
    } else {
        bad += run(win, mem, rank, size, count);
        MPI_Win_free(&win);
    }

    int *abase = NULL;
    rc = MPI_Win_allocate(bytes, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &abase, &win);
    if (rc != MPI_SUCCESS) {
        MPI_Error_string(rc, message, &length);
        fprintf(stderr, "rank %d: MPI_Win_allocate failed: %s\n", rank, message);
        bad++;
    } else {
        memset(abase, 0, (size_t) bytes);
        MPI_Barrier(MPI_COMM_WORLD);
        bad += run(win, abase, rank, size, count);
        MPI_Win_free(&win);
    }

    long total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total == 0)
            printf("PASS onesided (%d ranks, Win_create and Win_allocate, put/get/accumulate checked)\n", size);
        else
            printf("FAIL onesided (%ld problems on %d ranks)\n", total, size);
    }
    free(mem);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
