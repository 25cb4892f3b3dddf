#include "options.h"

#include "ff_cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DEFAULT_WINDOW = 64 }; /* OSU's window */

static const struct ffb_benchmark *const benchmarks[] = {&ffb_latency, &ffb_bw,        &ffb_bibw,
                                                         &ffb_mr,      &ffb_allreduce, &ffb_alltoall};
enum { NBENCHMARKS = sizeof benchmarks / sizeof benchmarks[0] };

/* The option values, where the table below writes them; copied into struct ffb_options by the parse. */
static size_t min_size, max_size, list_items[FFB_MAX_SIZES];
static ff_size_list size_list = {list_items, FFB_MAX_SIZES, 0};
static long iterations, warmup = -1, window = DEFAULT_WINDOW; /* 0 and -1: OSU's per-size counts */
static bool validate, inject_fault, range_given, list_given, window_given;
static const char *json_path;

static const ff_option options[] = {
    {"min-size", FF_OPT_SIZE, &min_size, 1, (long) FFB_MAX_MESSAGE_SIZE,
     "smallest message, a power of two (default 1; 4 for collectives)", .given = &range_given},
    {"max-size", FF_OPT_SIZE, &max_size, 1, (long) FFB_MAX_MESSAGE_SIZE,
     "largest message, a power of two (default 16M; 1M for collectives)", .given = &range_given},
    {"sizes", FF_OPT_SIZES, &size_list, 1, (long) FFB_MAX_MESSAGE_SIZE,
     "explicit message sizes instead of the power-of-two range", .given = &list_given},
    {"iterations", FF_OPT_LONG, &iterations, 1, 1000000000L,
     "timed iterations for every size (default: OSU's per-size counts)"},
    {"warmup", FF_OPT_LONG, &warmup, 0, 1000000000L,
     "untimed iterations before the timed ones (default: OSU's per-size counts)"},
    {"window", FF_OPT_LONG, &window, 1, FFB_MAX_WINDOW, "messages in flight per iteration for bw, bibw, mr",
     .given = &window_given},
    {"json", FF_OPT_STRING, &json_path, 0, 0,
     "also write the results as JSON to this file; '-' writes only JSON to stdout", .value_name = "FILE"},
    {"validate", FF_OPT_FLAG, &validate, 0, 0,
     "fill every message with a pattern and check every received byte; exits 1 on a bad byte; timings are not "
     "meaningful in this mode"},
    {"inject-fault", FF_OPT_FLAG, &inject_fault, 0, 0,
     "with --validate: corrupt one received byte on purpose (proves the check)"},
    {0},
};

static const ff_cli cli = {.program = FFB_PROGRAM,
                           .usage = "<benchmark> [options]   (run under mpirun)",
                           .about = "\nbenchmarks (OSU equivalents):\n"
                                    "  latency    ping-pong half round trip, 2 ranks (osu_latency)\n"
                                    "  bw         windowed streaming bandwidth, 2 ranks (osu_bw)\n"
                                    "  bibw       bidirectional windowed bandwidth, 2 ranks (osu_bibw)\n"
                                    "  mr         multi-pair bandwidth and message rate, even rank count (osu_mbw_mr)\n"
                                    "  allreduce  MPI_Allreduce (float sum) latency, 2+ ranks (osu_allreduce)\n"
                                    "  alltoall   MPI_Alltoall latency, 2+ ranks (osu_alltoall)",
                           .tables = {options}};

void ffb_print_usage(void)
{
    ff_cli_print_help(&cli, stdout);
}

void ffb_print_refusal(const char *problem)
{
    ff_cli_refuse(&cli, problem);
}

static enum ffb_parse_result fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return FFB_PARSE_ERROR;
}

static bool is_power_of_two(size_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static enum ffb_parse_result build_size_range(size_t min, size_t max, struct ffb_options *opt, char *err, size_t errlen)
{
    if (!is_power_of_two(min))
        return fail(err, errlen, "--min-size must be a power of two, not %zu: use --sizes for other sizes", min);
    if (!is_power_of_two(max))
        return fail(err, errlen, "--max-size must be a power of two, not %zu: use --sizes for other sizes", max);
    if (min > max) return fail(err, errlen, "--min-size (%zu) is larger than --max-size (%zu): swap them", min, max);
    opt->nsizes = 0;
    for (size_t size = min; size <= max; size *= 2) opt->sizes[opt->nsizes++] = size;
    return FFB_PARSE_OK;
}

static enum ffb_parse_result check_size_multiples(const struct ffb_options *opt, char *err, size_t errlen)
{
    const size_t multiple = opt->bench->size_multiple;
    for (int i = 0; i < opt->nsizes; i++)
        if (opt->sizes[i] % multiple != 0)
            return fail(err, errlen,
                        "%s sizes must be multiples of %zu bytes (whole elements), and %zu is not: use for example %zu",
                        opt->bench->name, multiple, opt->sizes[i], (opt->sizes[i] / multiple + 1) * multiple);
    return FFB_PARSE_OK;
}

static const struct ffb_benchmark *find_benchmark(const char *name)
{
    for (int i = 0; i < NBENCHMARKS; i++)
        if (strcmp(benchmarks[i]->name, name) == 0) return benchmarks[i];
    return NULL;
}

enum ffb_parse_result ffb_parse_options(int argc, char **argv, struct ffb_options *opt, char *err, size_t errlen)
{
    memset(opt, 0, sizeof *opt);
    opt->argc = argc;
    opt->argv = argv;
    const char *choices = "latency, bw, bibw, mr, allreduce, alltoall";
    if (argc < 2) return fail(err, errlen, "no benchmark given: name one of %s (see --help)", choices);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return FFB_PARSE_HELP;
    opt->bench = find_benchmark(argv[1]);
    if (opt->bench == NULL) return fail(err, errlen, "unknown benchmark '%s': name one of %s", argv[1], choices);

    min_size = opt->bench->default_min_size;
    max_size = opt->bench->default_max_size;
    /* The options follow the benchmark's name: argv + 1 is what the parser walks. */
    switch (ff_cli_parse(&cli, argc - 1, argv + 1, NULL, err, errlen)) {
    case FF_CLI_HELP: return FFB_PARSE_HELP;
    case FF_CLI_REFUSED: return FFB_PARSE_ERROR;
    case FF_CLI_RUN: break;
    }
    opt->iterations = iterations;
    opt->warmup = warmup;
    opt->window = (int) window;
    opt->validate = validate;
    opt->inject_fault = inject_fault;
    opt->json_path = json_path;

    if (window_given && !opt->bench->windowed)
        return fail(err, errlen, "--window applies only to bw, bibw and mr, not to %s: leave it out", opt->bench->name);
    if (opt->inject_fault && !opt->validate)
        return fail(err, errlen, "--inject-fault corrupts a byte for --validate to catch: add --validate");
    if (list_given && range_given)
        return fail(err, errlen, "--sizes cannot be combined with --min-size or --max-size: use one or the other");
    if (list_given) {
        opt->nsizes = (int) size_list.count;
        memcpy(opt->sizes, list_items, size_list.count * sizeof list_items[0]);
    } else {
        const enum ffb_parse_result r = build_size_range(min_size, max_size, opt, err, errlen);
        if (r != FFB_PARSE_OK) return r;
    }
    return check_size_multiples(opt, err, errlen);
}
