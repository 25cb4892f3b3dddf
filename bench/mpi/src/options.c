#include "options.h"

#include "ff_size.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DEFAULT_WINDOW = 64 }; /* OSU's window */

static const struct ffb_benchmark *const benchmarks[] = {&ffb_latency, &ffb_bw,        &ffb_bibw,
                                                         &ffb_mr,      &ffb_allreduce, &ffb_alltoall};
enum { NBENCHMARKS = sizeof benchmarks / sizeof benchmarks[0] };

void ffb_print_usage(void)
{
    printf("usage: " FFB_PROGRAM " <benchmark> [options]   (run under mpirun)\n"
           "\n"
           "benchmarks (OSU equivalents):\n"
           "  latency    ping-pong half round trip, 2 ranks (osu_latency)\n"
           "  bw         windowed streaming bandwidth, 2 ranks (osu_bw)\n"
           "  bibw       bidirectional windowed bandwidth, 2 ranks (osu_bibw)\n"
           "  mr         multi-pair bandwidth and message rate, even rank count (osu_mbw_mr)\n"
           "  allreduce  MPI_Allreduce (float sum) latency, 2+ ranks (osu_allreduce)\n"
           "  alltoall   MPI_Alltoall latency, 2+ ranks (osu_alltoall)\n"
           "\n"
           "options:\n"
           "  --min-size N     smallest message, a power of two (default 1; 4 for collectives)\n"
           "  --max-size N     largest message, a power of two (default 16M; 1M for collectives)\n"
           "  --sizes A,B,...  explicit message sizes instead of the power-of-two range\n"
           "                   sizes take an optional K, M or G suffix (powers of 1024)\n"
           "  --iterations N   timed iterations for every size (default: OSU's per-size counts)\n"
           "  --warmup N       untimed iterations before the timed ones (default: OSU's per-size counts)\n"
           "  --window N       messages in flight per iteration for bw, bibw, mr (default %d)\n"
           "  --json FILE      also write the results as JSON to FILE; '-' writes only JSON to stdout\n"
           "  --validate       fill every message with a pattern and check every received byte;\n"
           "                   exits 1 on a bad byte; timings are not meaningful in this mode\n"
           "  --inject-fault   with --validate: corrupt one received byte on purpose (proves the check)\n"
           "  --help           this text\n",
           DEFAULT_WINDOW);
}

static enum ffb_parse_result fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return FFB_PARSE_ERROR;
}

/* A message size in the syntax of ff_size.h (shared with test/mpi), from 1 B to FFB_MAX_MESSAGE_SIZE. */
static bool parse_size(const char *text, size_t *out)
{
    size_t value;
    if (!ff_parse_size(text, &value) || value == 0 || value > FFB_MAX_MESSAGE_SIZE) return false;
    *out = value;
    return true;
}

static bool is_power_of_two(size_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

static const char size_syntax[] =
    "a byte count from 1 to 1G, with an optional K, M or G suffix and offset (e.g. 4096, 64K, 1M+13)";

static enum ffb_parse_result parse_size_list(const char *list, struct ffb_options *opt, char *err, size_t errlen)
{
    opt->nsizes = (int) ff_parse_size_list(list, opt->sizes, FFB_MAX_SIZES);
    for (int i = 0; i < opt->nsizes; i++)
        if (opt->sizes[i] == 0 || opt->sizes[i] > FFB_MAX_MESSAGE_SIZE) opt->nsizes = 0;
    if (opt->nsizes == 0)
        return fail(err, errlen, "--sizes: '%s' is not a list of up to %d message sizes: use %s, separated by commas",
                    list, FFB_MAX_SIZES, size_syntax);
    return FFB_PARSE_OK;
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
    opt->warmup = -1;
    opt->window = DEFAULT_WINDOW;
    opt->argc = argc;
    opt->argv = argv;
    const char *choices = "latency, bw, bibw, mr, allreduce, alltoall";
    if (argc < 2) return fail(err, errlen, "no benchmark given: name one of %s (see --help)", choices);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return FFB_PARSE_HELP;
    opt->bench = find_benchmark(argv[1]);
    if (opt->bench == NULL) return fail(err, errlen, "unknown benchmark '%s': name one of %s", argv[1], choices);

    size_t min_size = opt->bench->default_min_size, max_size = opt->bench->default_max_size;
    bool range_given = false, window_given = false;
    const char *size_list = NULL;
    enum {
        OPT_VALIDATE,
        OPT_INJECT_FAULT,
        OPT_HELP,
        OPT_MIN_SIZE,
        OPT_MAX_SIZE,
        OPT_SIZES,
        OPT_ITERATIONS,
        OPT_WARMUP,
        OPT_WINDOW,
        OPT_JSON
    };
    static const struct option longopts[] = {
        {"validate", no_argument, NULL, OPT_VALIDATE},
        {"inject-fault", no_argument, NULL, OPT_INJECT_FAULT},
        {"help", no_argument, NULL, OPT_HELP},
        {"min-size", required_argument, NULL, OPT_MIN_SIZE},
        {"max-size", required_argument, NULL, OPT_MAX_SIZE},
        {"sizes", required_argument, NULL, OPT_SIZES},
        {"iterations", required_argument, NULL, OPT_ITERATIONS},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"json", required_argument, NULL, OPT_JSON},
        {0},
    };
    /* The options follow the benchmark's name. "+": stop at the first word that is not an option (reported
     * below); ":": a missing value is ':'; "h": -h as --help. */
    opterr = 0;
    optind = 1;
    int option;
    while ((option = getopt_long(argc - 1, argv + 1, "+:h", longopts, NULL)) != -1) {
        const char *name = argv[optind]; /* argv + 1 is what getopt_long walks: its argv[optind - 1] */
        const char *value = optarg;
        switch (option) {
        case 'h':
        case OPT_HELP: return FFB_PARSE_HELP;
        case ':': return fail(err, errlen, "%s needs a value (see --help)", name);
        case '?':
            return fail(err, errlen, "unknown option '%s', or a value given to one that takes none (see --help)", name);
        case OPT_VALIDATE: opt->validate = true; break;
        case OPT_INJECT_FAULT: opt->inject_fault = true; break;
        case OPT_MIN_SIZE:
        case OPT_MAX_SIZE:
            if (!parse_size(value, option == OPT_MIN_SIZE ? &min_size : &max_size))
                return fail(err, errlen, "%s: '%s' is not a message size: use %s",
                            option == OPT_MIN_SIZE ? "--min-size" : "--max-size", value, size_syntax);
            range_given = true;
            break;
        case OPT_SIZES: size_list = value; break;
        case OPT_ITERATIONS:
            if (!ff_parse_whole(value, 1, 1000000000L, &opt->iterations))
                return fail(err, errlen, "--iterations: '%s' is not a whole number from 1 to 1000000000", value);
            break;
        case OPT_WARMUP:
            if (!ff_parse_whole(value, 0, 1000000000L, &opt->warmup))
                return fail(err, errlen, "--warmup: '%s' is not a whole number from 0 to 1000000000", value);
            break;
        case OPT_WINDOW: {
            long window;
            if (!ff_parse_whole(value, 1, FFB_MAX_WINDOW, &window))
                return fail(err, errlen, "--window: '%s' is not a whole number from 1 to %d", value, FFB_MAX_WINDOW);
            opt->window = (int) window;
            window_given = true;
            break;
        }
        case OPT_JSON:
            if (value[0] == '\0') return fail(err, errlen, "--json needs a file name, or '-' for stdout");
            opt->json_path = value;
            break;
        }
    }
    if (optind < argc - 1)
        return fail(err, errlen, "unexpected argument '%s': options start with -- (see --help)", argv[optind + 1]);

    if (window_given && !opt->bench->windowed)
        return fail(err, errlen, "--window applies only to bw, bibw and mr, not to %s: leave it out", opt->bench->name);
    if (opt->inject_fault && !opt->validate)
        return fail(err, errlen, "--inject-fault corrupts a byte for --validate to catch: add --validate");
    if (size_list != NULL && range_given)
        return fail(err, errlen, "--sizes cannot be combined with --min-size or --max-size: use one or the other");
    enum ffb_parse_result r = size_list != NULL ? parse_size_list(size_list, opt, err, errlen)
                                                : build_size_range(min_size, max_size, opt, err, errlen);
    if (r != FFB_PARSE_OK) return r;
    return check_size_multiples(opt, err, errlen);
}
