/*
 * ffcheck_rma: MPI one-sided communication checked for every window flavour (create, allocate, dynamic),
 * every synchronisation (fence, post-start-complete-wait, lock shared/exclusive + flush, lock_all +
 * flush_all/flush_local) and every operation (put, get, rput, rget, accumulate, get_accumulate,
 * fetch_and_op, compare_and_swap), between every pair of ranks, with MPI_THREAD_MULTIPLE requested and,
 * when provided, threads issuing atomics concurrently. Every value is checked: data is a function of
 * (flavour, origin, target, index), and atomics are checked for exact totals AND for distinct fetched
 * values (a lost or doubled update, or a non-atomic read-modify-write, shows up). No harness: rank 0
 * prints one PASS/FAIL line per subtest and a summary; exit 1 on any failure.
 *   ffcheck_rma [--big SIZE] [--iterations N] [--flavours create,allocate,dynamic]
 *               [--subtests fence,pscw,lock,lock_all,threads,bulk] [--thread-rounds N] [--threads-mix]
 *               [--thread-level single|funneled|multiple] [--inject-fault]
 * (osc pt2pt, the component for windows that osc rdma cannot serve, refuses MPI_THREAD_MULTIPLE: the
 * manifest runs such layouts with --thread-level funneled; the threads subtest then SKIPs.)
 * --inject-fault corrupts one fetched value per subtest on rank 0 before checking: every subtest must then
 * FAIL (proves the checks can fail).
 */
#include "ff_cli.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum flavour { CREATE, ALLOCATE, DYNAMIC, FLAVOURS };
static const char *const flavour_names[FLAVOURS] = {"create", "allocate", "dynamic"};

static int rank, size, iterations = 4, inject_fault;
static const char *only_flavour;  /* --flavours create,allocate,dynamic: just those */
static const char *only_subtests; /* --subtests fence,pscw,lock,lock_all,threads,bulk: just those */
static int requested_level = MPI_THREAD_MULTIPLE;
static size_t big = (1u << 20) + 13; /* above the BTL's per-request limit: split by osc */
static int count = 1024;             /* ints per origin slot */
static long failures;                /* this rank, current subtest */
static int subtests_run;

/* Window layout (bytes, disp_unit 1). */
static size_t off_slots, off_sum, off_fop, off_cas, off_gacc, off_thr, off_big, off_acc, off_mt, win_bytes;

static MPI_Win win;
static unsigned char *base; /* our window memory */
static MPI_Aint *disp_base; /* per target: what to add to an offset (0, or the attached address) */
static enum flavour current;
static int provided_level;

#define FAILF(...)                                                                                                     \
    do {                                                                                                               \
        if (failures++ < 3) {                                                                                          \
            fprintf(stderr, "ffcheck_rma: rank %d [%s]: ", rank, flavour_names[current]);                              \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

static int value(int from, int to, int i, int round)
{
    return (int) (current * 7777 + from * 1000003 + to * 7919 + i * 3 + round * 104729);
}

static MPI_Aint at(int target, size_t offset)
{
    return disp_base[target] + (MPI_Aint) offset;
}

static void maybe_inject(long long *fetched)
{
    if (inject_fault && rank == 0) {
        *fetched ^= 1; /* one bit of one fetched value */
    }
}

static void reset_window(void)
{
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win);
    memset(base, 0, win_bytes);
    long long minus_one = -1;
    memcpy(base + off_cas, &minus_one, sizeof(minus_one));
    MPI_Win_unlock(rank, win);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* fence: put a block into every peer (and ourselves), get it back, check both sides; accumulate. */
static void test_fence(void)
{
    int *block = malloc(sizeof(int) * (size_t) count), *back = malloc(sizeof(int) * (size_t) count);
    for (int round = 0; round < iterations; ++round) {
        MPI_Win_fence(0, win);
        for (int peer = 0; peer < size; ++peer) {
            for (int i = 0; i < count; ++i) block[i] = value(rank, peer, i, round);
            MPI_Put(block, count, MPI_INT, peer, at(peer, off_slots + sizeof(int) * (size_t) rank * count), count,
                    MPI_INT, win);
            MPI_Win_fence(0, win);
            memset(back, 0xa5, sizeof(int) * (size_t) count);
            MPI_Get(back, count, MPI_INT, peer, at(peer, off_slots + sizeof(int) * (size_t) rank * count), count,
                    MPI_INT, win);
            MPI_Win_fence(0, win);
            if (inject_fault && rank == 0 && peer == 0) back[0] ^= 1;
            for (int i = 0; i < count; ++i) {
                if (back[i] != block[i]) {
                    FAILF("fence: get from %d differs at %d (got %d expected %d)", peer, i, back[i], block[i]);
                    break;
                }
            }
        }
        int one = round + 1;
        for (int peer = 0; peer < size; ++peer) {
            MPI_Accumulate(&one, 1, MPI_INT, peer, at(peer, off_sum), 1, MPI_INT, MPI_SUM, win);
        }
        MPI_Win_fence(0, win);
        for (int from = 0; from < size; ++from) {
            const int *slot = (const int *) (base + off_slots) + (size_t) from * count;
            for (int i = 0; i < count; ++i) {
                if (slot[i] != value(from, rank, i, round)) {
                    FAILF("fence: window slot of %d differs at %d", from, i);
                    break;
                }
            }
        }
        int sum;
        memcpy(&sum, base + off_sum, sizeof(sum));
        const int expected = size * (round + 1) * (round + 2) / 2;
        if (sum != expected) FAILF("fence: accumulated %d, expected %d", sum, expected);
    }
    MPI_Win_fence(MPI_MODE_NOSUCCEED, win);
    free(block);
    free(back);
}

/* post-start-complete-wait with the group of all ranks: puts and accumulates in access epochs. */
static void test_pscw(void)
{
    MPI_Group world;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    int *block = malloc(sizeof(int) * (size_t) count);
    for (int round = 0; round < iterations; ++round) {
        MPI_Win_post(world, 0, win);
        MPI_Win_start(world, 0, win);
        for (int peer = 0; peer < size; ++peer) {
            for (int i = 0; i < count; ++i) block[i] = value(rank, peer, i, round + 50);
            MPI_Put(block, count, MPI_INT, peer, at(peer, off_slots + sizeof(int) * (size_t) rank * count), count,
                    MPI_INT, win);
            int add = peer + 1;
            MPI_Accumulate(&add, 1, MPI_INT, peer, at(peer, off_sum), 1, MPI_INT, MPI_SUM, win);
        }
        MPI_Win_complete(win);
        MPI_Win_wait(win);
        /* exposure epoch over: everything addressed to us is here */
        for (int from = 0; from < size; ++from) {
            const int *slot = (const int *) (base + off_slots) + (size_t) from * count;
            int got0 = slot[0];
            if (inject_fault && rank == 0 && from == 0 && round == 0) got0 ^= 1;
            for (int i = 0; i < count; ++i) {
                if ((i ? slot[i] : got0) != value(from, rank, i, round + 50)) {
                    FAILF("pscw: window slot of %d differs at %d (round %d)", from, i, round);
                    break;
                }
            }
        }
        int sum;
        memcpy(&sum, base + off_sum, sizeof(sum));
        if (sum != size * (rank + 1) * (round + 1))
            FAILF("pscw: accumulated %d, expected %d", sum, size * (rank + 1) * (round + 1));
    }
    free(block);
    MPI_Group_free(&world);
    MPI_Barrier(MPI_COMM_WORLD);
}

static int compare_ll(const void *a, const void *b)
{
    const long long x = *(const long long *) a, y = *(const long long *) b;
    return x < y ? -1 : x > y;
}

/* Fetched values of n increments by 1 of one counter, gathered at rank 0: must be exactly 0..total-1. */
static void check_distinct(long long *mine, int n, const char *what)
{
    long long *all = rank == 0 ? malloc(sizeof(long long) * (size_t) n * size) : NULL;
    MPI_Gather(mine, n, MPI_LONG_LONG, all, n, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        qsort(all, (size_t) n * size, sizeof(long long), compare_ll);
        for (long long i = 0; i < (long long) n * size; ++i) {
            if (all[i] != i) {
                FAILF("%s: fetched values are not 0..%lld exactly once (position %lld holds %lld)", what,
                      (long long) n * size - 1, i, all[i]);
                break;
            }
        }
        free(all);
    }
}

/* passive target, exclusive and shared locks: fetch_and_op, get_accumulate, accumulate, cas, flush. */
static void test_lock(void)
{
    const int n = 16 * iterations;
    long long *fetched = malloc(sizeof(long long) * (size_t) n);
    long long one = 1;
    /* fetch_and_op on rank 0's counter, shared lock, one flush per operation */
    MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win);
    for (int i = 0; i < n; ++i) {
        MPI_Fetch_and_op(&one, &fetched[i], MPI_LONG_LONG, 0, at(0, off_fop), MPI_SUM, win);
        MPI_Win_flush(0, win);
    }
    MPI_Win_unlock(0, win);
    maybe_inject(&fetched[0]);
    check_distinct(fetched, n, "lock/fetch_and_op");

    /* get_accumulate SUM on the last rank's counter, exclusive lock */
    const int last = size - 1;
    for (int i = 0; i < n; ++i) {
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, last, 0, win);
        MPI_Get_accumulate(&one, 1, MPI_LONG_LONG, &fetched[i], 1, MPI_LONG_LONG, last, at(last, off_gacc), 1,
                           MPI_LONG_LONG, MPI_SUM, win);
        MPI_Win_unlock(last, win);
    }
    check_distinct(fetched, n, "lock/get_accumulate");

    /* compare_and_swap: every rank tries to claim every target's slot (-1 -> own rank); one wins each */
    int won = 0;
    for (int peer = 0; peer < size; ++peer) {
        long long mine = rank, expected = -1, old = 0;
        MPI_Win_lock(MPI_LOCK_SHARED, peer, 0, win);
        MPI_Compare_and_swap(&mine, &expected, &old, MPI_LONG_LONG, peer, at(peer, off_cas), win);
        MPI_Win_unlock(peer, win);
        if (old == -1) {
            ++won;
        } else if (old < 0 || old >= size) {
            FAILF("lock/compare_and_swap: target %d held %lld", peer, old);
        }
    }
    int total_won = 0;
    MPI_Allreduce(&won, &total_won, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0 && total_won != size) FAILF("lock/compare_and_swap: %d winners over %d targets", total_won, size);

    /* accumulate MAX/MIN/REPLACE/BAND with a get in the same exclusive epoch after a flush */
    for (int peer = 0; peer < size; ++peer) {
        int v = 1000 + rank, got = 0;
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, peer, 0, win);
        MPI_Accumulate(&v, 1, MPI_INT, peer, at(peer, off_sum), 1, MPI_INT, MPI_MAX, win);
        MPI_Win_flush(peer, win);
        MPI_Get(&got, 1, MPI_INT, peer, at(peer, off_sum), 1, MPI_INT, win);
        MPI_Win_unlock(peer, win);
        if (got < v) FAILF("lock/accumulate MAX: target %d holds %d < %d", peer, got, v);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    long long counter, gacc, cas;
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win);
    memcpy(&counter, base + off_fop, sizeof(counter));
    memcpy(&gacc, base + off_gacc, sizeof(gacc));
    memcpy(&cas, base + off_cas, sizeof(cas));
    int maxed;
    memcpy(&maxed, base + off_sum, sizeof(maxed));
    MPI_Win_unlock(rank, win);
    if (rank == 0 && counter != (long long) n * size)
        FAILF("lock/fetch_and_op: counter %lld, expected %lld", counter, (long long) n * size);
    if (rank == last && gacc != (long long) n * size)
        FAILF("lock/get_accumulate: counter %lld, expected %lld", gacc, (long long) n * size);
    if (cas < 0 || cas >= size) FAILF("lock/compare_and_swap: slot holds %lld", cas);
    if (maxed != 1000 + size - 1) FAILF("lock/accumulate MAX: %d, expected %d", maxed, 1000 + size - 1);
    free(fetched);
}

/* lock_all: rput/rget of a large block to the next rank with flush_local and flush_all; a put then get of
 * the same location after flush must see the put. */
static void test_lock_all(void)
{
    const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    unsigned char *out = malloc(big), *in = malloc(big);
    for (int round = 0; round < iterations; ++round) {
        for (size_t i = 0; i < big; ++i) out[i] = (unsigned char) (value(rank, next, (int) i, round) >> 3);
        memset(in, 0xa5, big);
        MPI_Win_lock_all(0, win);
        MPI_Request request;
        MPI_Rput(out, (int) big, MPI_BYTE, next, at(next, off_big), (int) big, MPI_BYTE, win, &request);
        MPI_Wait(&request, MPI_STATUS_IGNORE); /* local completion: out may be reused */
        MPI_Win_flush_local(next, win);
        MPI_Win_flush(next, win); /* remote completion: the get below must see it */
        MPI_Rget(in, (int) big, MPI_BYTE, next, at(next, off_big), (int) big, MPI_BYTE, win, &request);
        MPI_Wait(&request, MPI_STATUS_IGNORE);
        long long one = 1, old;
        MPI_Fetch_and_op(&one, &old, MPI_LONG_LONG, next, at(next, off_thr), MPI_SUM, win);
        MPI_Win_flush_all(win);
        MPI_Win_unlock_all(win);
        if (inject_fault && rank == 0 && round == 0) in[big / 2] ^= 1;
        if (memcmp(in, out, big) != 0) {
            size_t i = 0;
            while (in[i] == out[i]) ++i;
            FAILF("lock_all: %zu-byte rget from %d differs at %zu", big, next, i);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        /* what prev put into us */
        for (size_t i = 0; i < big; ++i) {
            if (base[off_big + i] != (unsigned char) (value(prev, rank, (int) i, round) >> 3)) {
                FAILF("lock_all: window bytes from %d differ at %zu", prev, i);
                break;
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    long long thr;
    MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win);
    memcpy(&thr, base + off_thr, sizeof(thr));
    MPI_Win_unlock(rank, win);
    if (thr != iterations) FAILF("lock_all: fetch_and_op counter %lld, expected %d", thr, iterations);
    free(out);
    free(in);
}

/* Large transfers of every operation, checked byte for byte: accumulate (SUM) and get_accumulate over
 * `big` bytes of ints from every rank into every rank at once, and puts of `big`/THREADS-byte chunks at
 * odd offsets by THREADS threads at once under MPI_THREAD_MULTIPLE (one thread otherwise). Every transfer
 * spans many BTL fragments and the partial pages at both ends of the window memory (single copy serves
 * whole pages, the target the rest: docs/onesided.md). */
#define THREADS 3
static int acc_value(int from, int i, int round)
{
    return (from + 1) * ((i * 7 + round) % 1009 + 1);
}

typedef struct {
    int index, target, round;
    size_t chunk;
    unsigned char *data;
} bulk_job_t;

static unsigned char mt_byte(int from, size_t i, int round)
{
    return (unsigned char) ((i * 131 + from * 17 + round * 5) >> 1);
}

static void *bulk_put_main(void *arg)
{
    bulk_job_t *job = arg;
    const size_t offset = off_mt + (size_t) job->index * job->chunk;
    for (size_t i = 0; i < job->chunk; ++i) job->data[i] = mt_byte(rank, offset - off_mt + i, job->round);
    MPI_Put(job->data, (int) job->chunk, MPI_BYTE, job->target, at(job->target, offset), (int) job->chunk, MPI_BYTE,
            win);
    MPI_Win_flush(job->target, win);
    return NULL;
}

static void test_bulk(void)
{
    const int n = (int) (big / sizeof(int));
    const size_t chunk = big / THREADS;
    const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    int *contribution = malloc(sizeof(int) * (size_t) n), *fetched = malloc(sizeof(int) * (size_t) n);
    for (int round = 0; round < iterations; ++round) {
        for (int i = 0; i < n; ++i) contribution[i] = acc_value(rank, i, round);
        MPI_Win_lock_all(0, win);
        for (int peer = 0; peer < size; ++peer) {
            MPI_Accumulate(contribution, n, MPI_INT, peer, at(peer, off_acc), n, MPI_INT, MPI_SUM, win);
        }
        MPI_Win_flush_all(win);
        MPI_Win_unlock_all(win);
        MPI_Barrier(MPI_COMM_WORLD);
        /* every rank's window: the sum of all contributions of all rounds so far */
        MPI_Win_lock_all(0, win);
        memset(fetched, 0xa5, sizeof(int) * (size_t) n);
        MPI_Get_accumulate(NULL, 0, MPI_INT, fetched, n, MPI_INT, next, at(next, off_acc), n, MPI_INT, MPI_NO_OP, win);
        MPI_Win_flush(next, win);
        MPI_Win_unlock_all(win);
        if (inject_fault && rank == 0 && round == 0) fetched[n - 1] ^= 1;
        for (int i = 0; i < n; ++i) {
            long long expected = 0;
            for (int r = 0; r <= round; ++r) {
                for (int from = 0; from < size; ++from) expected += acc_value(from, i, r);
            }
            if (fetched[i] != (int) expected) {
                FAILF("bulk: accumulated int %d of %d at %d is %d, expected %lld", i, n, next, fetched[i], expected);
                break;
            }
        }
        /* concurrent puts of chunks into the next rank */
        bulk_job_t jobs[THREADS];
        pthread_t threads[THREADS];
        MPI_Win_lock_all(0, win);
        for (int t = 0; t < THREADS; ++t) {
            jobs[t] = (bulk_job_t){.index = t, .target = next, .round = round, .chunk = chunk, .data = malloc(chunk)};
            if (provided_level == MPI_THREAD_MULTIPLE)
                pthread_create(&threads[t], NULL, bulk_put_main, &jobs[t]);
            else
                bulk_put_main(&jobs[t]);
        }
        for (int t = 0; t < THREADS; ++t) {
            if (provided_level == MPI_THREAD_MULTIPLE) pthread_join(threads[t], NULL);
            free(jobs[t].data);
        }
        MPI_Win_unlock_all(win);
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win);
        if (inject_fault && rank == 0 && round == 0) base[off_mt + chunk] ^= 1;
        for (size_t i = 0; i < chunk * THREADS; ++i) {
            if (base[off_mt + i] != mt_byte(prev, i, round)) {
                FAILF("bulk: byte %zu of the chunks %d put from %d threads differs", i, prev, THREADS);
                break;
            }
        }
        MPI_Win_unlock(rank, win);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    free(contribution);
    free(fetched);
}

/* MPI_THREAD_MULTIPLE: threads of every rank hammer every rank's counters inside one lock_all epoch:
 * fetch_and_op (MPI_SUM) increments on one word, compare_and_swap-based increments (MPI_NO_OP read, then
 * CAS until it sticks) on another. The two kinds never touch the same word at once: the window's default
 * accumulate_ops assertion (same_op_no_op) promises that concurrent accumulate functions on one location
 * use the same operation or MPI_NO_OP, and Open MPI 4.1.4's osc rdma relies on it (docs/onesided.md, "A
 * lost atomic update"): a fetch_and_op on a rank's own memory is a plain load-op-store under the
 * accumulate lock, which compare_and_swap never takes. --threads-mix puts both kinds on one word (the
 * erroneous program this subtest used to be; for showing that behaviour, not for the suite).
 * Then every thread of every rank CAS-increments rank 0's hot word, where rank 0's own CAS meets all the
 * others' (the lost update of docs/onesided.md showed there).
 * Checked: each word's total over all ranks is exact, every fetched value is possible, the values the SUM
 * increments fetched on one target are distinct, and the hot word's CAS increments fetched exactly 0..N-1
 * (a lost or doubled update shows). --thread-rounds raises the count for a stress run. */
typedef struct {
    int index, n;
    long long *fetched;
    int *target_of;
    long long *hot; /* n/2 values fetched by the CAS increments of rank 0's hot word */
} thread_job_t;

static int thread_rounds; /* --thread-rounds N: increments per thread are 8 * N (default: --iterations) */
static int threads_mix;   /* --threads-mix: SUM and CAS increments on the same word (erroneous, see above) */

static size_t sum_word(void)
{
    return off_thr;
}
static size_t cas_word(void)
{
    return threads_mix ? off_thr : off_thr + 8;
}
/* Rank 0's hot word: every thread of every rank CAS-increments it, so rank 0's own CAS (osc rdma's
 * "local" path) meets its peers' as often as possible. */
static size_t hot_word(void)
{
    return off_thr + 16;
}

/* Increments the long long at `offset` of `target` by compare_and_swap until it sticks; returns the old
 * value it added to. */
static long long cas_increment(int target, size_t offset)
{
    long long seen = 0, next, old;
    MPI_Fetch_and_op(NULL, &seen, MPI_LONG_LONG, target, at(target, offset), MPI_NO_OP, win);
    MPI_Win_flush(target, win);
    for (;;) {
        next = seen + 1;
        MPI_Compare_and_swap(&next, &seen, &old, MPI_LONG_LONG, target, at(target, offset), win);
        MPI_Win_flush(target, win);
        if (old == seen) return old;
        seen = old;
    }
}

static void *thread_main(void *arg)
{
    thread_job_t *job = arg;
    long long one = 1;
    for (int i = 0; i < job->n; ++i) {
        const int target = (rank + i + job->index) % size;
        job->target_of[i] = target;
        if (i % 2 == 0) {
            MPI_Fetch_and_op(&one, &job->fetched[i], MPI_LONG_LONG, target, at(target, sum_word()), MPI_SUM, win);
        } else {
            job->fetched[i] = cas_increment(target, cas_word());
        }
        MPI_Win_flush(target, win);
    }
    if (!threads_mix) {
        for (int i = 0; i < job->n / 2; ++i) job->hot[i] = cas_increment(0, hot_word());
    }
    return NULL;
}

static int compare_long_long(const void *a, const void *b)
{
    const long long x = *(const long long *) a, y = *(const long long *) b;
    return (x > y) - (x < y);
}

static void test_threads(int provided)
{
    if (provided != MPI_THREAD_MULTIPLE) {
        if (rank == 0) printf("SKIP threads (MPI_THREAD_MULTIPLE not provided: %d)\n", provided);
        return;
    }
    const int n = 8 * (thread_rounds > 0 ? thread_rounds : iterations); /* even: half SUM, half CAS */
    thread_job_t jobs[THREADS];
    pthread_t threads[THREADS];
    MPI_Win_lock_all(0, win);
    for (int t = 0; t < THREADS; ++t) {
        jobs[t].index = t;
        jobs[t].n = n;
        jobs[t].fetched = malloc(sizeof(long long) * (size_t) n);
        jobs[t].target_of = malloc(sizeof(int) * (size_t) n);
        jobs[t].hot = malloc(sizeof(long long) * (size_t) n);
        pthread_create(&threads[t], NULL, thread_main, &jobs[t]);
    }
    for (int t = 0; t < THREADS; ++t) pthread_join(threads[t], NULL);
    MPI_Win_unlock_all(win);
    MPI_Barrier(MPI_COMM_WORLD);
    long long counters[3];
    MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win);
    memcpy(&counters[0], base + sum_word(), sizeof(long long));
    memcpy(&counters[1], base + cas_word(), sizeof(long long));
    memcpy(&counters[2], base + hot_word(), sizeof(long long));
    MPI_Win_unlock(rank, win);
    MPI_Barrier(MPI_COMM_WORLD);
    /* every rank adds n/2 * THREADS of each kind in total, spread over the targets */
    const long long per_kind = (long long) THREADS * (n / 2) * size;
    long long totals[3] = {0, 0, 0};
    MPI_Allreduce(counters, totals, 3, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (threads_mix) {
        if (rank == 0 && totals[0] != 2 * per_kind)
            FAILF("threads (mixed on one word): counters add up to %lld, expected %lld", totals[0], 2 * per_kind);
    } else {
        if (rank == 0 && totals[0] != per_kind)
            FAILF("threads: fetch_and_op counters add up to %lld, expected %lld", totals[0], per_kind);
        if (rank == 0 && totals[1] != per_kind)
            FAILF("threads: compare_and_swap counters add up to %lld, expected %lld", totals[1], per_kind);
        if (rank == 0 && totals[2] != per_kind)
            FAILF("threads: rank 0's hot word counts %lld compare_and_swap increments, expected %lld", totals[2],
                  per_kind);
    }
    if (inject_fault && rank == 0) jobs[0].fetched[0] = -7;
    const long long limit = threads_mix ? 2 * per_kind : per_kind;
    for (int t = 0; t < THREADS; ++t) {
        for (int i = 0; i < n; ++i) {
            if (jobs[t].fetched[i] < 0 || jobs[t].fetched[i] >= limit) {
                FAILF("threads: thread %d fetched impossible %lld", t, jobs[t].fetched[i]);
                break;
            }
        }
    }
    /* the values fetched by this rank's SUM increments on one target are distinct (two increments that
     * fetched the same value means one of them was lost or done twice) */
    long long *seen = malloc(sizeof(long long) * (size_t) n * THREADS);
    for (int target = 0; target < size; ++target) {
        size_t k = 0;
        for (int t = 0; t < THREADS; ++t)
            for (int i = 0; i < n; i += 2)
                if (jobs[t].target_of[i] == target) seen[k++] = jobs[t].fetched[i];
        qsort(seen, k, sizeof(*seen), compare_long_long);
        for (size_t j = 1; j < k; ++j) {
            if (seen[j] == seen[j - 1]) {
                FAILF("threads: two fetch_and_op increments on rank %d fetched the same value %lld", target, seen[j]);
                break;
            }
        }
    }
    free(seen);
    if (!threads_mix) {
        /* every CAS increment of the hot word, by any thread of any rank, fetched a different value */
        const int mine = THREADS * (n / 2);
        long long *all = malloc(sizeof(long long) * (size_t) mine * (size_t) size);
        long long *local = malloc(sizeof(long long) * (size_t) mine);
        for (int t = 0; t < THREADS; ++t)
            memcpy(local + t * (n / 2), jobs[t].hot, sizeof(long long) * (size_t) (n / 2));
        MPI_Gather(local, mine, MPI_LONG_LONG, all, mine, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            qsort(all, (size_t) mine * (size_t) size, sizeof(*all), compare_long_long);
            for (size_t j = 0; j < (size_t) mine * (size_t) size; ++j) {
                if (all[j] != (long long) j) {
                    FAILF("threads: the CAS increments of rank 0's hot word did not fetch 0..%lld exactly once "
                          "(position %zu holds %lld)",
                          per_kind - 1, j, all[j]);
                    break;
                }
            }
        }
        free(all);
        free(local);
    }
    for (int t = 0; t < THREADS; ++t) {
        free(jobs[t].fetched);
        free(jobs[t].target_of);
        free(jobs[t].hot);
    }
}

static int run_subtest(const char *name, void (*fn)(void))
{
    if (!ff_listed(only_subtests, name)) return 0;
    ++subtests_run;
    failures = 0;
    reset_window();
    fn();
    long total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total)
            printf("FAIL %s/%s: %ld check failures\n", flavour_names[current], name, total);
        else
            printf("PASS %s/%s\n", flavour_names[current], name);
        fflush(stdout);
    }
    return total != 0;
}

static int wanted(enum flavour flavour)
{
    return ff_listed(only_flavour, flavour_names[flavour]);
}
static void threads_subtest(void)
{
    test_threads(provided_level);
}

static const ff_choice thread_levels[] = {
    {"single", MPI_THREAD_SINGLE},
    {"funneled", MPI_THREAD_FUNNELED},
    {"multiple", MPI_THREAD_MULTIPLE},
    {0},
};

/* Fills the option globals; FF_CLI_REFUSED leaves the problem (printed by rank 0 once MPI runs). */
static ff_cli_result parse_options(int argc, char **argv, const ff_cli *cli, char *problem, size_t len)
{
    long iterations_value = iterations, thread_rounds_value = 0;
    bool inject_fault_given = false, threads_mix_given = false;
    const ff_option options[] = {
        {"big", FF_OPT_SIZE, &big, 1, 1L << 30, "bytes of the large transfers"},
        {"iterations", FF_OPT_LONG, &iterations_value, 1, INT_MAX, "rounds of every subtest"},
        {"inject-fault", FF_OPT_FLAG, &inject_fault_given, 0, 0, "corrupt data on purpose: every check must fail"},
        {"thread-level", FF_OPT_CHOICE, &requested_level, 0, 0, "what MPI_Init_thread asks for",
         .choices = thread_levels},
        {"flavours", FF_OPT_STRING, &only_flavour, 0, 0, "comma-separated window flavours: create,allocate,dynamic",
         .value_name = "LIST"},
        {"subtests", FF_OPT_STRING, &only_subtests, 0, 0,
         "comma-separated subtests: fence,pscw,lock,lock_all,threads,bulk", .value_name = "LIST"},
        {"thread-rounds", FF_OPT_LONG, &thread_rounds_value, 1, INT_MAX,
         "increments per thread are 8 times this (default: --iterations)"},
        {"threads-mix", FF_OPT_FLAG, &threads_mix_given, 0, 0, "SUM and CAS increments on the same word"},
        {0},
    };
    ff_cli with_options = *cli;
    with_options.tables[0] = options;
    const ff_cli_result result = ff_cli_parse(&with_options, argc, argv, NULL, problem, len);
    if (result == FF_CLI_HELP) ff_cli_print_help(&with_options, stdout);
    iterations = (int) iterations_value;
    thread_rounds = (int) thread_rounds_value;
    inject_fault = inject_fault_given;
    threads_mix = threads_mix_given;
    return result;
}

int main(int argc, char **argv)
{
    /* Parsed before MPI starts: --thread-level chooses what MPI_Init_thread asks for. */
    const ff_cli cli = {.program = "ffcheck_rma", .usage = "[options]   (under mpirun -n <ranks>)"};
    char problem[512];
    const ff_cli_result parsed = parse_options(argc, argv, &cli, problem, sizeof problem);
    if (parsed == FF_CLI_HELP) return 0;
    MPI_Init_thread(&argc, &argv, requested_level, &provided_level);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (parsed == FF_CLI_REFUSED) {
        if (rank == 0) ff_cli_refuse(&cli, problem);
        MPI_Finalize();
        return FF_CLI_EXIT_USAGE;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    off_slots = 0;
    off_sum = sizeof(int) * (size_t) size * count;
    off_fop = (off_sum + 8 + 7) & ~(size_t) 7;
    off_cas = off_fop + 8;
    off_gacc = off_cas + 8;
    off_thr = off_gacc + 8;
    off_big = off_thr + 64;
    /* odd offsets: transfers start and end mid-page */
    off_acc = (off_big + big + 3) & ~(size_t) 3;
    off_mt = off_acc + (big / sizeof(int)) * sizeof(int) + 5;
    win_bytes = off_mt + (big / THREADS) * THREADS;
    disp_base = calloc((size_t) size, sizeof(MPI_Aint));
    if (rank == 0) {
        printf("ffcheck_rma: %d ranks, thread level %s, %d iterations, large transfers of %zu bytes\n", size,
               provided_level == MPI_THREAD_MULTIPLE ? "MPI_THREAD_MULTIPLE" : "below MPI_THREAD_MULTIPLE", iterations,
               big);
        fflush(stdout);
    }

    int failed = 0;
    for (current = CREATE; current < FLAVOURS; ++current) {
        unsigned char *memory = NULL;
        int rc;
        if (!wanted(current)) continue;
        if (current == CREATE) {
            memory = malloc(win_bytes);
            rc = MPI_Win_create(memory, (MPI_Aint) win_bytes, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &win);
            base = memory;
        } else if (current == ALLOCATE) {
            rc = MPI_Win_allocate((MPI_Aint) win_bytes, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
        } else {
            rc = MPI_Win_create_dynamic(MPI_INFO_NULL, MPI_COMM_WORLD, &win);
            if (rc == MPI_SUCCESS) {
                memory = malloc(win_bytes);
                base = memory;
                rc = MPI_Win_attach(win, memory, (MPI_Aint) win_bytes);
            }
        }
        if (rc != MPI_SUCCESS) {
            if (rank == 0) printf("FAIL %s: window creation failed\n", flavour_names[current]);
            failed = 1;
            continue;
        }
        MPI_Aint mine = 0;
        if (current == DYNAMIC) MPI_Get_address(base, &mine);
        MPI_Allgather(&mine, 1, MPI_AINT, disp_base, 1, MPI_AINT, MPI_COMM_WORLD);
        failed |= run_subtest("fence", test_fence);
        failed |= run_subtest("pscw", test_pscw);
        failed |= run_subtest("lock", test_lock);
        failed |= run_subtest("lock_all", test_lock_all);
        failed |= run_subtest("threads", threads_subtest);
        failed |= run_subtest("bulk", test_bulk);
        if (current == DYNAMIC) MPI_Win_detach(win, memory);
        MPI_Win_free(&win);
        free(memory);
    }
    if (rank == 0) {
        if (failed)
            printf("FAIL rma (%d ranks)\n", size);
        else
            printf("PASS rma (%d ranks, %d subtests)\n", size, subtests_run);
        /* before MPI_Finalize: once a failing rank exits, mpirun ends the others, buffered output and all */
        fflush(stdout);
    }
    free(disp_base);
    MPI_Finalize();
    return failed ? 1 : 0;
}
