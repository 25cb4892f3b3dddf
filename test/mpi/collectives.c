/*
 * ffcheck_collectives: collectives on MPI_COMM_WORLD and on split communicators (world reversed,
 * halves, odd/even ranks reversed), with byte patterns for data movement; the reductions are in
 * reductions.c.
 */
#include "collectives.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------------ */
/* Communicators                                                                                     */

enum { N_COMMS = 4 };

typedef struct {
    const char *name[N_COMMS];
    MPI_Comm comm[N_COMMS];
} comm_set;

static comm_set comms_create(void)
{
    comm_set s = {{"world", "reversed", "halves", "parity-reversed"}, {MPI_COMM_WORLD}};
    int r = ff.rank, n = ff.size;
    MPI_Comm_split(MPI_COMM_WORLD, 0, n - r, &s.comm[1]);
    MPI_Comm_split(MPI_COMM_WORLD, r < n / 2, r, &s.comm[2]);
    MPI_Comm_split(MPI_COMM_WORLD, r % 2, -r, &s.comm[3]);
    return s;
}

static void comms_free(comm_set *s)
{
    for (int i = 1; i < N_COMMS; i++) MPI_Comm_free(&s->comm[i]);
}

/* Runs body once per communicator of the set. */
void for_each_comm(void (*body)(const cctx *c))
{
    comm_set s = comms_create();
    for (int i = 0; i < N_COMMS; i++) {
        cctx c = {s.comm[i], s.name[i], i, 0, 0};
        MPI_Comm_rank(c.comm, &c.rank);
        MPI_Comm_size(c.comm, &c.size);
        body(&c);
    }
    comms_free(&s);
    ff_context(NULL);
    ff_note("on world, reversed, halves, parity-reversed");
}

/* Operation ids, part of every pattern key. */
enum {
    OP_BCAST = 1,
    OP_ALLTOALL,
    OP_ALLTOALLV,
    OP_ALLGATHER,
    OP_ALLGATHERV,
    OP_GATHER,
    OP_GATHERV,
    OP_SCATTER,
    OP_SCATTERV,
    OP_BARRIER,
    OP_NONBLOCKING
};

static ff_msg cmsg(const cctx *c, int op, int src, int dst, uint64_t index)
{
    return (ff_msg){src, dst, op * 16 + c->index, index};
}

/* Byte sizes of one block: 0 B up to 1 MiB+13, and no more than limit. */
static size_t block_sizes(size_t limit, size_t *out)
{
    static const size_t sizes[] = {0, 1, 7, 4097, 65537, FF_MIB + 13};
    size_t n = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i] <= limit && sizes[i] <= ff.max_size) out[n++] = sizes[i];
    return n;
}

/* Uneven counts including zeros, from a deterministic hash. */
static size_t uneven_bytes(int a, int b, long it, size_t limit)
{
    static const size_t table[] = {0, 1, 7, 4097, 65537, 0, 130, 63};
    size_t n = table[ff_mix64(((uint64_t) a << 40) ^ ((uint64_t) b << 20) ^ (uint64_t) it) % 8];
    return n > limit ? limit : n;
}

/* ------------------------------------------------------------------------------------------------ */
/* Data movement                                                                                     */

/* One call of a collective that moves blocks of n bytes: a rotating root, a pattern index, and a flag
 * that alternates between calls (for MPI_IN_PLACE). */
typedef struct {
    size_t n;
    int root;
    uint64_t index;
    bool alternate;
} sized_call;

/* Calls `call` for every block size up to `limit`, --iterations times. */
static void for_each_block_size(const cctx *c, size_t limit, void (*call)(const cctx *c, sized_call s))
{
    size_t sizes[8];
    size_t ns = block_sizes(limit, sizes);
    for (long it = 0; it < ff.iterations; it++)
        for (size_t si = 0; si < ns; si++)
            call(c, (sized_call){sizes[si], (int) ((it + (long) si) % c->size), (uint64_t) (it * 64 + (long) si),
                                 (it + (long) si) % 2 == 1});
}

/* Fills `count` blocks of n bytes: block j for rank j (to_others), or all the same for everyone. */
static void fill_blocks(unsigned char *buf, int count, size_t n, const cctx *c, int op, bool to_others, uint64_t index)
{
    for (int j = 0; j < count; j++) {
        ff_msg m = to_others ? cmsg(c, op, c->rank, j, index) : cmsg(c, op, c->rank, -1, index);
        ff_fill_msg(buf + (size_t) j * n, n, m);
    }
}

/* Checks `count` received blocks of n bytes: block j came from rank j (to this rank, or to all). */
static void check_blocks(unsigned char *buf, int count, size_t n, const cctx *c, int op, bool to_me, uint64_t index)
{
    for (int j = 0; j < count; j++) ff_check_msg(buf + (size_t) j * n, n, cmsg(c, op, j, to_me ? c->rank : -1, index));
    ff_check_poison(buf, (size_t) count * n, (size_t) count * n + FF_GUARD, "after the last block");
}

unsigned char *poisoned(size_t n)
{
    unsigned char *p = ff_xmalloc(n + FF_GUARD);
    memset(p, FF_POISON, n + FF_GUARD);
    return p;
}

/* Every root for small messages, the rotating root for large ones. */
static void bcast_call(const cctx *c, sized_call s)
{
    ff_buf b = ff_buf_new(s.n);
    for (int j = 0; j < (s.n <= 4097 ? c->size : 1); j++) {
        int root = s.n <= 4097 ? j : s.root;
        ff_msg m = cmsg(c, OP_BCAST, root, -1, s.index);
        ff_context("bcast on %s, root %d, %zu B", c->name, root, s.n);
        ff_buf_prepare(&b, s.n);
        if (c->rank == root) ff_fill_msg(b.p, s.n, m);
        MPI_Bcast(b.p, (int) s.n, MPI_BYTE, root, c->comm);
        if (c->rank != root) ff_buf_check(&b, s.n, m);
    }
    ff_buf_free(&b);
}

static void alltoall_call(const cctx *c, sized_call s)
{
    ff_context("alltoall on %s, %zu B per pair", c->name, s.n);
    unsigned char *sb = ff_xmalloc(s.n * (size_t) c->size + 1), *rb = poisoned(s.n * (size_t) c->size);
    fill_blocks(sb, c->size, s.n, c, OP_ALLTOALL, true, s.index);
    MPI_Alltoall(sb, (int) s.n, MPI_BYTE, rb, (int) s.n, MPI_BYTE, c->comm);
    check_blocks(rb, c->size, s.n, c, OP_ALLTOALL, true, s.index);
    free(sb);
    free(rb);
}

/* Allgather (in place every other call), or gather to the rotating root. */
static void gather_call(const cctx *c, sized_call s, bool all)
{
    int op = all ? OP_ALLGATHER : OP_GATHER;
    bool in_place = all && s.alternate;
    ff_context("%s%s on %s, root %d, %zu B per rank", all ? "allgather" : "gather", in_place ? " (in place)" : "",
               c->name, s.root, s.n);
    unsigned char *sb = ff_xmalloc(s.n + 1), *rb = poisoned(s.n * (size_t) c->size);
    ff_fill_msg(in_place ? rb + s.n * (size_t) c->rank : sb, s.n, cmsg(c, op, c->rank, -1, s.index));
    if (all)
        MPI_Allgather(in_place ? MPI_IN_PLACE : sb, (int) s.n, MPI_BYTE, rb, (int) s.n, MPI_BYTE, c->comm);
    else
        MPI_Gather(sb, (int) s.n, MPI_BYTE, rb, (int) s.n, MPI_BYTE, s.root, c->comm);
    if (all || c->rank == s.root) check_blocks(rb, c->size, s.n, c, op, false, s.index);
    free(sb);
    free(rb);
}

static void allgather_call(const cctx *c, sized_call s)
{
    gather_call(c, s, true);
}
static void rooted_gather_call(const cctx *c, sized_call s)
{
    gather_call(c, s, false);
}

static void scatter_call(const cctx *c, sized_call s)
{
    ff_context("scatter on %s, root %d, %zu B per rank", c->name, s.root, s.n);
    unsigned char *sb = ff_xmalloc(s.n * (size_t) c->size + 1);
    ff_buf rb = ff_buf_new(s.n);
    if (c->rank == s.root)
        for (int j = 0; j < c->size; j++)
            ff_fill_msg(sb + (size_t) j * s.n, s.n, cmsg(c, OP_SCATTER, s.root, j, s.index));
    MPI_Scatter(sb, (int) s.n, MPI_BYTE, rb.p, (int) s.n, MPI_BYTE, s.root, c->comm);
    ff_buf_check(&rb, s.n, cmsg(c, OP_SCATTER, s.root, c->rank, s.index));
    free(sb);
    ff_buf_free(&rb);
}

/* Per-rank blocks are limited so that a whole buffer stays within --max-size. */
static size_t per_rank_limit(const cctx *c)
{
    return ff.max_size / (size_t) c->size;
}

static void bcast_body(const cctx *c)
{
    for_each_block_size(c, SIZE_MAX, bcast_call);
}
static void alltoall_body(const cctx *c)
{
    for_each_block_size(c, per_rank_limit(c), alltoall_call);
}
static void allgather_body(const cctx *c)
{
    for_each_block_size(c, per_rank_limit(c), allgather_call);
}
static void gather_body(const cctx *c)
{
    for_each_block_size(c, per_rank_limit(c), rooted_gather_call);
}
static void scatter_body(const cctx *c)
{
    for_each_block_size(c, per_rank_limit(c), scatter_call);
}
static void test_bcast(void)
{
    for_each_comm(bcast_body);
}
static void test_alltoall(void)
{
    for_each_comm(alltoall_body);
}
static void test_allgather(void)
{
    for_each_comm(allgather_body);
}
static void test_gather(void)
{
    for_each_comm(gather_body);
}
static void test_scatter(void)
{
    for_each_comm(scatter_body);
}

/* Displacements in reverse rank order with a gap after every block; returns the buffer size. */
static size_t reverse_displacements(const int *counts, int n, size_t gap, int *displs)
{
    size_t pos = 0;
    for (int j = n - 1; j >= 0; j--) {
        displs[j] = (int) pos;
        pos += (size_t) counts[j] + gap;
    }
    return pos;
}

/* Checks the blocks of a v-collective's receive buffer, then that every gap is still poison. */
static void check_v_blocks(unsigned char *rb, size_t total, const int *counts, const int *displs, int n,
                           ff_msg (*key)(const cctx *, int, uint64_t), const cctx *c, uint64_t index)
{
    for (int j = 0; j < n; j++) ff_check_msg(rb + displs[j], (size_t) counts[j], key(c, j, index));
    for (int j = 0; j < n; j++) memset(rb + displs[j], FF_POISON, (size_t) counts[j]);
    ff_check_poison(rb, 0, total + FF_GUARD, "in the gaps between the blocks");
}

static ff_msg alltoallv_key(const cctx *c, int src, uint64_t index)
{
    return cmsg(c, OP_ALLTOALLV, src, c->rank, index);
}

static void alltoallv_body(const cctx *c)
{
    int n = c->size;
    int *sc = ff_xmalloc(sizeof(int) * (size_t) n), *sd = ff_xmalloc(sizeof(int) * (size_t) n);
    int *rc = ff_xmalloc(sizeof(int) * (size_t) n), *rd = ff_xmalloc(sizeof(int) * (size_t) n);
    size_t limit = ff.max_size / (size_t) n;
    for (long it = 0; it < ff.iterations; it++) {
        uint64_t index = (uint64_t) it;
        for (int j = 0; j < n; j++) {
            sc[j] = (int) uneven_bytes(c->rank, j, it, limit);
            rc[j] = (int) uneven_bytes(j, c->rank, it, limit);
        }
        ff_context("alltoallv on %s", c->name);
        size_t stotal = reverse_displacements(sc, n, 8, sd), rtotal = reverse_displacements(rc, n, 5, rd);
        unsigned char *sb = ff_xmalloc(stotal + 1), *rb = poisoned(rtotal);
        memset(sb, (unsigned char) ~FF_POISON, stotal + 1); /* gaps hold bytes that must not be sent */
        for (int j = 0; j < n; j++) ff_fill_msg(sb + sd[j], (size_t) sc[j], cmsg(c, OP_ALLTOALLV, c->rank, j, index));
        MPI_Alltoallv(sb, sc, sd, MPI_BYTE, rb, rc, rd, MPI_BYTE, c->comm);
        check_v_blocks(rb, rtotal, rc, rd, n, alltoallv_key, c, index);
        free(sb);
        free(rb);
    }
    free(sc);
    free(sd);
    free(rc);
    free(rd);
}

static void test_alltoallv(void)
{
    for_each_comm(alltoallv_body);
}

static ff_msg allgatherv_key(const cctx *c, int src, uint64_t index)
{
    return cmsg(c, OP_ALLGATHERV, src, -1, index);
}

static ff_msg gatherv_key(const cctx *c, int src, uint64_t index)
{
    return cmsg(c, OP_GATHERV, src, -1, index);
}

/* allgatherv, and gatherv to every root in turn: uneven counts including zeros, reversed displacements. */
static void gatherv_body(const cctx *c, bool all)
{
    int n = c->size;
    int *counts = ff_xmalloc(sizeof(int) * (size_t) n), *displs = ff_xmalloc(sizeof(int) * (size_t) n);
    size_t limit = ff.max_size / (size_t) n;
    int op = all ? OP_ALLGATHERV : OP_GATHERV;
    for (long it = 0; it < ff.iterations; it++) {
        for (int root = 0; root < (all ? 1 : n); root++) {
            uint64_t index = (uint64_t) (it * 64 + root);
            for (int j = 0; j < n; j++) counts[j] = (int) uneven_bytes(j, root, it, limit);
            size_t total = reverse_displacements(counts, n, 3, displs);
            size_t mine = (size_t) counts[c->rank];
            unsigned char *sb = ff_xmalloc(mine + 1), *rb = poisoned(total);
            ff_fill_msg(sb, mine, cmsg(c, op, c->rank, -1, index));
            if (all) {
                ff_context("allgatherv on %s", c->name);
                MPI_Allgatherv(sb, (int) mine, MPI_BYTE, rb, counts, displs, MPI_BYTE, c->comm);
                check_v_blocks(rb, total, counts, displs, n, allgatherv_key, c, index);
            } else {
                ff_context("gatherv on %s, root %d", c->name, root);
                MPI_Gatherv(sb, (int) mine, MPI_BYTE, rb, counts, displs, MPI_BYTE, root, c->comm);
                if (c->rank == root) check_v_blocks(rb, total, counts, displs, n, gatherv_key, c, index);
            }
            free(sb);
            free(rb);
        }
    }
    free(counts);
    free(displs);
}

static void allgatherv_body(const cctx *c)
{
    gatherv_body(c, true);
}
static void gatherv_rooted_body(const cctx *c)
{
    gatherv_body(c, false);
}
static void test_allgatherv(void)
{
    for_each_comm(allgatherv_body);
}
static void test_gatherv(void)
{
    for_each_comm(gatherv_rooted_body);
}

static void scatterv_body(const cctx *c)
{
    int n = c->size;
    int *counts = ff_xmalloc(sizeof(int) * (size_t) n), *displs = ff_xmalloc(sizeof(int) * (size_t) n);
    size_t limit = ff.max_size / (size_t) n;
    for (long it = 0; it < ff.iterations; it++) {
        for (int root = 0; root < n; root++) {
            uint64_t index = (uint64_t) (it * 64 + root);
            for (int j = 0; j < n; j++) counts[j] = (int) uneven_bytes(root, j, it, limit);
            size_t total = reverse_displacements(counts, n, 11, displs);
            ff_context("scatterv on %s, root %d", c->name, root);
            unsigned char *sb = ff_xmalloc(total + 1);
            memset(sb, (unsigned char) ~FF_POISON, total + 1);
            if (c->rank == root)
                for (int j = 0; j < n; j++)
                    ff_fill_msg(sb + displs[j], (size_t) counts[j], cmsg(c, OP_SCATTERV, root, j, index));
            size_t mine = (size_t) counts[c->rank];
            ff_buf rb = ff_buf_new(mine);
            MPI_Scatterv(sb, counts, displs, MPI_BYTE, rb.p, (int) mine, MPI_BYTE, root, c->comm);
            ff_buf_check(&rb, mine, cmsg(c, OP_SCATTERV, root, c->rank, index));
            free(sb);
            ff_buf_free(&rb);
        }
    }
    free(counts);
    free(displs);
}

static void test_scatterv(void)
{
    for_each_comm(scatterv_body);
}

/* ------------------------------------------------------------------------------------------------ */

#define EXITED_TAG       77
#define BARRIER_SLEEP_MS 20

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A barrier may not let anyone out before everyone is in. In each round one rank lingers before
 * entering; the others send it a message as soon as they are out. If the lingering rank can see such
 * a message before it has entered, the barrier let someone out early. This cannot report a correct
 * barrier; a broken one is caught as long as its messages arrive within the linger time. */
static void barrier_body(const cctx *c)
{
    int rounds = c->size < 3 ? c->size : 3;
    unsigned char token[16];
    for (long it = 0; it < ff.iterations; it++) {
        for (int round = 0; round < rounds; round++) {
            int late = (int) ((round * (c->size - 1) / (rounds > 1 ? rounds - 1 : 1) + it) % c->size);
            uint64_t index = (uint64_t) (it * 8 + round);
            ff_context("barrier on %s, rank %d enters late", c->name, late);
            if (c->rank == late) {
                sleep_ms(BARRIER_SLEEP_MS);
                for (int poll = 0; poll < 100; poll++) {
                    int early = 0;
                    MPI_Status st;
                    MPI_Iprobe(MPI_ANY_SOURCE, EXITED_TAG, c->comm, &early, &st);
                    if (early) {
                        ff_fail("rank %d of %s left the barrier before rank %d entered it", st.MPI_SOURCE, c->name,
                                late);
                        break;
                    }
                }
                MPI_Barrier(c->comm);
                for (int j = 0; j < c->size - 1; j++) {
                    MPI_Status st;
                    MPI_Recv(token, sizeof token, MPI_BYTE, MPI_ANY_SOURCE, EXITED_TAG, c->comm, &st);
                    ff_check_msg(token, sizeof token, cmsg(c, OP_BARRIER, st.MPI_SOURCE, late, index));
                }
            } else {
                MPI_Barrier(c->comm);
                ff_fill_msg(token, sizeof token, cmsg(c, OP_BARRIER, c->rank, late, index));
                MPI_Send(token, sizeof token, MPI_BYTE, late, EXITED_TAG, c->comm);
            }
        }
    }
}

static void test_barrier(void)
{
    for_each_comm(barrier_body);
}

/* ------------------------------------------------------------------------------------------------ */

/* Several nonblocking collectives in flight at once on one communicator, completed together. */
static void nonblocking_body(const cctx *c)
{
    size_t n = 65537 < ff.max_size / (size_t) c->size ? 65537 : ff.max_size / (size_t) c->size;
    size_t count = 1031;
    for (long it = 0; it < ff.iterations; it++) {
        uint64_t index = (uint64_t) it;
        int root = (int) (it % c->size);
        uint64_t salt = ((uint64_t) it << 32) ^ (uint64_t) c->index ^ 0x77;
        ff_context("Ibcast+Iallreduce+Ialltoall+Ibarrier on %s", c->name);
        ff_buf bb = ff_buf_new(n);
        ff_msg bm = cmsg(c, OP_NONBLOCKING, root, -1, index);
        if (c->rank == root) ff_fill_msg(bb.p, n, bm);
        int64_t *rs = ff_xmalloc(count * sizeof(int64_t)), *rr = (int64_t *) poisoned(count * sizeof(int64_t));
        sum_int64_fill(c, salt, count, rs);
        unsigned char *as = ff_xmalloc(n * (size_t) c->size + 1), *ar = poisoned(n * (size_t) c->size);
        fill_blocks(as, c->size, n, c, OP_NONBLOCKING + 1, true, index);
        MPI_Request rq[4];
        MPI_Ibcast(bb.p, (int) n, MPI_BYTE, root, c->comm, &rq[0]);
        MPI_Iallreduce(rs, rr, (int) count, MPI_INT64_T, MPI_SUM, c->comm, &rq[1]);
        MPI_Ialltoall(as, (int) n, MPI_BYTE, ar, (int) n, MPI_BYTE, c->comm, &rq[2]);
        MPI_Ibarrier(c->comm, &rq[3]);
        MPI_Waitall(4, rq, MPI_STATUSES_IGNORE);
        if (c->rank != root) ff_buf_check(&bb, n, bm);
        sum_int64_check(c, salt, count, rr);
        check_blocks(ar, c->size, n, c, OP_NONBLOCKING + 1, true, index);
        ff_buf_free(&bb);
        free(rs);
        free(rr);
        free(as);
        free(ar);
    }
}

static void test_nonblocking(void)
{
    for_each_comm(nonblocking_body);
}

static const ff_subtest subtests[] = {
    {"bcast", test_bcast, "bcast 0 B to 1 MiB+13 from every root (rotating for large)"},
    {"reduce", test_reduce, "reduce, many op/type pairs, rotating root, in place at the root"},
    {"allreduce", test_allreduce, "allreduce, many op/type pairs, in place"},
    {"alltoall", test_alltoall, "alltoall 0 B to 64 KiB+1 per pair"},
    {"alltoallv", test_alltoallv, "alltoallv with uneven counts including zeros, reversed displacements"},
    {"allgather", test_allgather, "allgather, in place"},
    {"allgatherv", test_allgatherv, "allgatherv with uneven counts including zeros"},
    {"gather", test_gather, "gather, rotating root"},
    {"gatherv", test_gatherv, "gatherv to every root"},
    {"scatter", test_scatter, "scatter, rotating root"},
    {"scatterv", test_scatterv, "scatterv from every root"},
    {"reduce_scatter", test_reduce_scatter, "reduce_scatter (uneven, zeros) and reduce_scatter_block"},
    {"scan", test_scan, "scan and exscan, including a non-commutative op"},
    {"barrier", test_barrier, "nobody leaves a barrier before the last rank enters"},
    {"nonblocking", test_nonblocking, "Ibcast, Iallreduce, Ialltoall, Ibarrier in flight together"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_collectives",
        .summary = "collectives on MPI_COMM_WORLD and split communicators, content-checked",
        .data_options = true,
        .default_max_size = 2 * FF_MIB,
        .subtests = subtests,
    };
    return ff_main(argc, argv, &prog);
}
