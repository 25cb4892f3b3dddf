/* ffbench_mpi: OSU-style MPI microbenchmarks (see bench/mpi/README.md).
 * Shared types: a benchmark is a table of callbacks that a common driver runs once per message size. */
#ifndef FFBENCH_H
#define FFBENCH_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FFB_PROGRAM          "ffbench_mpi"
#define FFB_SCHEMA_VERSION   1
#define FFB_MAX_SIZES        64
#define FFB_MAX_WINDOW       1024
#define FFB_MAX_MESSAGE_SIZE ((size_t) 1 << 30) /* MPI counts are int; 1 GiB keeps every count in range */
/* What run() returns on a rank whose clock does not count for the result (OSU reads only some ranks). */
#define FFB_NOT_TIMED (-1.0)

enum ffb_metric {
    FFB_METRIC_LATENCY,      /* ping-pong, half round trip */
    FFB_METRIC_BANDWIDTH,    /* windowed streaming, MB/s */
    FFB_METRIC_MESSAGE_RATE, /* windowed streaming between pairs, MB/s and messages/s */
    FFB_METRIC_COLLECTIVE,   /* time per collective call, averaged over iterations, max/avg/min over ranks */
};

struct ffb_ctx;

struct ffb_benchmark {
    const char *name;
    const char *title; /* first text header line, in OSU's wording */
    enum ffb_metric metric;
    size_t default_min_size, default_max_size;
    size_t size_multiple; /* element size: every message size must be a multiple of it */
    bool windowed;        /* takes --window */
    /* NULL when the job's rank count suits the benchmark, otherwise what it needs. */
    const char *(*rank_count_problem)(int nranks);
    /* Buffer bytes this rank needs for ctx->size and ctx->window. */
    void (*buffer_bytes)(const struct ffb_ctx *ctx, size_t *send, size_t *recv, size_t *expected);
    /* Runs iterations [first, first + count) and returns the seconds this rank measured, or FFB_NOT_TIMED. */
    double (*run)(struct ffb_ctx *ctx, long first, long count);
    /* Payload bytes moved between ranks per iteration, all ranks together (the CPU-per-byte divisor). */
    double (*bytes_per_iteration)(const struct ffb_ctx *ctx);
};

extern const struct ffb_benchmark ffb_latency, ffb_bw, ffb_bibw, ffb_mr, ffb_allreduce, ffb_alltoall;

struct ffb_validation {
    bool enabled;
    bool fault_pending; /* --inject-fault: this rank corrupts one byte of the next message it checks */
    unsigned long long checked_bytes, bad_bytes; /* for the current size */
    unsigned reported;                           /* mismatching messages printed for the current size */
};

struct ffb_ctx {
    MPI_Comm comm;
    int rank, nranks;
    const struct ffb_benchmark *bench;
    size_t size;
    int window; /* messages in flight per iteration (windowed benchmarks) */
    unsigned char *send, *recv, *expected;
    MPI_Request *requests; /* 2 * window */
    struct ffb_validation validation;
};

/* validate.c: every message carries a pattern derived from (size, iteration, sender, receiver, slot),
 * so a byte from another message, another offset or another iteration is caught. */
uint64_t ffb_mix64(uint64_t x);
uint64_t ffb_message_seed(const struct ffb_ctx *ctx, long iteration, int src, int dst, int slot);
void ffb_fill_pattern(void *buf, size_t len, uint64_t seed);
/* Compare a received message with its pattern, or with an expected buffer; count and report bad bytes.
 * src < 0 means the data came from all ranks (a reduction). */
void ffb_check_pattern(struct ffb_ctx *ctx, void *buf, size_t len, uint64_t seed, int src, long iteration);
void ffb_check_against(struct ffb_ctx *ctx, void *got, const void *expected, size_t len, int src, long iteration);

/* Inline so that the timed loops pay one predictable branch, not a call, when validation is off. */
static inline void ffb_stamp(struct ffb_ctx *ctx, void *buf, long iteration, int src, int dst, int slot)
{
    if (ctx->validation.enabled) ffb_fill_pattern(buf, ctx->size, ffb_message_seed(ctx, iteration, src, dst, slot));
}

static inline void ffb_verify(struct ffb_ctx *ctx, void *buf, long iteration, int src, int dst, int slot)
{
    if (ctx->validation.enabled)
        ffb_check_pattern(ctx, buf, ctx->size, ffb_message_seed(ctx, iteration, src, dst, slot), src, iteration);
}

#endif
