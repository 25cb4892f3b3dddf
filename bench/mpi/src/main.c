/* ffbench_mpi: the driver. For every message size: allocate and touch buffers, warm up, barrier, then
 * the timed loop with CPU time sampled around it; rank 0 turns the ranks' numbers into one result. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ffbench.h"
#include "jobinfo.h"
#include "options.h"
#include "report.h"

enum { EXIT_VALIDATION_FAILED = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3 };

struct loop_counts {
    long iterations, warmup;
};

enum { OSU_LARGE_MESSAGE = 8192 };                   /* OSU uses its large-message counts above this */
static const size_t OSU_MAX_SIZE = (size_t) 4 << 20; /* OSU's default largest size */
/* Validation needs a buffer per message in flight; above this the window shrinks (JSON says by how much). */
static const size_t VALIDATION_WINDOW_BYTES = (size_t) 64 << 20;
/* Validation needs many distinct messages, not OSU's statistics: its default counts stop here, which keeps
 * a small-size validation run of any benchmark well under a second. */
static const struct loop_counts VALIDATION_MAX_COUNTS = {100, 10};

/* OSU's defaults (osu_util.h). Beyond OSU's largest size they halve with every doubling, so that each size
 * takes about as long as 4 MiB. */
static struct loop_counts osu_counts(enum ffb_metric metric, size_t size)
{
    static const struct {
        struct loop_counts small, large;
    } osu[] = {
        [FFB_METRIC_LATENCY] = {{10000, 100}, {1000, 10}},
        [FFB_METRIC_BANDWIDTH] = {{100, 10}, {20, 2}},
        [FFB_METRIC_MESSAGE_RATE] = {{100, 10}, {20, 2}},
        [FFB_METRIC_COLLECTIVE] = {{1000, 100}, {100, 10}},
    };
    struct loop_counts c = size > OSU_LARGE_MESSAGE ? osu[metric].large : osu[metric].small;
    for (size_t s = size; s > OSU_MAX_SIZE; s /= 2) {
        c.iterations = c.iterations > 1 ? c.iterations / 2 : 1;
        c.warmup = c.warmup > 1 ? c.warmup / 2 : 1;
    }
    return c;
}

static int effective_window(const struct ffb_options *opt, size_t size)
{
    if (!opt->bench->windowed) return 1;
    if (!opt->validate) return opt->window;
    size_t fits = VALIDATION_WINDOW_BYTES / size;
    if (fits < 1) fits = 1;
    return fits < (size_t) opt->window ? (int) fits : opt->window;
}

static void say_error(int rank, const char *fmt, ...)
{
    if (rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    fputs(FFB_PROGRAM ": error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static bool on_all_ranks(MPI_Comm comm, bool ok)
{
    int local = ok, all = 0;
    MPI_Allreduce(&local, &all, 1, MPI_INT, MPI_LAND, comm);
    return all != 0;
}

/* Page-aligned like OSU's buffers, and touched so that no page fault lands in a timed loop. */
static bool alloc_touched(unsigned char **buf, size_t bytes)
{
    *buf = NULL;
    if (bytes == 0) return true;
    void *p = NULL;
    if (posix_memalign(&p, (size_t) sysconf(_SC_PAGESIZE), bytes) != 0) return false;
    memset(p, 0, bytes);
    *buf = p;
    return true;
}

static void free_buffers(struct ffb_ctx *ctx)
{
    free(ctx->send);
    free(ctx->recv);
    free(ctx->expected);
    ctx->send = ctx->recv = ctx->expected = NULL;
}

static bool allocate_buffers(struct ffb_ctx *ctx)
{
    size_t send, recv, expected;
    ctx->bench->buffer_bytes(ctx, &send, &recv, &expected);
    bool ok =
        alloc_touched(&ctx->send, send) && alloc_touched(&ctx->recv, recv) && alloc_touched(&ctx->expected, expected);
    if (!ok) free_buffers(ctx);
    return ok;
}

static void cpu_seconds(double *user, double *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec * 1e-6;
    *sys = (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec * 1e-6;
}

/* Average, min and max over the ranks whose clocks count (the others report FFB_NOT_TIMED). */
static void elapsed_stats(const double *times, int n, struct ffb_result *r)
{
    double sum = 0, min = 0, max = 0;
    int timed = 0;
    for (int i = 0; i < n; i++) {
        if (times[i] < 0) continue;
        if (timed == 0 || times[i] < min) min = times[i];
        if (timed == 0 || times[i] > max) max = times[i];
        sum += times[i];
        timed++;
    }
    r->elapsed_avg_s = timed > 0 ? sum / timed : -1;
    r->elapsed_min_s = min;
    r->elapsed_max_s = max;
}

/* Collective. Returns false on every rank when some rank could not allocate its buffers. rank_times and
 * *out are used on rank 0 only. */
static bool measure_size(struct ffb_ctx *ctx, const struct ffb_options *opt, size_t size, double *rank_times,
                         struct ffb_result *out)
{
    struct loop_counts counts = osu_counts(ctx->bench->metric, size);
    if (opt->validate) {
        if (counts.iterations > VALIDATION_MAX_COUNTS.iterations) counts.iterations = VALIDATION_MAX_COUNTS.iterations;
        if (counts.warmup > VALIDATION_MAX_COUNTS.warmup) counts.warmup = VALIDATION_MAX_COUNTS.warmup;
    }
    if (opt->iterations > 0) counts.iterations = opt->iterations;
    if (opt->warmup >= 0) counts.warmup = opt->warmup;
    ctx->size = size;
    ctx->window = effective_window(opt, size);
    ctx->validation.checked_bytes = ctx->validation.bad_bytes = 0;
    ctx->validation.reported = 0;
    if (!on_all_ranks(ctx->comm, allocate_buffers(ctx))) {
        free_buffers(ctx);
        return false;
    }

    MPI_Barrier(ctx->comm);
    ctx->bench->run(ctx, 0, counts.warmup);
    MPI_Barrier(ctx->comm);
    double user0, sys0, user1, sys1;
    cpu_seconds(&user0, &sys0);
    const double elapsed = ctx->bench->run(ctx, counts.warmup, counts.iterations);
    cpu_seconds(&user1, &sys1);
    free_buffers(ctx);

    const double cpu[2] = {user1 - user0, sys1 - sys0};
    double cpu_sum[2] = {0, 0};
    MPI_Reduce(cpu, cpu_sum, 2, MPI_DOUBLE, MPI_SUM, 0, ctx->comm);
    const unsigned long long checks[2] = {ctx->validation.checked_bytes, ctx->validation.bad_bytes};
    unsigned long long check_sum[2] = {0, 0};
    MPI_Reduce(checks, check_sum, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, ctx->comm);
    MPI_Gather(&elapsed, 1, MPI_DOUBLE, rank_times, 1, MPI_DOUBLE, 0, ctx->comm);
    if (ctx->rank != 0) return true;

    *out = (struct ffb_result){
        .size = size,
        .iterations = counts.iterations,
        .warmup = counts.warmup,
        .window = ctx->window,
        .bytes_moved = ctx->bench->bytes_per_iteration(ctx) * (double) counts.iterations,
        .cpu_user_s = cpu_sum[0],
        .cpu_sys_s = cpu_sum[1],
        .checked_bytes = check_sum[0],
        .bad_bytes = check_sum[1],
    };
    elapsed_stats(rank_times, ctx->nranks, out);
    return true;
}

/* Collective. The exit status of the whole job, the same on every rank. */
static int run_benchmark(struct ffb_ctx *ctx, const struct ffb_options *opt, FILE *text, FILE *json)
{
    static struct ffb_result results[FFB_MAX_SIZES];
    struct ffb_job_info job;
    if (!ffb_gather_job_info(ctx->comm, &job)) {
        say_error(ctx->rank, "out of memory gathering the ranks' host names");
        return EXIT_RUNTIME;
    }
    double *rank_times = ctx->rank == 0 ? calloc((size_t) ctx->nranks, sizeof *rank_times) : NULL;
    ctx->requests = malloc(2 * (size_t) opt->window * sizeof *ctx->requests);
    if (!on_all_ranks(ctx->comm, ctx->requests != NULL && (ctx->rank != 0 || rank_times != NULL))) {
        say_error(ctx->rank, "out of memory allocating request tables");
        free(rank_times);
        free(ctx->requests);
        ffb_free_job_info(&job);
        return EXIT_RUNTIME;
    }

    if (text != NULL && ctx->rank == 0) ffb_print_header(text, opt, &job);
    int status = 0, done = 0;
    for (; done < opt->nsizes; done++) {
        if (!measure_size(ctx, opt, opt->sizes[done], rank_times, &results[done])) {
            say_error(ctx->rank,
                      "%s: cannot allocate buffers for %zu-byte messages on some rank: use smaller sizes "
                      "(--max-size) or fewer ranks",
                      opt->bench->name, opt->sizes[done]);
            status = EXIT_RUNTIME;
            break;
        }
        if (text != NULL && ctx->rank == 0) ffb_print_row(text, opt, &results[done]);
    }

    if (ctx->rank == 0) {
        unsigned long long checked = 0, bad = 0;
        for (int i = 0; i < done; i++) {
            checked += results[i].checked_bytes;
            bad += results[i].bad_bytes;
        }
        if (opt->validate && status == 0) {
            if (ffb_validation_passed(checked, bad)) {
                if (text != NULL) fprintf(text, "# Validation passed: %llu bytes checked, none wrong\n", checked);
            } else {
                fprintf(stderr,
                        FFB_PROGRAM ": VALIDATION FAILED: %s: %llu of %llu checked bytes were wrong (details above)\n",
                        opt->bench->name, bad, checked);
                status = EXIT_VALIDATION_FAILED;
            }
        }
        if (json != NULL) {
            ffb_write_json(json, opt, &job, results, done);
            if (fflush(json) != 0 || ferror(json)) {
                say_error(0, "writing the JSON output failed: %s", strerror(errno));
                status = EXIT_RUNTIME;
            }
        }
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, ctx->comm);
    free(rank_times);
    free(ctx->requests);
    ffb_free_job_info(&job);
    return status;
}

static int run(int argc, char **argv, MPI_Comm comm)
{
    struct ffb_ctx ctx = {.comm = comm};
    MPI_Comm_rank(comm, &ctx.rank);
    MPI_Comm_size(comm, &ctx.nranks);

    struct ffb_options opt;
    char err[512];
    switch (ffb_parse_options(argc, argv, &opt, err, sizeof err)) {
    case FFB_PARSE_HELP:
        if (ctx.rank == 0) ffb_print_usage();
        return 0;
    case FFB_PARSE_ERROR:
        if (ctx.rank == 0) ffb_print_refusal(err);
        return EXIT_USAGE;
    case FFB_PARSE_OK: break;
    }
    const char *needs = opt.bench->rank_count_problem(ctx.nranks);
    if (needs != NULL) {
        say_error(ctx.rank, "%s needs %s; this job has %d", opt.bench->name, needs, ctx.nranks);
        return EXIT_USAGE;
    }
    ctx.bench = opt.bench;
    ctx.validation.enabled = opt.validate;
    ctx.validation.fault_pending = opt.inject_fault && ctx.rank == ctx.nranks - 1;

    /* JSON on stdout replaces the text table, so that stdout stays parseable. The file is opened (and
     * truncated) before measuring, so that a bad path fails at once and no stale result survives. */
    const bool json_stdout = opt.json_path != NULL && strcmp(opt.json_path, "-") == 0;
    FILE *json = json_stdout ? stdout : NULL;
    bool opened = true;
    if (ctx.rank == 0 && opt.json_path != NULL && !json_stdout) {
        json = fopen(opt.json_path, "w");
        opened = json != NULL;
        if (!opened) say_error(0, "cannot write the JSON output to '%s': %s", opt.json_path, strerror(errno));
    }
    if (!on_all_ranks(comm, opened)) return EXIT_RUNTIME;

    int status = run_benchmark(&ctx, &opt, json_stdout ? NULL : stdout, json);
    if (json != NULL && json != stdout && fclose(json) != 0 && status == 0) {
        say_error(0, "closing the JSON output '%s' failed: %s", opt.json_path, strerror(errno));
        status = EXIT_RUNTIME;
    }
    return status;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int status = run(argc, argv, MPI_COMM_WORLD);
    MPI_Finalize();
    return status;
}
