/* ffcheck_run.c: run bookkeeping of the ffcheck_* programs: MPI start and end, subtests, failure
 * counting and reporting, fault injection, the watchdog. */
#include "ffcheck.h"
#include "ffcheck_internal.h"

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ff_config ff;

/* What the calling thread is checking; set by ff_context, shown in failure lines. */
static _Thread_local char context[160];

static struct {
    int exit_code;
    /* current subtest */
    const char *subtest;
    double started;
    char note[256];
    atomic_long failures;
    atomic_long reports;
    atomic_bool fault_armed;
    /* totals */
    int subtests_run, subtests_failed;
} state;

/* ------------------------------------------------------------------------------------------------ */
/* Watchdog: a lost message makes MPI programs hang; a rank that says where it hung is worth more.   */

static char watchdog_message[512];
static size_t watchdog_length;

static void watchdog_fired(int sig)
{
    (void) sig;
    /* Only async-signal-safe calls here: the message was formatted in advance. */
    ssize_t ignored = write(STDERR_FILENO, watchdog_message, watchdog_length);
    (void) ignored;
    _exit(FF_EXIT_TIMEOUT);
}

static void watchdog_describe(const char *where)
{
    int n = snprintf(watchdog_message, sizeof watchdog_message,
                     "%s: rank %d on %s: TIMEOUT: still running after %ld s (%s); a message was "
                     "probably lost or a peer hung or died. Raise --timeout if the machine is just slow.\n",
                     ff.prog->name, ff.rank, ff.host, ff.timeout, where);
    watchdog_length = n < 0 ? 0 : ((size_t) n < sizeof watchdog_message ? (size_t) n : sizeof watchdog_message - 1);
}

static void watchdog_start(void)
{
    if (ff.timeout <= 0) return;
    watchdog_describe("before the first subtest");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog_fired;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned) ff.timeout);
}

void ff_usage_error(const char *fmt, ...)
{
    if (ff.rank == 0) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", ff.prog->name);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    state.exit_code = FF_EXIT_USAGE;
}

/* ------------------------------------------------------------------------------------------------ */
/* Run bookkeeping                                                                                   */

bool ff_begin(int argc, char **argv, const ff_program *prog)
{
    ff.prog = prog;
    ff.min_ranks = prog->min_ranks > 0 ? prog->min_ranks : 2;
    MPI_Init_thread(&argc, &argv, prog->thread_multiple ? MPI_THREAD_MULTIPLE : MPI_THREAD_SINGLE, &ff.thread_provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &ff.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ff.size);
    /* Lines from many ranks pass through mpirun's pipes: keep each one whole and timely. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (gethostname(ff.host, sizeof ff.host - 1) != 0) snprintf(ff.host, sizeof ff.host, "unknown-host");

    ff.iterations = prog->default_iterations > 0 ? prog->default_iterations : 1;
    ff.max_size = prog->default_max_size;
    ff.seed = 1;
    ff.fault_rank = -1;
    ff.max_reports = 5;
    ff.timeout = prog->default_timeout > 0 ? prog->default_timeout : 300;

    switch (ff_options_parse(argc, argv)) {
    case FF_PARSE_ERROR: return false;
    case FF_PARSE_HELP:
        if (ff.rank == 0) ff_options_print_help();
        return false;
    case FF_PARSE_LIST:
        for (const ff_subtest *t = prog->subtests; ff.rank == 0 && t && t->name; t++) printf("%s\n", t->name);
        return false;
    case FF_PARSE_RUN: break;
    }
    if (ff.size < ff.min_ranks) {
        ff_usage_error("needs at least %d ranks, got %d: run it with mpirun -n %d or more.", ff.min_ranks, ff.size,
                       ff.min_ranks);
        return false;
    }
    if (ff.fault_rank >= ff.size) {
        ff_usage_error("--fault-rank %ld does not exist: the job has ranks 0 to %d.", ff.fault_rank, ff.size - 1);
        return false;
    }
    watchdog_start();
    if (ff.rank == 0 && prog->data_options) {
        char sz[32];
        printf("%s: %d ranks, seed %ld, iterations %ld, max size %s%s\n", prog->name, ff.size, ff.seed, ff.iterations,
               ff_size_str(ff.max_size, sz, sizeof sz),
               ff.inject_fault ? ", INJECTING FAULTS (every subtest that receives data must fail)" : "");
    }
    return true;
}

int ff_finish(void)
{
    if (ff.rank == 0 && state.subtests_run > 0) {
        if (state.subtests_failed == 0)
            printf("%s: all %d subtests passed on %d ranks\n", ff.prog->name, state.subtests_run, ff.size);
        else
            printf("%s: %d of %d subtests FAILED on %d ranks\n", ff.prog->name, state.subtests_failed,
                   state.subtests_run, ff.size);
    }
    /* The watchdog stays armed: a transport that cannot finalize must not hang the job either. */
    watchdog_describe("in MPI_Finalize");
    MPI_Finalize();
    alarm(0);
    if (state.exit_code) return state.exit_code;
    return state.subtests_failed ? 1 : 0;
}

void ff_subtest_begin(const char *name)
{
    char where[128];
    snprintf(where, sizeof where, "in subtest %s", name);
    watchdog_describe(where);
    state.subtest = name;
    state.note[0] = 0;
    context[0] = 0;
    atomic_store(&state.failures, 0);
    atomic_store(&state.reports, 0);
    atomic_store(&state.fault_armed, ff.inject_fault && (ff.fault_rank < 0 || ff.fault_rank == ff.rank));
    state.started = MPI_Wtime();
    if (ff.verbose && ff.rank == 0) printf("running %s\n", name);
}

bool ff_subtest_end(void)
{
    long local[2] = {atomic_load(&state.failures), 0};
    local[1] = local[0] > 0;
    long total[2];
    MPI_Allreduce(local, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    double seconds = MPI_Wtime() - state.started;
    state.subtests_run++;
    if (total[0]) state.subtests_failed++;
    if (ff.rank == 0) {
        const char *sep = state.note[0] ? ", " : "";
        if (total[0])
            printf("FAIL %s: %ld check failures on %ld of %d ranks (%s%s%.2f s)\n", state.subtest, total[0], total[1],
                   ff.size, state.note, sep, seconds);
        else
            printf("PASS %s (%s%s%.2f s)\n", state.subtest, state.note, sep, seconds);
    }
    watchdog_describe("between subtests");
    return total[0] == 0;
}

void ff_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(state.note, sizeof state.note, fmt, ap);
    va_end(ap);
}

int ff_main(int argc, char **argv, const ff_program *prog)
{
    if (ff_begin(argc, argv, prog)) {
        for (const ff_subtest *t = prog->subtests; t->name; t++) {
            if (!ff_subtest_selected(t->name)) continue;
            ff_subtest_begin(t->name);
            t->run();
            ff_subtest_end();
        }
    }
    return ff_finish();
}

void ff_context(const char *fmt, ...)
{
    if (!fmt) {
        context[0] = 0;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
}

static void vfail(const char *fmt, va_list ap)
{
    atomic_fetch_add(&state.failures, 1);
    long n = atomic_fetch_add(&state.reports, 1);
    if (n < ff.max_reports) {
        char text[768];
        vsnprintf(text, sizeof text, fmt, ap);
        fprintf(stderr, "%s: rank %d on %s [%s%s%s]: %s\n", ff.prog->name, ff.rank, ff.host,
                state.subtest ? state.subtest : "-", context[0] ? ": " : "", context, text);
    } else if (n == ff.max_reports) {
        fprintf(stderr, "%s: rank %d [%s]: further failures are counted, not printed (--max-reports)\n", ff.prog->name,
                ff.rank, state.subtest ? state.subtest : "-");
    }
}

void ff_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
}

bool ff_expect(bool cond, const char *fmt, ...)
{
    if (!cond) {
        va_list ap;
        va_start(ap, fmt);
        vfail(fmt, ap);
        va_end(ap);
    }
    return cond;
}

long ff_local_failures(void)
{
    return atomic_load(&state.failures);
}

void ff_maybe_inject(void *buf, size_t n)
{
    if (n > 0 && atomic_load(&state.fault_armed) && atomic_exchange(&state.fault_armed, false))
        ((unsigned char *) buf)[n / 2] ^= 0x01;
}
