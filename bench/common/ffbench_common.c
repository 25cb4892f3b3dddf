#define _GNU_SOURCE /* program_invocation_short_name, sched_setaffinity */
#include "ffbench_common.h"
#include "ff_size.h"

#include <errno.h>
#include <getopt.h>
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

unsigned option_unsigned(const char *text, const char *option, unsigned min, unsigned max,
                         ffbench_usage_error_fn usage_error)
{
    long v = 0;
    if (!ff_parse_whole(text, (long) min, (long) max, &v)) {
        char message[160];
        snprintf(message, sizeof(message), "%s wants a whole number from %u to %u, got '%s'", option, min, max, text);
        usage_error(message);
    }
    return (unsigned) v;
}

size_t option_size(const char *text, const char *option, size_t max, ffbench_usage_error_fn usage_error)
{
    size_t v = 0;
    if (!ff_parse_size(text, &v) || v == 0 || v > max) {
        char message[160];
        snprintf(message, sizeof(message), "%s wants a size like 64K or 4M (1 B to %zu B), got '%s'", option, max,
                 text);
        usage_error(message);
    }
    return v;
}

void option_cpus(const char *text, int cpus[2], ffbench_usage_error_fn usage_error)
{
    char tail;
    if (sscanf(text, "%d,%d%c", &cpus[0], &cpus[1], &tail) != 2 || cpus[0] < 0 || cpus[1] < 0) {
        usage_error("--cpus wants two CPU numbers, e.g. 0,1");
    }
}

void option_refuse(int option, char *const argv[], ffbench_usage_error_fn usage_error)
{
    char message[96];
    snprintf(message, sizeof(message), "%s option '%s'", option == ':' ? "missing value of" : "unknown",
             argv[optind - 1]);
    usage_error(message);
}

void options_end(int argc, char *const argv[], ffbench_usage_error_fn usage_error)
{
    if (optind < argc) {
        char message[96];
        snprintf(message, sizeof(message), "unexpected argument '%s'", argv[optind]);
        usage_error(message);
    }
}
