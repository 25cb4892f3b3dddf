/* ffcheck_options.c: command-line options of the ffcheck_* programs, --help and --only. */
#include "ffcheck.h"
#include "ffcheck_internal.h"
#include "ff_cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool list;

static const ff_option common_options[] = {
    {"timeout", FF_OPT_LONG, &ff.timeout, 0, 86400,
     "seconds before a rank gives up with exit code 124 and says where it hung (0: never)"},
    {0},
};

static const ff_option data_options[] = {
    {"iterations", FF_OPT_LONG, &ff.iterations, 1, 1000000, "how many times each subtest repeats its pattern"},
    {"max-size", FF_OPT_SIZE, &ff.max_size, 0, INT_MAX, "largest message in bytes"},
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

static ff_cli command_line(void)
{
    return (ff_cli){.program = ff.prog->name,
                    .usage = "[options]   (under mpirun -n <ranks>)",
                    .tables = {common_options, ff.prog->data_options ? data_options : NULL, ff.prog->options}};
}

void ff_options_print_help(void)
{
    printf("%s: %s\n\nusage: mpirun -n <ranks> %s [options]   (at least %d ranks)\n\noptions:\n", ff.prog->name,
           ff.prog->summary, ff.prog->name, ff.min_ranks);
    const ff_cli cli = command_line();
    for (size_t t = 0; t < sizeof cli.tables / sizeof cli.tables[0]; t++) ff_cli_print_options(cli.tables[t], stdout);
    printf("  %-22s %s\n", "--help, -h", "print this help and exit");
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
    const ff_cli cli = command_line();
    char problem[512];
    switch (ff_cli_parse(&cli, argc, argv, NULL, problem, sizeof problem)) {
    case FF_CLI_HELP: return FF_PARSE_HELP;
    case FF_CLI_REFUSED: ff_usage_error("%s (see --help).", problem); return FF_PARSE_ERROR;
    case FF_CLI_RUN: break;
    }
    if (list) return FF_PARSE_LIST;
    return validate_only() ? FF_PARSE_RUN : FF_PARSE_ERROR;
}
