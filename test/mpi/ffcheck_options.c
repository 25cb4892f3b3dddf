/* ffcheck_options.c: command-line options of the ffcheck_* programs, --help and --only. */
#include "ffcheck.h"
#include "ffcheck_internal.h"
#include "ff_list.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool help, list;

static const ff_option common_options[] = {
    {"help", FF_OPT_FLAG, &help, 0, 0, "print this help and exit"},
    {"timeout", FF_OPT_LONG, &ff.timeout, 0, 86400,
     "seconds before a rank gives up with exit code 124 and says where it hung (0: never)"},
    {0},
};

static const ff_option data_options[] = {
    {"iterations", FF_OPT_LONG, &ff.iterations, 1, 1000000, "how many times each subtest repeats its pattern"},
    {"max-size", FF_OPT_SIZE, &ff.max_size, 0, 0, "largest message in bytes (suffixes K, M, G; e.g. 64M, 1M+13)"},
    {"seed", FF_OPT_LONG, &ff.seed, 0, LONG_MAX, "seed of the content patterns and random choices"},
    {"only", FF_OPT_STRING, &ff.only, 0, 0, "comma-separated subtests to run (see --list)"},
    {"list", FF_OPT_FLAG, &list, 0, 0, "list the subtests and exit"},
    {"inject-fault", FF_OPT_FLAG, &ff.inject_fault, 0, 0,
     "corrupt one received byte per subtest on the fault rank(s) before checking: every subtest "
     "that receives data must then FAIL (proves the checks work)"},
    {"fault-rank", FF_OPT_LONG, &ff.fault_rank, -1, INT_MAX, "rank that --inject-fault corrupts (-1: every rank)"},
    {"max-reports", FF_OPT_LONG, &ff.max_reports, 0, 1000000, "failures printed per rank and subtest"},
    {"verbose", FF_OPT_FLAG, &ff.verbose, 0, 0, "print progress details"},
    {0},
};

static bool set_option(const ff_option *o, const char *value)
{
    switch (o->kind) {
    case FF_OPT_FLAG: *(bool *) o->target = true; return true;
    case FF_OPT_LONG: {
        long v = 0;
        if (!ff_parse_whole(value, o->min, o->max, &v)) {
            ff_usage_error("option --%s: '%s' is not an integer from %ld to %ld.", o->name, value, o->min, o->max);
            return false;
        }
        *(long *) o->target = v;
        return true;
    }
    case FF_OPT_SIZE:
        if (!ff_parse_size(value, (size_t *) o->target) || *(size_t *) o->target > (size_t) INT_MAX) {
            ff_usage_error("option --%s: '%s' is not a size up to 2 GiB-1; give bytes with an optional K, M or G "
                           "suffix and offset, e.g. 4097, 64M or 1M+13.",
                           o->name, value);
            return false;
        }
        return true;
    case FF_OPT_STRING: *(const char **) o->target = value; return true;
    }
    return false;
}

/* The options of all three tables, for getopt_long. */
enum { MAX_OPTIONS = 64 };

static bool parse(int argc, char **argv)
{
    const ff_option *tables[3] = {common_options, ff.prog->data_options ? data_options : NULL, ff.prog->options};
    const ff_option *by_index[MAX_OPTIONS];
    struct option longopts[MAX_OPTIONS + 1];
    int n = 0;
    for (int t = 0; t < 3; t++)
        for (const ff_option *o = tables[t]; o && o->name; o++) {
            if (n == MAX_OPTIONS) {
                ff_usage_error("internal: more than %d options; raise MAX_OPTIONS.", MAX_OPTIONS);
                return false;
            }
            by_index[n] = o;
            longopts[n] = (struct option){o->name, o->kind == FF_OPT_FLAG ? no_argument : required_argument, NULL, n};
            n++;
        }
    longopts[n] = (struct option){0};

    /* "+": stop at the first word that is not an option (reported below); ":": a missing value is ':'. */
    opterr = 0;
    optind = 1;
    int index;
    while ((index = getopt_long(argc, argv, "+:", longopts, NULL)) != -1) {
        const char *arg = argv[optind - 1];
        if (index == ':') {
            ff_usage_error("option %s needs a value (see --help).", arg);
            return false;
        }
        if (index == '?') {
            ff_usage_error("unknown option '%s', or a value given to an option that takes none (see --help for the "
                           "options of this program).",
                           arg);
            return false;
        }
        if (!set_option(by_index[index], optarg)) return false;
    }
    if (optind < argc) {
        ff_usage_error("unexpected argument '%s': options look like --name value (see --help).", argv[optind]);
        return false;
    }
    return true;
}

static void print_option_table(const ff_option *table)
{
    for (const ff_option *o = table; o && o->name; o++) {
        char current[64] = "";
        char sz[32];
        switch (o->kind) {
        case FF_OPT_LONG: snprintf(current, sizeof current, " (default %ld)", *(long *) o->target); break;
        case FF_OPT_SIZE:
            snprintf(current, sizeof current, " (default %s)", ff_size_str(*(size_t *) o->target, sz, sizeof sz));
            break;
        case FF_OPT_STRING:
            if (*(const char **) o->target)
                snprintf(current, sizeof current, " (default %s)", *(const char **) o->target);
            break;
        case FF_OPT_FLAG: break;
        }
        printf("  --%-14s %s%s\n", o->name, o->help, current);
    }
}

void ff_options_print_help(void)
{
    printf("%s: %s\n\nusage: mpirun -n <ranks> %s [options]   (at least %d ranks)\n\noptions:\n", ff.prog->name,
           ff.prog->summary, ff.prog->name, ff.min_ranks);
    print_option_table(common_options);
    if (ff.prog->data_options) print_option_table(data_options);
    print_option_table(ff.prog->options);
    if (ff.prog->subtests) {
        printf("\nsubtests (each prints PASS <name> or FAIL <name>: ... from rank 0):\n");
        for (const ff_subtest *t = ff.prog->subtests; t->name; t++) printf("  %-20s %s\n", t->name, t->help);
    }
    if (ff.prog->data_options)
        printf("\nExit code 0 only when every check passed on every rank; 1 when a check failed; ");
    else
        printf("\nThe job is meant to end with a non-zero exit status, promptly; ");
    printf("%d for bad options; %d when the --timeout watchdog fired.\n", FF_EXIT_USAGE, FF_EXIT_TIMEOUT);
}

static const ff_subtest *find_subtest(const char *name, size_t len)
{
    for (const ff_subtest *t = ff.prog->subtests; t && t->name; t++)
        if (strlen(t->name) == len && strncmp(t->name, name, len) == 0) return t;
    return NULL;
}

bool ff_subtest_selected(const char *name)
{
    return ff_listed(ff.only, name);
}

static bool validate_only(void)
{
    if (!ff.only) return true;
    for (const char *p = ff.only; *p;) {
        size_t len = strcspn(p, ",");
        if (!find_subtest(p, len)) {
            ff_usage_error("--only: no subtest named '%.*s'; run with --list to see the subtests.", (int) len, p);
            return false;
        }
        p += len + (p[len] == ',');
    }
    return true;
}

ff_parse_result ff_options_parse(int argc, char **argv)
{
    if (!parse(argc, argv)) return FF_PARSE_ERROR;
    if (help) return FF_PARSE_HELP;
    if (list) return FF_PARSE_LIST;
    return validate_only() ? FF_PARSE_RUN : FF_PARSE_ERROR;
}
