/* Output of ffbench_mpi: an OSU-style text table and a JSON document (schema in README.md). */
#ifndef FFBENCH_REPORT_H
#define FFBENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "jobinfo.h"
#include "options.h"

/* What rank 0 knows about one message size after its timed loop. */
struct ffb_result {
    size_t size;
    long iterations, warmup;
    int window;
    double elapsed_avg_s, elapsed_min_s, elapsed_max_s; /* over the ranks whose clocks count */
    double bytes_moved;                                 /* in the timed loop, all ranks together */
    double cpu_user_s, cpu_sys_s;                       /* in the timed loop, summed over all ranks */
    unsigned long long checked_bytes, bad_bytes;        /* summed over all ranks, warm-up included */
};

/* A validation run passes when it checked something and found nothing wrong. */
static inline bool ffb_validation_passed(unsigned long long checked_bytes, unsigned long long bad_bytes)
{
    return checked_bytes > 0 && bad_bytes == 0;
}

void ffb_print_header(FILE *out, const struct ffb_options *opt, const struct ffb_job_info *job);
void ffb_print_row(FILE *out, const struct ffb_options *opt, const struct ffb_result *result);
void ffb_write_json(FILE *out, const struct ffb_options *opt, const struct ffb_job_info *job,
                    const struct ffb_result *results, int nresults);

#endif
