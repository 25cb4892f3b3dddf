/*
 * ffcheck_abort: one chosen rank calls MPI_Abort after a barrier while every other rank waits for a
 * message that never comes. A correct launcher ends the whole job with a non-zero exit status (Open
 * MPI's mpirun exits with the abort code) and leaves nothing behind. The waiting ranks never finish on
 * their own: if the job is not ended, their --timeout watchdog says so and exits 124.
 */
#include "ffcheck.h"

#include <stdio.h>

static long abort_rank = 1;
static long abort_code = 3;

static const ff_option options[] = {
    {"rank", FF_OPT_LONG, &abort_rank, 0, 1 << 20, "the rank that calls MPI_Abort"},
    {"code", FF_OPT_LONG, &abort_code, 1, 255, "the error code given to MPI_Abort"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_abort",
        .summary = "one rank calls MPI_Abort after a barrier; the job must end with a non-zero status",
        .min_ranks = 1,
        .default_timeout = 120,
        .options = options,
    };
    if (!ff_begin(argc, argv, &prog)) return ff_finish();
    if (abort_rank >= ff.size) {
        ff_usage_error("--rank %ld does not exist: the job has ranks 0 to %d.", abort_rank, ff.size - 1);
        return ff_finish();
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (ff.rank == abort_rank) {
        printf("ffcheck_abort: rank %d on %s calls MPI_Abort(MPI_COMM_WORLD, %ld) after the barrier\n", ff.rank,
               ff.host, abort_code);
        fflush(stdout);
        MPI_Abort(MPI_COMM_WORLD, (int) abort_code);
        fprintf(stderr, "ffcheck_abort: rank %d: MPI_Abort returned\n", ff.rank);
        return 1;
    }
    /* Nobody sends this: only the end of the job ends the wait. */
    char never;
    MPI_Recv(&never, 1, MPI_CHAR, (int) abort_rank, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    fprintf(stderr, "ffcheck_abort: rank %d: a receive that nobody sends to completed\n", ff.rank);
    return 1;
}
