/* Command line of ffbench_mpi: `ffbench_mpi <benchmark> [options]`. */
#ifndef FFBENCH_OPTIONS_H
#define FFBENCH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "ffbench.h"

struct ffb_options {
    const struct ffb_benchmark *bench;
    size_t sizes[FFB_MAX_SIZES];
    int nsizes;
    long iterations; /* 0: OSU-like default for each size */
    long warmup;     /* -1: OSU-like default for each size */
    int window;
    bool validate;
    bool inject_fault;
    const char *json_path; /* NULL: no JSON; "-": JSON on stdout instead of the text table */
    int argc;
    char **argv;
};

enum ffb_parse_result { FFB_PARSE_OK, FFB_PARSE_HELP, FFB_PARSE_ERROR };

/* Fills *opt; on FFB_PARSE_ERROR, err holds one message that names the problem and the fix. */
enum ffb_parse_result ffb_parse_options(int argc, char **argv, struct ffb_options *opt, char *err, size_t errlen);

void ffb_print_usage(void);
/* A refused command line, in the words of every C program's (ff_cli_refuse): the problem and the usage. */
void ffb_print_refusal(const char *problem);

#endif
