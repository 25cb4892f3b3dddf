/*
 * ffcheck_spawn: MPI_Comm_spawn across the freeflow BTL. The parents spawn children, every parent and
 * child exchange checked messages of several sizes in both directions over the intercommunicator (so
 * parents and children must reach each other through the same kind of path both ways), then the merged
 * communicator runs a checked allreduce. Prints PASS spawn / FAIL spawn from the first parent and exits
 * non-zero in every process if any check failed.
 *   ffcheck_spawn [--children N]      (N: 1..16, default 2)
 */
#include "ff_cli.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const size_t sizes[] = {8, 65536, (1 << 20) + 13};
enum { SIZE_COUNT = sizeof(sizes) / sizeof(sizes[0]) };

static unsigned char pattern(int from_parent, int sender, int receiver, int size_index, size_t offset)
{
    return (unsigned char) (from_parent * 131 + sender * 31 + receiver * 17 + size_index * 7 + offset * 3 +
                            (offset >> 9));
}

/* Sends to and receives from every process of the remote group; returns the number of bad bytes. */
static long exchange(MPI_Comm inter, int am_parent)
{
    int rank, remote;
    MPI_Comm_rank(inter, &rank);
    MPI_Comm_remote_size(inter, &remote);
    long bad = 0;
    unsigned char *out = malloc(sizes[SIZE_COUNT - 1]);
    unsigned char *in = malloc(sizes[SIZE_COUNT - 1]);
    for (int s = 0; s < SIZE_COUNT; ++s) {
        for (int peer = 0; peer < remote; ++peer) {
            const int count = (int) sizes[s];
            for (size_t i = 0; i < sizes[s]; ++i) {
                out[i] = pattern(am_parent, rank, peer, s, i);
            }
            memset(in, 0, sizes[s]);
            MPI_Sendrecv(out, count, MPI_BYTE, peer, s, in, count, MPI_BYTE, peer, s, inter, MPI_STATUS_IGNORE);
            for (size_t i = 0; i < sizes[s]; ++i) {
                if (in[i] != pattern(!am_parent, peer, rank, s, i)) {
                    if (bad++ < 3) {
                        fprintf(stderr, "%s %d: message of %zu bytes from %s %d differs at offset %zu\n",
                                am_parent ? "parent" : "child", rank, sizes[s], am_parent ? "child" : "parent", peer,
                                i);
                    }
                }
            }
        }
    }
    free(out);
    free(in);
    return bad;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm parent;
    MPI_Comm_get_parent(&parent);
    const int am_parent = parent == MPI_COMM_NULL;
    long children = 2;
    const ff_option options[] = {
        {"children", FF_OPT_LONG, &children, 1, 16, "processes MPI_Comm_spawn starts"},
        {0},
    };
    const ff_cli cli = {.program = "ffcheck_spawn", .usage = "[--children N]   (under mpirun)", .tables = {options}};
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, am_parent);
    if (status != FF_CLI_PROCEED) {
        MPI_Finalize();
        return status;
    }

    MPI_Comm inter = parent;
    if (am_parent) {
        MPI_Comm_spawn(argv[0], MPI_ARGV_NULL, (int) children, MPI_INFO_NULL, 0, MPI_COMM_WORLD, &inter,
                       MPI_ERRCODES_IGNORE);
    }
    long bad = exchange(inter, am_parent);

    MPI_Comm merged;
    MPI_Intercomm_merge(inter, am_parent ? 0 : 1, &merged);
    int merged_rank, merged_size;
    MPI_Comm_rank(merged, &merged_rank);
    MPI_Comm_size(merged, &merged_size);
    long contribution = merged_rank + 1, sum = 0;
    MPI_Allreduce(&contribution, &sum, 1, MPI_LONG, MPI_SUM, merged);
    if (sum != (long) merged_size * (merged_size + 1) / 2) {
        fprintf(stderr, "merged rank %d: allreduce gave %ld, expected %ld\n", merged_rank, sum,
                (long) merged_size * (merged_size + 1) / 2);
        ++bad;
    }
    long total = 0;
    MPI_Allreduce(&bad, &total, 1, MPI_LONG, MPI_SUM, merged);
    if (merged_rank == 0) {
        if (total == 0) {
            printf("PASS spawn (%d parents and %d children exchanged %d sizes both ways, every byte checked)\n",
                   merged_size - (int) children, (int) children, SIZE_COUNT);
        } else {
            printf("FAIL spawn: %ld bad bytes or results\n", total);
        }
        fflush(stdout);
    }
    MPI_Comm_free(&merged);
    MPI_Comm_disconnect(&inter);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
