/*
 * ffcheck_nodeshare: node-level sharing across co-located containers (docs/node-sharing.md).
 *   1. MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) groups exactly the ranks of one host: with
 *      --ranks-per-host N (ranks placed host after host), rank r's group is [r - r % N, r - r % N + N).
 *   2. MPI_Win_allocate_shared on that communicator: every rank fills its own segment (sizes differ by
 *      rank), MPI_Win_shared_query gives every segment's size, displacement unit and address, every rank
 *      loads every other rank's segment directly and checks every value, then stores into its right
 *      neighbour's segment and the neighbour checks every value: load/store through the window across
 *      containers, no MPI call on the data path.
 *   3. Every pair exchanges a checked value (MPI_Alltoall), so every pair's path is used.
 *   4. Binding: each rank prints its CPU affinity; they must not all sit on one core, and with
 *      --expect-pinned each must be pinned to one core, a different one per rank.
 * Prints PASS nodeshare / FAIL nodeshare from rank 0; every rank exits 1 on any failure.
 *   ffcheck_nodeshare --ranks-per-host N [--count INTS] [--expect-pinned]
 */
#define _GNU_SOURCE
#include "ff_cli.h"

#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long failures;

static void fail(int rank, const char *what, long a, long b)
{
    if (failures++ < 5) fprintf(stderr, "rank %d: %s (%ld != %ld)\n", rank, what, a, b);
}

static int32_t own_value(int world_rank, long i)
{
    return (int32_t) (world_rank * 1000003L + i * 7919L + 11);
}
static int32_t neighbour_value(int from, long i)
{
    return (int32_t) (from * 65537L - i * 31L - 5);
}

static void check_split(MPI_Comm shared, int rank, int size, int per_host)
{
    int shared_size;
    MPI_Comm_size(shared, &shared_size);
    const int first = rank - rank % per_host;
    const int expected_size = first + per_host <= size ? per_host : size - first;
    if (shared_size != expected_size) fail(rank, "MPI_COMM_TYPE_SHARED group size", shared_size, expected_size);
    MPI_Group group, world;
    MPI_Comm_group(shared, &group);
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    int *in = malloc(sizeof(int) * (size_t) shared_size), *out = malloc(sizeof(int) * (size_t) shared_size);
    for (int i = 0; i < shared_size; ++i) in[i] = i;
    MPI_Group_translate_ranks(group, shared_size, in, world, out);
    for (int i = 0; i < shared_size && shared_size == expected_size; ++i)
        if (out[i] != first + i) fail(rank, "member of MPI_COMM_TYPE_SHARED group", out[i], first + i);
    MPI_Group_free(&group);
    MPI_Group_free(&world);
    free(in);
    free(out);
}

static void check_window(MPI_Comm shared, int world_rank, long count)
{
    int me, n;
    MPI_Comm_rank(shared, &me);
    MPI_Comm_size(shared, &n);
    int *world_of = malloc(sizeof(int) * (size_t) n);
    MPI_Allgather(&world_rank, 1, MPI_INT, world_of, 1, MPI_INT, shared);
    const long mine = count + me * 17; /* different sizes catch offset mistakes */
    int32_t *base;
    MPI_Win win;
    int rc = MPI_Win_allocate_shared((MPI_Aint) (mine * (long) sizeof(int32_t)), sizeof(int32_t), MPI_INFO_NULL, shared,
                                     &base, &win);
    if (rc != MPI_SUCCESS) {
        char text[MPI_MAX_ERROR_STRING];
        int length;
        MPI_Error_string(rc, text, &length);
        fail(world_rank, "MPI_Win_allocate_shared failed", rc, MPI_SUCCESS);
        fprintf(stderr, "rank %d: %s\n", world_rank, text);
        free(world_of);
        return;
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    for (long i = 0; i < mine; ++i) base[i] = own_value(world_rank, i);
    /* sync: my stores visible before the barrier; the peers' visible to my loads after it */
    MPI_Win_sync(win);
    MPI_Barrier(shared);
    MPI_Win_sync(win);
    for (int peer = 0; peer < n; ++peer) {
        MPI_Aint bytes;
        int unit;
        int32_t *segment;
        MPI_Win_shared_query(win, peer, &bytes, &unit, &segment);
        const long expected = count + peer * 17;
        if (bytes != (MPI_Aint) (expected * (long) sizeof(int32_t)))
            fail(world_rank, "MPI_Win_shared_query size", (long) bytes, expected * 4);
        if (unit != (int) sizeof(int32_t)) fail(world_rank, "MPI_Win_shared_query displacement unit", unit, 4);
        if (peer == me && segment != base) fail(world_rank, "MPI_Win_shared_query of myself is not my base", 0, 1);
        for (long i = 0; i < expected && bytes == (MPI_Aint) (expected * 4); ++i)
            if (segment[i] != own_value(world_of[peer], i))
                fail(world_rank, "load from a peer's segment", segment[i], own_value(world_of[peer], i));
    }
    MPI_Barrier(shared); /* everyone has read before anyone overwrites */
    const int right = (me + 1) % n;
    MPI_Aint right_bytes;
    int unit;
    int32_t *right_segment;
    MPI_Win_shared_query(win, right, &right_bytes, &unit, &right_segment);
    const long right_count = count + right * 17;
    for (long i = 0; i < right_count; ++i) right_segment[i] = neighbour_value(world_rank, i);
    MPI_Win_sync(win);
    MPI_Barrier(shared);
    MPI_Win_sync(win);
    const int left = (me + n - 1) % n;
    for (long i = 0; i < mine; ++i)
        if (base[i] != neighbour_value(world_of[left], i))
            fail(world_rank, "store by my left neighbour", base[i], neighbour_value(world_of[left], i));
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    free(world_of);
}

static void check_binding(int rank, int size, int expect_pinned, int *pinned_cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) fail(rank, "sched_getaffinity", -1, 0);
    char list[512] = "";
    int length = 0, first = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && length < (int) sizeof list - 8; ++cpu) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (first < 0) first = cpu;
        length += snprintf(list + length, sizeof list - (size_t) length, "%s%d", length ? "," : "", cpu);
    }
    char host[256];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    printf("rank %d on %s: pid %ld cpus %s\n", rank, host, (long) getpid(), list);
    fflush(stdout);
    const int mine = CPU_COUNT(&set) == 1 ? first : -1;
    int *all = malloc(sizeof(int) * (size_t) size);
    MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
    int same = 1;
    for (int r = 0; r < size; ++r) same = same && all[r] >= 0 && all[r] == all[0];
    if (size > 1 && same) fail(rank, "every rank is pinned to the same core", all[0], -1);
    if (expect_pinned) {
        if (mine < 0) fail(rank, "not pinned to one core (--expect-pinned)", CPU_COUNT(&set), 1);
        for (int r = 0; r < size; ++r)
            if (r != rank && mine >= 0 && all[r] == mine)
                fail(rank, "pinned to the same core as another rank", r, rank);
    }
    *pinned_cpu = mine;
    free(all);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, pinned;
    long count = 1 << 16, per_host = 0;
    bool expect_pinned = false;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const ff_option options[] = {
        {"ranks-per-host", FF_OPT_LONG, &per_host, 1, INT_MAX, "ranks on each host, placed host after host",
         .required = true},
        {"count", FF_OPT_LONG, &count, 1, LONG_MAX, "ints per rank in the shared window"},
        {"expect-pinned", FF_OPT_FLAG, &expect_pinned, 0, 0, "fail unless every rank is pinned to its own core"},
        {0},
    };
    const ff_cli cli = {.program = "ffcheck_nodeshare",
                        .usage = "--ranks-per-host N [--count INTS] [--expect-pinned]   (under mpirun)",
                        .tables = {options}};
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, rank == 0);
    if (status != FF_CLI_PROCEED) {
        MPI_Finalize();
        return status;
    }
    MPI_Comm shared;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &shared);
    check_split(shared, rank, size, per_host);
    check_window(shared, rank, count);
    check_binding(rank, size, expect_pinned, &pinned);
    MPI_Comm_free(&shared);
    /* every pair exchanges a checked value (so that ffrun's report shows the path of every pair used) */
    int *out = malloc(sizeof(int) * (size_t) size), *in = malloc(sizeof(int) * (size_t) size);
    for (int r = 0; r < size; ++r) out[r] = rank * 4099 + r;
    MPI_Alltoall(out, 1, MPI_INT, in, 1, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < size; ++r)
        if (in[r] != r * 4099 + rank) fail(rank, "MPI_Alltoall value from a peer", in[r], r * 4099 + rank);
    free(out);
    free(in);
    long total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total == 0)
            printf("PASS nodeshare (%d ranks, %d per host: shared groups, a shared window of %ld+ ints per rank loaded "
                   "and stored across ranks, binding)\n",
                   size, (int) per_host, count);
        else
            printf("FAIL nodeshare: %ld failures\n", total);
    }
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
