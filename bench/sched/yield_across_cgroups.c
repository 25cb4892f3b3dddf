/*
 * Does sched_yield hand the core to a busy process of another cpu cgroup? (docs/btl.md, "4 ranks in 4
 * containers"). `yield_across_cgroups --busy` spins forever; without options it calls sched_yield for
 * 2 s and prints how many calls gave the core away (took over 20 us) and for how long. Run both pinned
 * to one vCPU, in one cgroup or in two: run.sh does that.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "ff_cli.h"

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

static bool busy = false;
static const ff_option options[] = {
    {"busy", FF_OPT_FLAG, &busy, 0, 0, "spin forever; without it: sched_yield for 2 s and print what it gave away"},
    {0},
};
static const ff_cli cli = {.program = "yield_across_cgroups", .usage = "[--busy]", .tables = {options}};

int main(int argc, char **argv)
{
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, true);
    if (status != FF_CLI_PROCEED) {
        return status;
    }
    if (busy) {
        for (;;) {
            __asm__ volatile("");
        }
    }
    const double end = now_seconds() + 2.0;
    long calls = 0, gave_away = 0;
    double away_seconds = 0.0;
    for (double start = now_seconds(); start < end; start = now_seconds()) {
        sched_yield();
        const double took = now_seconds() - start;
        ++calls;
        if (took > 20e-6) {
            ++gave_away;
            away_seconds += took;
        }
    }
    printf("{\"yields\":%ld,\"gave_the_core_away\":%ld,\"seconds_away_of_2\":%.2f}\n", calls, gave_away, away_seconds);
    return 0;
}
