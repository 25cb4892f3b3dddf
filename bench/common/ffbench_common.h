/* What the core-level benchmark programs (ffbench_poll, ffbench_ring) share: the pinned two-process set-up,
 * the clock, the statistics and the JSON output, and the --cpus syntax. Errors go to stderr under the program's
 * own name and exit. (Their command lines: ff_cli.h.) */
#ifndef FFBENCH_COMMON_H
#define FFBENCH_COMMON_H

#include "freeflow.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Pins the calling process to `cpu`; exits naming --cpus when the CPU is not ours. */
void pin(int cpu);
/* The two-process set-up of a ping-pong: fork(), with the child pinned to `child_cpu` at once; 0 in the
 * child, the child's pid in the parent (which pins itself when it is ready). Exits when fork fails. */
pid_t fork_pinned(int child_cpu);
/* pipe(), exiting when it fails: the processes of a benchmark tell each other they are ready. */
void make_pipe(int fds[2]);
/* The segments of a two-process benchmark, one per owner id in `owners`, created in a fresh directory under
 * /dev/shm and unlinked at once: the mappings are all the two processes need (fork keeps them), so nothing is
 * left in /dev/shm even if the benchmark is killed. `config` gives the key, ring size and ring count; its
 * directory, host and owner are set here. Exits when it fails. */
void create_unlinked_segments(ff_segment_config_t config, const uint64_t *owners, unsigned count, ff_segment_t **out);
/* CLOCK_MONOTONIC in nanoseconds. */
double now_ns(void);
/* Prints what failed with the core's status name and description, and exits 1. */
void die(const char *what, ff_status_t status);
/* The median of n > 0 values, with their minimum and maximum; `values` is left as it was. */
double median(const double *values, unsigned n, double *min, double *max);
/* The 1-minute load average (-1 when /proc/loadavg cannot be read): benchmarks print it beside results. */
double load_average(void);
/* Writes `s` to stdout as a JSON string (quotes and backslashes escaped, control characters dropped). */
void json_string(const char *s);

/* Two CPU numbers, "A,B" (--cpus of ffbench_poll and ffbench_ring); false for anything else. */
bool parse_cpus(const char *text, int cpus[2]);

#endif
