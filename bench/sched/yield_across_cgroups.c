/*
 * Does sched_yield hand the core to a busy process of another cpu cgroup? (docs/btl.md, "4 ranks in 4
 * containers"). `yield_across_cgroups --busy` spins forever; without options it calls sched_yield for
 * 2 s and prints how many calls gave the core away (took over 20 us) and for how long. Run both pinned
 * to one vCPU, in one cgroup or in two: run.sh does that.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

static const char usage_text[] = "usage: yield_across_cgroups [--busy]\n"
                                 "--busy: spin forever; without it: sched_yield for 2 s and print what it gave away\n";

int main(int argc, char **argv)
{
    bool busy = false;
    static const struct option longopts[] = {
        {"busy", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    opterr = 0; /* the messages are ours */
    int option;
    while ((option = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (option == 'h') {
            fputs(usage_text, stdout);
            return 0;
        }
        if (option != 'b') {
            fprintf(stderr, "yield_across_cgroups: unknown option '%s'\n%s", argv[optind - 1], usage_text);
            return 2;
        }
        busy = true;
    }
    if (optind < argc) {
        fprintf(stderr, "yield_across_cgroups: unexpected argument '%s'\n%s", argv[optind], usage_text);
        return 2;
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
