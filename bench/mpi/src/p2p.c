/* Point-to-point benchmarks, the same communication pattern as OSU's osu_latency, osu_bw, osu_bibw and
 * osu_mbw_mr, so that numbers are comparable with theirs. */
#include "ffbench.h"

enum { TAG_DATA = 100, TAG_ACK = 101, ACK_BYTES = 4 };

static const char *exactly_two_ranks(int nranks)
{
    return nranks == 2 ? NULL : "exactly 2 ranks (start it with mpirun -n 2)";
}

static const char *even_rank_count(int nranks)
{
    return nranks >= 2 && nranks % 2 == 0 ? NULL : "an even number of ranks, at least 2 (mpirun -n 2, 4, ...)";
}

/* Timing mode reuses one buffer for all messages of a window, as OSU does, so caches behave as in OSU;
 * validation mode needs a buffer per message in flight to check each of them. */
static unsigned char *slot_buffer(const struct ffb_ctx *ctx, unsigned char *base, int slot)
{
    return ctx->validation.enabled ? base + (size_t) slot * ctx->size : base;
}

static void one_message_each_way(const struct ffb_ctx *ctx, size_t *send, size_t *recv, size_t *expected)
{
    *send = *recv = ctx->size;
    *expected = 0;
}

static void one_window_each_way(const struct ffb_ctx *ctx, size_t *send, size_t *recv, size_t *expected)
{
    *send = *recv = ctx->size * (ctx->validation.enabled ? (size_t) ctx->window : 1);
    *expected = 0;
}

static double latency_run(struct ffb_ctx *ctx, long first, long count)
{
    const int peer = 1 - ctx->rank;
    const int n = (int) ctx->size;
    const double start = MPI_Wtime();
    for (long i = first; i < first + count; i++) {
        if (ctx->rank == 0) {
            ffb_stamp(ctx, ctx->send, i, 0, 1, 0);
            MPI_Send(ctx->send, n, MPI_CHAR, peer, TAG_DATA, ctx->comm);
            MPI_Recv(ctx->recv, n, MPI_CHAR, peer, TAG_DATA, ctx->comm, MPI_STATUS_IGNORE);
            ffb_verify(ctx, ctx->recv, i, 1, 0, 0);
        } else {
            MPI_Recv(ctx->recv, n, MPI_CHAR, peer, TAG_DATA, ctx->comm, MPI_STATUS_IGNORE);
            ffb_verify(ctx, ctx->recv, i, 0, 1, 0);
            ffb_stamp(ctx, ctx->send, i, 1, 0, 0);
            MPI_Send(ctx->send, n, MPI_CHAR, peer, TAG_DATA, ctx->comm);
        }
    }
    const double elapsed = MPI_Wtime() - start;
    return ctx->rank == 0 ? elapsed : FFB_NOT_TIMED;
}

static double latency_bytes(const struct ffb_ctx *ctx)
{
    return 2.0 * (double) ctx->size;
}

/* Sending half of a window into requests[0, window). */
static void post_window_sends(struct ffb_ctx *ctx, int peer, long iteration)
{
    for (int j = 0; j < ctx->window; j++) {
        unsigned char *buf = slot_buffer(ctx, ctx->send, j);
        ffb_stamp(ctx, buf, iteration, ctx->rank, peer, j);
        MPI_Isend(buf, (int) ctx->size, MPI_CHAR, peer, TAG_DATA, ctx->comm, &ctx->requests[j]);
    }
}

/* Receiving half of a window into requests[window, 2 * window). */
static void post_window_receives(struct ffb_ctx *ctx, int peer)
{
    for (int j = 0; j < ctx->window; j++)
        MPI_Irecv(slot_buffer(ctx, ctx->recv, j), (int) ctx->size, MPI_CHAR, peer, TAG_DATA, ctx->comm,
                  &ctx->requests[ctx->window + j]);
}

static void verify_window(struct ffb_ctx *ctx, int peer, long iteration)
{
    if (!ctx->validation.enabled) return;
    for (int j = 0; j < ctx->window; j++)
        ffb_verify(ctx, slot_buffer(ctx, ctx->recv, j), iteration, peer, ctx->rank, j);
}

/* osu_bw / osu_mbw_mr: ranks [0, n/2) each stream windows to their partner in the other half, which
 * acknowledges every window. OSU times the senders and averages their times. */
static double stream_run(struct ffb_ctx *ctx, long first, long count)
{
    const int pairs = ctx->nranks / 2;
    const bool sender = ctx->rank < pairs;
    const int peer = sender ? ctx->rank + pairs : ctx->rank - pairs;
    unsigned char ack[ACK_BYTES] = {0};
    const double start = MPI_Wtime();
    for (long i = first; i < first + count; i++) {
        if (sender) {
            post_window_sends(ctx, peer, i);
            MPI_Waitall(ctx->window, ctx->requests, MPI_STATUSES_IGNORE);
            MPI_Recv(ack, ACK_BYTES, MPI_CHAR, peer, TAG_ACK, ctx->comm, MPI_STATUS_IGNORE);
        } else {
            post_window_receives(ctx, peer);
            MPI_Waitall(ctx->window, ctx->requests + ctx->window, MPI_STATUSES_IGNORE);
            verify_window(ctx, peer, i);
            MPI_Send(ack, ACK_BYTES, MPI_CHAR, peer, TAG_ACK, ctx->comm);
        }
    }
    const double elapsed = MPI_Wtime() - start;
    return sender ? elapsed : FFB_NOT_TIMED;
}

static double stream_bytes(const struct ffb_ctx *ctx)
{
    return (double) (ctx->nranks / 2) * ctx->window * (double) ctx->size;
}

/* osu_bibw: both ranks post a window of receives and a window of sends, then wait for all of them. */
static double bibw_run(struct ffb_ctx *ctx, long first, long count)
{
    const int peer = 1 - ctx->rank;
    const double start = MPI_Wtime();
    for (long i = first; i < first + count; i++) {
        post_window_receives(ctx, peer);
        post_window_sends(ctx, peer, i);
        MPI_Waitall(2 * ctx->window, ctx->requests, MPI_STATUSES_IGNORE);
        verify_window(ctx, peer, i);
    }
    const double elapsed = MPI_Wtime() - start;
    return ctx->rank == 0 ? elapsed : FFB_NOT_TIMED;
}

static double bibw_bytes(const struct ffb_ctx *ctx)
{
    return 2.0 * ctx->window * (double) ctx->size;
}

/* Every point-to-point benchmark takes any byte count from 1 B; 16 MiB by default. */
#define P2P_SIZES .default_min_size = 1, .default_max_size = (size_t) 16 << 20, .size_multiple = 1

const struct ffb_benchmark ffb_latency = {
    .name = "latency",
    .title = "MPI Latency Test",
    .metric = FFB_METRIC_LATENCY,
    P2P_SIZES,
    .windowed = false,
    .rank_count_problem = exactly_two_ranks,
    .buffer_bytes = one_message_each_way,
    .run = latency_run,
    .bytes_per_iteration = latency_bytes,
};

const struct ffb_benchmark ffb_bw = {
    .name = "bw",
    .title = "MPI Bandwidth Test",
    .metric = FFB_METRIC_BANDWIDTH,
    P2P_SIZES,
    .windowed = true,
    .rank_count_problem = exactly_two_ranks,
    .buffer_bytes = one_window_each_way,
    .run = stream_run,
    .bytes_per_iteration = stream_bytes,
};

const struct ffb_benchmark ffb_bibw = {
    .name = "bibw",
    .title = "MPI Bi-Directional Bandwidth Test",
    .metric = FFB_METRIC_BANDWIDTH,
    P2P_SIZES,
    .windowed = true,
    .rank_count_problem = exactly_two_ranks,
    .buffer_bytes = one_window_each_way,
    .run = bibw_run,
    .bytes_per_iteration = bibw_bytes,
};

const struct ffb_benchmark ffb_mr = {
    .name = "mr",
    .title = "MPI Multiple Bandwidth / Message Rate Test",
    .metric = FFB_METRIC_MESSAGE_RATE,
    P2P_SIZES,
    .windowed = true,
    .rank_count_problem = even_rank_count,
    .buffer_bytes = one_window_each_way,
    .run = stream_run,
    .bytes_per_iteration = stream_bytes,
};
