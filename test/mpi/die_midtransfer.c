/*
 * ffcheck_die_midtransfer: one chosen rank starts a large send to a peer that has posted the matching
 * receive, drives the transfer a little, then kills itself with SIGKILL: no MPI_Abort, no cleanup,
 * the transfer cut in the middle. The peer waits in MPI_Wait for the rest, every other rank in a
 * barrier. A correct launcher notices the dead rank, ends the job with a non-zero exit status and
 * leaves nothing behind; nobody may hang. If the job is not ended, the waiting ranks' --timeout
 * watchdog says so and exits 124.
 */
#include "ffcheck.h"

#include <limits.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static long victim = 1;
static long peer = -1;
static size_t size = 64 * FF_MIB;
static long progress_calls = 8;

static const ff_option options[] = {
    {"rank", FF_OPT_LONG, &victim, 0, 1 << 20, "the rank that kills itself"},
    {"peer", FF_OPT_LONG, &peer, -1, 1 << 20, "the rank receiving the transfer (-1: the next rank)"},
    {"size", FF_OPT_SIZE, &size, 0, INT_MAX, "bytes of the transfer that is cut"},
    {"progress-calls", FF_OPT_LONG, &progress_calls, 0, 1000000,
     "MPI_Test calls that move part of the transfer before the kill"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_die_midtransfer",
        .summary = "one rank dies by SIGKILL in the middle of a large send; the job must end non-zero, "
                   "nobody may hang",
        .default_timeout = 120,
        .options = options,
    };
    if (!ff_begin(argc, argv, &prog)) return ff_finish();
    if (peer < 0) peer = (victim + 1) % ff.size;
    if (victim >= ff.size || peer >= ff.size || peer == victim) {
        ff_usage_error("--rank %ld and --peer %ld must be two different ranks from 0 to %d.", victim, peer,
                       ff.size - 1);
        return ff_finish();
    }
    unsigned char *buf = ff_xmalloc(size + 1);
    ff_fill_msg(buf, size, (ff_msg){(int) victim, (int) peer, 1, 0});
    MPI_Barrier(MPI_COMM_WORLD);

    if (ff.rank == victim) {
        /* Wait until the peer's receive is posted, so that the data really starts to flow. */
        MPI_Recv(NULL, 0, MPI_BYTE, (int) peer, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Request rq;
        int done = 0;
        MPI_Isend(buf, (int) size, MPI_BYTE, (int) peer, 1, MPI_COMM_WORLD, &rq);
        for (long i = 0; i < progress_calls && !done; i++) MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        fprintf(stderr, "ffcheck_die_midtransfer: rank %d on %s: SIGKILL to itself %s a %zu-byte send to rank %ld\n",
                ff.rank, ff.host, done ? "after (the send already completed)" : "in the middle of", size, peer);
        fflush(stderr);
        raise(SIGKILL);
    } else if (ff.rank == peer) {
        MPI_Request rq;
        MPI_Irecv(buf, (int) size, MPI_BYTE, (int) victim, 1, MPI_COMM_WORLD, &rq);
        MPI_Send(NULL, 0, MPI_BYTE, (int) victim, 2, MPI_COMM_WORLD);
        printf("ffcheck_die_midtransfer: rank %d on %s waits for %zu bytes from rank %ld\n", ff.rank, ff.host, size,
               victim);
        MPI_Wait(&rq, MPI_STATUS_IGNORE);
        /* The transfer may have finished before the kill; then wait for what the dead rank never sends. */
        char never;
        MPI_Recv(&never, 1, MPI_CHAR, (int) victim, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
        MPI_Barrier(MPI_COMM_WORLD);
    }
    fprintf(stderr, "ffcheck_die_midtransfer: rank %d: still running after rank %ld died\n", ff.rank, victim);
    free(buf);
    return 1;
}
