#define _GNU_SOURCE /* program_invocation_short_name, sched_setaffinity */
#include "ffbench_common.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        fprintf(stderr, "%s: cannot pin to CPU %d: %s (use --cpus)\n", program_invocation_short_name, cpu,
                strerror(errno));
        exit(1);
    }
}

pid_t fork_pinned(int child_cpu)
{
    const pid_t child = fork();
    if (child < 0) {
        perror("fork");
        exit(1);
    }
    if (child == 0) {
        pin(child_cpu);
    }
    return child;
}

void make_pipe(int fds[2])
{
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
}

void create_unlinked_segments(ff_segment_config_t config, const uint64_t *owners, unsigned count, ff_segment_t **out)
{
    char dir[] = "/dev/shm/ffbench-XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "%s: cannot make a directory in /dev/shm: %s\n", program_invocation_short_name,
                strerror(errno));
        exit(1);
    }
    config.dir = dir;
    ff_status_t status = ff_host_id_read(dir, &config.host);
    unsigned created = 0;
    for (; created < count && status == FF_OK; ++created) {
        config.owner_id = owners[created];
        status = ff_segment_create(&config, &out[created]);
        if (status != FF_OK) {
            break;
        }
    }
    /* unlinked before any exit, failed or not: nothing stays in /dev/shm */
    for (unsigned i = 0; i < created; ++i) {
        ff_segment_unlink(out[i]);
    }
    rmdir(dir);
    if (status != FF_OK) {
        die("creating the segments", status);
    }
}

double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec * 1e9 + (double) t.tv_nsec;
}

void die(const char *what, ff_status_t status)
{
    fprintf(stderr, "%s: %s: %s (%s)\n", program_invocation_short_name, what, ff_status_name(status),
            ff_status_describe(status));
    exit(1);
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

double median(const double *values, unsigned n, double *min, double *max)
{
    double *sorted = malloc(n * sizeof(double));
    if (!sorted) {
        perror("malloc");
        exit(1);
    }
    memcpy(sorted, values, n * sizeof(double));
    qsort(sorted, n, sizeof(double), compare_double);
    *min = sorted[0];
    *max = sorted[n - 1];
    const double m = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    free(sorted);
    return m;
}

double load_average(void)
{
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) {
            load = -1;
        }
        fclose(f);
    }
    return load;
}

void json_string(const char *s)
{
    putchar('"');
    for (; *s; ++s) {
        if (*s == '"' || *s == '\\') {
            putchar('\\');
        }
        if ((unsigned char) *s >= 0x20) {
            putchar(*s);
        }
    }
    putchar('"');
}

bool parse_cpus(const char *text, int cpus[2])
{
    char tail;
    return sscanf(text, "%d,%d%c", &cpus[0], &cpus[1], &tail) == 2 && cpus[0] >= 0 && cpus[1] >= 0;
}
