/*
 * ffcheck.h: shared machinery of the ffcheck_* MPI correctness programs.
 *
 * Every program checks content, never just completion: a message's bytes are derived from
 * (seed, sender, receiver, tag, message index, byte offset), so data that is misrouted, reordered,
 * truncated, duplicated or stale differs from what the receiver expects. Failures are counted per
 * subtest, the first few are printed with rank, peer, size, offset, expected and got, and the counts are
 * summed over MPI_COMM_WORLD so that every rank exits 1 when any rank failed.
 */
#ifndef FFCHECK_H
#define FFCHECK_H

#include "ff_cli.h"
#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FF_KIB ((size_t) 1024)
#define FF_MIB (FF_KIB * 1024)

/* Bytes after a message in a receive buffer that must keep the poison value (overrun detection). */
#define FF_GUARD  64
#define FF_POISON 0xA5

/* Exit code of a run that was given bad options. */
#define FF_EXIT_USAGE 2
/* Exit code of a rank ended by the --timeout watchdog. */
#define FF_EXIT_TIMEOUT 124

/* The options of the programs: ff_option tables (ff_cli.h). */

typedef struct {
    const char *name;
    void (*run)(void);
    const char *help;
} ff_subtest;

/* What a program declares about itself; ff_main and ff_begin read it. */
typedef struct {
    const char *name;        /* "ffcheck_p2p" */
    const char *summary;     /* one line for --help */
    int min_ranks;           /* fewer ranks is a usage error; 0 means 2 */
    bool thread_multiple;    /* MPI_Init_thread asks for MPI_THREAD_MULTIPLE instead of SINGLE */
    bool data_options;       /* offers --iterations --max-size --seed --inject-fault ... */
    long default_iterations; /* 0 means 1 */
    size_t default_max_size;
    long default_timeout;       /* seconds; 0 means 300 */
    const ff_option *options;   /* program-specific options, terminated by {0} */
    const ff_subtest *subtests; /* terminated by {0}; NULL for programs without subtests */
} ff_program;

/* Identifies one message for the content pattern. For collectives `tag` names the operation and
 * `src`/`dst` are ranks in the communicator used. */
typedef struct {
    int src, dst, tag;
    uint64_t index;
} ff_msg;

typedef struct {
    unsigned char *p;
    size_t cap; /* usable payload bytes; FF_GUARD more are allocated */
} ff_buf;

/* Run-wide state, filled by ff_begin. Read-only for programs except through the functions below. */
typedef struct {
    const ff_program *prog;
    int rank, size;
    int min_ranks;
    int thread_provided;
    char host[256];
    long iterations;
    size_t max_size;
    long seed;
    bool inject_fault;
    long fault_rank; /* -1: every rank */
    long max_reports;
    long timeout;
    const char *only;
    bool verbose;
} ff_config;

extern ff_config ff;

/* Runs a program with subtests: init, options, every selected subtest, summary, finalize.
 * Returns the process exit code (0 only when every subtest passed on every rank). */
int ff_main(int argc, char **argv, const ff_program *prog);

/* Lower level, for programs with their own flow: ff_begin initialises MPI and parses options; when it
 * returns false the program must `return ff_finish();` at once (bad options or --help). */
bool ff_begin(int argc, char **argv, const ff_program *prog);
/* Finalizes MPI and returns the exit code (1 when any subtest failed on any rank). */
int ff_finish(void);
/* For checks of program-specific options after ff_begin: rank 0 prints the problem and the fix, and
 * ff_finish will return FF_EXIT_USAGE. Every rank must call it (options are the same everywhere). */
void ff_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Subtest bookkeeping for programs with their own flow. ff_subtest_end sums the failures over
 * MPI_COMM_WORLD, prints PASS/FAIL from rank 0 and returns true when the subtest passed everywhere. */
void ff_subtest_begin(const char *name);
bool ff_subtest_end(void);
/* A short detail printed after PASS/FAIL by rank 0, e.g. "17 sizes up to 64 MiB". */
void ff_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Counts a failure in the current subtest and prints it (the first --max-reports per rank).
 * Thread-safe. */
void ff_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Names what the calling thread is checking (e.g. "bcast on halves, root 2"); failure lines show it
 * until it is changed. ff_context(NULL) clears it. */
void ff_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ff_fail unless cond. Returns cond. */
bool ff_expect(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Failures counted on this rank in the current subtest. */
long ff_local_failures(void);

/* Content pattern. */
uint64_t ff_mix64(uint64_t x);
uint64_t ff_key(ff_msg m);
unsigned char ff_pattern_byte(uint64_t key, size_t offset);
void ff_fill(void *buf, size_t n, uint64_t key);
void ff_fill_msg(void *buf, size_t n, ff_msg m);
/* Checks n received bytes against the pattern of m (after --inject-fault corrupts one byte once per
 * subtest and rank). Reports the first difference and how many bytes differ. */
bool ff_check_msg(void *buf, size_t n, ff_msg m);
/* --inject-fault hook for checkers of non-pattern data (reductions): corrupts one byte of buf the
 * first time it is called in a subtest on a fault rank. */
void ff_maybe_inject(void *buf, size_t n);
/* Checks that bytes [from, to) of buf still hold FF_POISON (nothing written where nothing was sent).
 * `what` names the region in the diagnostic. */
bool ff_check_poison(const void *buf, size_t from, size_t to, const char *what);
/* 64-bit checksum of a byte range (order sensitive). */
uint64_t ff_checksum(const void *buf, size_t n);

/* Receive buffers: ff_buf_prepare poisons the first `expected` bytes plus FF_GUARD; ff_buf_check
 * checks the message and that the FF_GUARD bytes after it are untouched. */
ff_buf ff_buf_new(size_t cap);
void ff_buf_free(ff_buf *b);
void ff_buf_prepare(ff_buf *b, size_t expected);
bool ff_buf_check(ff_buf *b, size_t received, ff_msg m);

/* Checks a receive status: MPI_SOURCE, MPI_TAG and the byte count (MPI_Get_count with MPI_BYTE). */
bool ff_check_status(const MPI_Status *st, int source, int tag, size_t bytes, const char *what);

/* Deterministic random numbers (splitmix64). */
uint64_t ff_rand(uint64_t *state);
/* Uniform in [0, n). n > 0. */
uint64_t ff_rand_below(uint64_t *state, uint64_t n);

/* The message sizes every program covers: 0, 1, 7, 8, 63, 64, 65, 4095..4097, 32767..32769,
 * 65535..65537, 1 MiB+13, 64 MiB, and others, limited to max (and max itself). Returns the count. */
size_t ff_standard_sizes(size_t max, size_t *out, size_t cap);
/* Human-readable size ("64 MiB", "1 MiB+13", "4097 B") into buf. */

/* Peers at distance d around the ring. */
int ff_peer_to(int d);
int ff_peer_from(int d);

/* malloc that ends the job with a clear message when memory runs out. */
void *ff_xmalloc(size_t n);

#endif
