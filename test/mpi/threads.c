/*
 * ffcheck_threads: MPI_THREAD_MULTIPLE. Several threads per rank send and receive at the same time,
 * each thread with its own tag (or its own communicator), with checked content and order.
 */
#include "ffcheck.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static long n_threads = 4;
#define PER_PEER 4
#define TAG_BASE 100

static const size_t thread_sizes[] = {0, 1, 4097, 65537, 7, FF_MIB + 13, 32769, 64};
#define N_SIZES (sizeof thread_sizes / sizeof thread_sizes[0])

static size_t msg_size(int src, int dst, int t, int k)
{
    size_t n = thread_sizes[(size_t) (src + 3 * dst + 5 * t + 7 * k) % N_SIZES];
    return n > ff.max_size ? ff.max_size : n;
}

static bool multiple_provided(void)
{
    return ff_expect(ff.thread_provided == MPI_THREAD_MULTIPLE,
                     "MPI provided thread level %d, not MPI_THREAD_MULTIPLE (%d): not run", ff.thread_provided,
                     MPI_THREAD_MULTIPLE);
}

typedef struct {
    void (*body)(int t, uint64_t base);
    int t;
    uint64_t base;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    a->body(a->t, a->base);
    return NULL;
}

/* Runs body(t) in n_threads threads at once, --iterations times. */
static void run_threads(void (*body)(int t, uint64_t base))
{
    if (!multiple_provided()) return;
    pthread_t *tid = ff_xmalloc(sizeof *tid * (size_t) n_threads);
    thread_arg *args = ff_xmalloc(sizeof *args * (size_t) n_threads);
    for (long it = 0; it < ff.iterations; it++) {
        for (int t = 0; t < n_threads; t++) {
            args[t] = (thread_arg){body, t, (uint64_t) it * PER_PEER};
            if (pthread_create(&tid[t], NULL, thread_main, &args[t]) != 0) {
                ff_fail("pthread_create failed for thread %d", t);
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
        }
        for (int t = 0; t < n_threads; t++) pthread_join(tid[t], NULL);
        /* ANY_SOURCE receives of this iteration must not take the next iteration's messages. */
        MPI_Barrier(MPI_COMM_WORLD);
    }
    ff_note("%ld threads per rank", n_threads);
    free(args);
    free(tid);
}

/* Buffers of one thread: PER_PEER messages to and from every rank. */
typedef struct {
    int total;
    unsigned char **send;
    ff_buf *recv;
    MPI_Request *req;
} thread_bufs;

static thread_bufs bufs_new(void)
{
    thread_bufs b = {ff.size * PER_PEER, NULL, NULL, NULL};
    size_t cap = 0;
    for (size_t i = 0; i < N_SIZES; i++) cap = thread_sizes[i] > cap ? thread_sizes[i] : cap;
    cap = cap > ff.max_size ? ff.max_size : cap;
    b.send = ff_xmalloc(sizeof *b.send * (size_t) b.total);
    b.recv = ff_xmalloc(sizeof *b.recv * (size_t) b.total);
    b.req = ff_xmalloc(sizeof *b.req * (size_t) b.total * 2);
    for (int i = 0; i < b.total; i++) {
        b.send[i] = ff_xmalloc(cap);
        b.recv[i] = ff_buf_new(cap);
    }
    return b;
}

static void bufs_free(thread_bufs *b)
{
    for (int i = 0; i < b->total; i++) {
        free(b->send[i]);
        ff_buf_free(&b->recv[i]);
    }
    free(b->send);
    free(b->recv);
    free(b->req);
}

/* Posts this thread's sends: PER_PEER to every rank, all with the thread's tag. */
static void post_sends(thread_bufs *b, int t, uint64_t base, MPI_Request *req)
{
    int tag = TAG_BASE + t;
    for (int p = 0; p < ff.size; p++) {
        for (int k = 0; k < PER_PEER; k++) {
            int i = p * PER_PEER + k;
            size_t n = msg_size(ff.rank, p, t, k);
            ff_fill_msg(b->send[i], n, (ff_msg){ff.rank, p, tag, base + (uint64_t) k});
            MPI_Isend(b->send[i], (int) n, MPI_BYTE, p, tag, MPI_COMM_WORLD, &req[i]);
        }
    }
}

/* Checks one message from src received by thread t as the k-th from that source. */
static void check_one(ff_buf *rb, const MPI_Status *st, int src, int t, int k, uint64_t base)
{
    int tag = TAG_BASE + t;
    size_t n = msg_size(src, ff.rank, t, k);
    if (ff_check_status(st, src, tag, n, "thread receive"))
        ff_buf_check(rb, n, (ff_msg){src, ff.rank, tag, base + (uint64_t) k});
}

/* Each thread exchanges with every rank through its own tag; same-tag messages must stay in order. */
static void pairs_body(int t, uint64_t base)
{
    thread_bufs b = bufs_new();
    MPI_Status *st = ff_xmalloc(sizeof *st * (size_t) b.total);
    ff_context("thread %d", t);
    for (int p = 0; p < ff.size; p++)
        for (int k = 0; k < PER_PEER; k++) {
            int i = p * PER_PEER + k;
            ff_buf_prepare(&b.recv[i], b.recv[i].cap);
            MPI_Irecv(b.recv[i].p, (int) b.recv[i].cap, MPI_BYTE, p, TAG_BASE + t, MPI_COMM_WORLD, &b.req[b.total + i]);
        }
    post_sends(&b, t, base, b.req);
    MPI_Waitall(b.total, b.req + b.total, st);
    MPI_Waitall(b.total, b.req, MPI_STATUSES_IGNORE);
    for (int i = 0; i < b.total; i++) check_one(&b.recv[i], &st[i], i / PER_PEER, t, i % PER_PEER, base);
    free(st);
    bufs_free(&b);
}

/* ANY_SOURCE with the thread's tag, by MPI_Recv or by MPI_Mprobe/MPI_Mrecv. */
static void wildcard_receives(int t, uint64_t base, bool matched_probe)
{
    thread_bufs b = bufs_new();
    int *next = ff_xmalloc(sizeof *next * (size_t) ff.size);
    memset(next, 0, sizeof *next * (size_t) ff.size);
    ff_context("thread %d, %s", t, matched_probe ? "Mprobe/Mrecv" : "Recv ANY_SOURCE");
    post_sends(&b, t, base, b.req);
    ff_buf *rb = &b.recv[0];
    for (int i = 0; i < b.total; i++) {
        MPI_Status st;
        ff_buf_prepare(rb, rb->cap);
        if (matched_probe) {
            MPI_Message msg;
            MPI_Status probed;
            int count;
            MPI_Mprobe(MPI_ANY_SOURCE, TAG_BASE + t, MPI_COMM_WORLD, &msg, &probed);
            MPI_Get_count(&probed, MPI_BYTE, &count);
            MPI_Mrecv(rb->p, count, MPI_BYTE, &msg, &st);
        } else {
            MPI_Recv(rb->p, (int) rb->cap, MPI_BYTE, MPI_ANY_SOURCE, TAG_BASE + t, MPI_COMM_WORLD, &st);
        }
        int s = st.MPI_SOURCE;
        if (!ff_expect(s >= 0 && s < ff.size && next[s] < PER_PEER, "unexpected message from source %d", s)) continue;
        check_one(rb, &st, s, t, next[s]++, base);
    }
    MPI_Waitall(b.total, b.req, MPI_STATUSES_IGNORE);
    free(next);
    bufs_free(&b);
}

static void anysource_body(int t, uint64_t base)
{
    wildcard_receives(t, base, false);
}
static void mprobe_body(int t, uint64_t base)
{
    wildcard_receives(t, base, true);
}

/* Blocking Sendrecv around the ring, every thread at once, large messages included. */
static void blocking_body(int t, uint64_t base)
{
    thread_bufs b = bufs_new();
    ff_buf *rb = &b.recv[0];
    int tag = TAG_BASE + t;
    for (int k = 0; k < PER_PEER; k++) {
        for (int d = 0; d < ff.size; d++) {
            int to = ff_peer_to(d), from = ff_peer_from(d);
            size_t out = msg_size(ff.rank, to, t, k), in = msg_size(from, ff.rank, t, k);
            ff_context("thread %d, Sendrecv at distance %d", t, d);
            ff_fill_msg(b.send[0], out, (ff_msg){ff.rank, to, tag, base + (uint64_t) k});
            ff_buf_prepare(rb, in);
            MPI_Status st;
            MPI_Sendrecv(b.send[0], (int) out, MPI_BYTE, to, tag, rb->p, (int) rb->cap, MPI_BYTE, from, tag,
                         MPI_COMM_WORLD, &st);
            check_one(rb, &st, from, t, k, base);
        }
    }
    bufs_free(&b);
}

/* One communicator per thread, made in thread order by the main thread (communicator creation is
 * collective and must happen in the same order everywhere). */
static MPI_Comm *thread_comms;

static void collectives_body(int t, uint64_t base)
{
    MPI_Comm comm = thread_comms[t];
    size_t n = 65537 > ff.max_size ? ff.max_size : 65537;
    ff_buf bb = ff_buf_new(n);
    int64_t *vals = ff_xmalloc(sizeof(int64_t) * 1031), *sums = ff_xmalloc(sizeof(int64_t) * 1031);
    for (int k = 0; k < PER_PEER; k++) {
        int root = (t + k) % ff.size;
        ff_context("thread %d, bcast from %d / allreduce / barrier on its own communicator", t, root);
        ff_msg m = {root, -1, TAG_BASE + t, base + (uint64_t) k};
        ff_buf_prepare(&bb, n);
        if (ff.rank == root) ff_fill_msg(bb.p, n, m);
        MPI_Bcast(bb.p, (int) n, MPI_BYTE, root, comm);
        if (ff.rank != root) ff_buf_check(&bb, n, m);
        for (int i = 0; i < 1031; i++) vals[i] = (int64_t) (ff.rank + 1) * (i + 1) * (t + 1) + k;
        MPI_Allreduce(vals, sums, 1031, MPI_INT64_T, MPI_SUM, comm);
        ff_maybe_inject(sums, sizeof(int64_t) * 1031);
        int64_t ranks_sum = (int64_t) ff.size * (ff.size + 1) / 2;
        for (int i = 0; i < 1031; i++) {
            int64_t want = ranks_sum * (i + 1) * (t + 1) + (int64_t) k * ff.size;
            if (!ff_expect(sums[i] == want, "allreduce element %d: expected %lld got %lld", i, (long long) want,
                           (long long) sums[i]))
                break;
        }
        MPI_Barrier(comm);
    }
    free(vals);
    free(sums);
    ff_buf_free(&bb);
}

static void test_thread_level(void)
{
    multiple_provided();
    ff_note("provided %d", ff.thread_provided);
}

static void test_pairs(void)
{
    run_threads(pairs_body);
}
static void test_anysource(void)
{
    run_threads(anysource_body);
}
static void test_mprobe(void)
{
    run_threads(mprobe_body);
}
static void test_blocking(void)
{
    run_threads(blocking_body);
}

static void test_collectives(void)
{
    thread_comms = ff_xmalloc(sizeof *thread_comms * (size_t) n_threads);
    for (int t = 0; t < n_threads; t++) MPI_Comm_dup(MPI_COMM_WORLD, &thread_comms[t]);
    run_threads(collectives_body);
    for (int t = 0; t < n_threads; t++) MPI_Comm_free(&thread_comms[t]);
    free(thread_comms);
}

static const ff_option options[] = {
    {"threads", FF_OPT_LONG, &n_threads, 1, 64, "threads per rank"},
    {0},
};

static const ff_subtest subtests[] = {
    {"thread_level", test_thread_level, "MPI_Init_thread provides MPI_THREAD_MULTIPLE"},
    {"pairs", test_pairs, "every thread exchanges with every rank on its own tag (Isend/Irecv)"},
    {"anysource", test_anysource, "every thread receives ANY_SOURCE on its own tag, order per source"},
    {"mprobe", test_mprobe, "every thread uses Mprobe/Mrecv with ANY_SOURCE on its own tag"},
    {"blocking", test_blocking, "every thread does blocking Sendrecv around the ring, up to 1 MiB+13"},
    {"collectives", test_collectives, "every thread runs bcast/allreduce/barrier on its own communicator"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_threads",
        .summary = "MPI_THREAD_MULTIPLE: concurrent senders and receivers in several threads per rank",
        .thread_multiple = true,
        .data_options = true,
        .default_iterations = 2,
        .default_max_size = 2 * FF_MIB,
        .options = options,
        .subtests = subtests,
    };
    return ff_main(argc, argv, &prog);
}
