/* Collective benchmarks in the manner of osu_allreduce and osu_alltoall: every call is timed on its own
 * and a barrier (outside the timed region) separates calls, so one call's skew does not feed the next. */
#include <string.h>

#include "ffbench.h"

static const char *at_least_two_ranks(int nranks)
{
    return nranks >= 2 ? NULL : "at least 2 ranks (start it with mpirun -n 2 or more)";
}

/* Allreduce sums MPI_FLOAT like OSU. Validation contributes small integers, whose sums are exact in any
 * order, so the result can be compared byte for byte with a locally computed one. */
static float contribution(uint64_t rank_seed, size_t element)
{
    return (float) (ffb_mix64(rank_seed + element) & 0xffff);
}

/* Buffers come from posix_memalign (page-aligned, no declared type), so they may be used as floats. */
static void prepare_allreduce(struct ffb_ctx *ctx, long iteration)
{
    const size_t count = ctx->size / sizeof(float);
    float *mine = (float *) (void *) ctx->send, *expected = (float *) (void *) ctx->expected;
    memset(expected, 0, ctx->size);
    for (int r = 0; r < ctx->nranks; r++) {
        const uint64_t seed = ffb_message_seed(ctx, iteration, r, -1, 0);
        for (size_t e = 0; e < count; e++) expected[e] += contribution(seed, e);
    }
    const uint64_t my_seed = ffb_message_seed(ctx, iteration, ctx->rank, -1, 0);
    for (size_t e = 0; e < count; e++) mine[e] = contribution(my_seed, e);
}

static void allreduce_buffers(const struct ffb_ctx *ctx, size_t *send, size_t *recv, size_t *expected)
{
    *send = *recv = ctx->size;
    *expected = ctx->validation.enabled ? ctx->size : 0;
}

static double allreduce_run(struct ffb_ctx *ctx, long first, long count)
{
    const int elements = (int) (ctx->size / sizeof(float));
    const bool validate = ctx->validation.enabled;
    double total = 0;
    for (long i = first; i < first + count; i++) {
        if (validate) prepare_allreduce(ctx, i);
        const double start = MPI_Wtime();
        MPI_Allreduce(ctx->send, ctx->recv, elements, MPI_FLOAT, MPI_SUM, ctx->comm);
        total += MPI_Wtime() - start;
        if (validate) ffb_check_against(ctx, ctx->recv, ctx->expected, ctx->size, -1, i);
        MPI_Barrier(ctx->comm);
    }
    return total;
}

/* Every rank contributes one vector. */
static double allreduce_bytes(const struct ffb_ctx *ctx)
{
    return (double) ctx->nranks * (double) ctx->size;
}

static void alltoall_buffers(const struct ffb_ctx *ctx, size_t *send, size_t *recv, size_t *expected)
{
    *send = *recv = ctx->size * (size_t) ctx->nranks;
    *expected = 0;
}

static double alltoall_run(struct ffb_ctx *ctx, long first, long count)
{
    const int n = (int) ctx->size;
    const bool validate = ctx->validation.enabled;
    double total = 0;
    for (long i = first; i < first + count; i++) {
        if (validate)
            for (int dst = 0; dst < ctx->nranks; dst++)
                ffb_stamp(ctx, ctx->send + (size_t) dst * ctx->size, i, ctx->rank, dst, 0);
        const double start = MPI_Wtime();
        MPI_Alltoall(ctx->send, n, MPI_CHAR, ctx->recv, n, MPI_CHAR, ctx->comm);
        total += MPI_Wtime() - start;
        if (validate)
            for (int src = 0; src < ctx->nranks; src++)
                ffb_verify(ctx, ctx->recv + (size_t) src * ctx->size, i, src, ctx->rank, 0);
        MPI_Barrier(ctx->comm);
    }
    return total;
}

/* Blocks that cross between ranks (each rank's block to itself stays home). */
static double alltoall_bytes(const struct ffb_ctx *ctx)
{
    return (double) ctx->nranks * (ctx->nranks - 1) * (double) ctx->size;
}

/* OSU's collective sizes: 4 B to 1 MiB by default. */
#define COLLECTIVE_SIZES .default_min_size = 4, .default_max_size = (size_t) 1 << 20

const struct ffb_benchmark ffb_allreduce = {
    .name = "allreduce",
    .title = "MPI Allreduce Latency Test",
    .metric = FFB_METRIC_COLLECTIVE,
    COLLECTIVE_SIZES,
    .size_multiple = sizeof(float),
    .windowed = false,
    .rank_count_problem = at_least_two_ranks,
    .buffer_bytes = allreduce_buffers,
    .run = allreduce_run,
    .bytes_per_iteration = allreduce_bytes,
};

const struct ffb_benchmark ffb_alltoall = {
    .name = "alltoall",
    .title = "MPI All-to-All Personalized Exchange Latency Test",
    .metric = FFB_METRIC_COLLECTIVE,
    COLLECTIVE_SIZES,
    .size_multiple = 1,
    .windowed = false,
    .rank_count_problem = at_least_two_ranks,
    .buffer_bytes = alltoall_buffers,
    .run = alltoall_run,
    .bytes_per_iteration = alltoall_bytes,
};
