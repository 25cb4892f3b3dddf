/*
 * ffcheck_stress: random traffic from a seed, repeated for --iterations rounds. Every round all ranks
 * derive the same plan (how many messages each rank sends to each rank, their sizes, tags and send
 * modes, and how each rank receives: exact or ANY_TAG receives posted before or after the sends,
 * ANY_SOURCE/ANY_TAG receives, or Mprobe/Mrecv). Every message's content is checked, and a checksum,
 * message count and byte count of everything sent to and received from each peer are compared at
 * the end. The printed total checksum depends only on the seed, the rank count and the options, so
 * runs over different transports can be compared.
 */
#include "ffcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long max_messages = 6;
#define TAGS 8

typedef struct {
    size_t size;
    int tag;
    bool synchronous;
} planned;

enum { RECV_EXACT_LATE, RECV_EXACT_EARLY, RECV_WILDCARD, RECV_MPROBE, RECV_MODES };
static const char *const recv_mode_names[] = {"exact receives after the sends", "exact receives before the sends",
                                              "ANY_SOURCE/ANY_TAG receives", "Mprobe/Mrecv"};

typedef struct {
    int *count;    /* [src * size + dst] messages */
    planned **msg; /* [src * size + dst][k] */
    int *mode;     /* receive mode of each rank */
    uint64_t rng;  /* continues the plan's sequence for this rank's local choices */
} plan;

static size_t random_size(uint64_t *rng)
{
    size_t special[32];
    size_t ns = ff_standard_sizes(ff.max_size, special, 32);
    if (ff_rand_below(rng, 4) == 0) return special[ff_rand_below(rng, ns)];
    /* Log-uniform: as many small messages as large ones. */
    int bits = 0;
    while (bits < 62 && ((size_t) 1 << (bits + 1)) <= ff.max_size + 1) bits++;
    size_t limit = (size_t) 1 << ff_rand_below(rng, (uint64_t) bits + 1);
    size_t n = (size_t) ff_rand_below(rng, limit);
    return n > ff.max_size ? ff.max_size : n;
}

static plan make_plan(long round)
{
    int n = ff.size;
    plan p;
    p.count = ff_xmalloc(sizeof(int) * (size_t) (n * n));
    p.msg = ff_xmalloc(sizeof(planned *) * (size_t) (n * n));
    p.mode = ff_xmalloc(sizeof(int) * (size_t) n);
    uint64_t rng = ff_mix64((uint64_t) ff.seed * 0x1000193u + (uint64_t) round);
    for (int i = 0; i < n * n; i++) {
        p.count[i] = (int) ff_rand_below(&rng, (uint64_t) max_messages + 1);
        p.msg[i] = ff_xmalloc(sizeof(planned) * (size_t) (p.count[i] + 1));
        for (int k = 0; k < p.count[i]; k++) {
            p.msg[i][k].size = random_size(&rng);
            p.msg[i][k].tag = (int) ff_rand_below(&rng, TAGS);
            p.msg[i][k].synchronous = ff_rand_below(&rng, 6) == 0;
        }
    }
    for (int r = 0; r < n; r++) p.mode[r] = (int) ff_rand_below(&rng, RECV_MODES);
    p.rng = ff_mix64(rng ^ (uint64_t) ff.rank);
    return p;
}

static void free_plan(plan *p)
{
    for (int i = 0; i < ff.size * ff.size; i++) free(p->msg[i]);
    free(p->msg);
    free(p->count);
    free(p->mode);
}

static const planned *planned_msg(const plan *p, int src, int dst, int k)
{
    return &p->msg[src * ff.size + dst][k];
}

static int planned_count(const plan *p, int src, int dst)
{
    return p->count[src * ff.size + dst];
}

/* Per-peer accounting, compared between sender and receiver at the end. */
enum { T_CHECKSUM, T_MESSAGES, T_BYTES, T_FIELDS };
static uint64_t (*sent_to)[T_FIELDS], (*received_from)[T_FIELDS];

static void account(uint64_t *t, const void *buf, size_t n)
{
    t[T_CHECKSUM] += ff_checksum(buf, n);
    t[T_MESSAGES]++;
    t[T_BYTES] += n;
}

static uint64_t msg_index(long round, int k)
{
    return (uint64_t) round * 4096 + (uint64_t) k;
}

/* Checks a received message against the plan and accounts for it. */
static void check_received(const plan *p, long round, int src, int k, const MPI_Status *st, ff_buf *b)
{
    const planned *m = planned_msg(p, src, ff.rank, k);
    ff_context("round %ld, %s, message %d from rank %d", round, recv_mode_names[p->mode[ff.rank]], k, src);
    if (ff_check_status(st, src, m->tag, m->size, "receive"))
        ff_buf_check(b, m->size, (ff_msg){src, ff.rank, m->tag, msg_index(round, k)});
    account(received_from[src], b->p, m->size);
}

typedef struct {
    int total;
    ff_buf *bufs;
    MPI_Request *reqs;
    MPI_Status *sts;
    int *src, *k; /* which planned message each receive is for */
} exact_receives;

/* One receive per planned message, with its exact tag or ANY_TAG; sources in random order. */
static exact_receives post_exact(plan *p)
{
    exact_receives r = {0};
    for (int s = 0; s < ff.size; s++) r.total += planned_count(p, s, ff.rank);
    size_t n = (size_t) r.total + 1;
    r.bufs = ff_xmalloc(sizeof *r.bufs * n);
    r.reqs = ff_xmalloc(sizeof *r.reqs * n);
    r.sts = ff_xmalloc(sizeof *r.sts * n);
    r.src = ff_xmalloc(sizeof *r.src * n);
    r.k = ff_xmalloc(sizeof *r.k * n);
    int i = 0, first = (int) ff_rand_below(&p->rng, (uint64_t) ff.size);
    for (int j = 0; j < ff.size; j++) {
        int s = (first + j) % ff.size;
        for (int k = 0; k < planned_count(p, s, ff.rank); k++, i++) {
            const planned *m = planned_msg(p, s, ff.rank, k);
            r.bufs[i] = ff_buf_new(m->size + (size_t) ff_rand_below(&p->rng, 17));
            r.src[i] = s;
            r.k[i] = k;
            int tag = ff_rand_below(&p->rng, 10) < 3 ? MPI_ANY_TAG : m->tag;
            MPI_Irecv(r.bufs[i].p, (int) r.bufs[i].cap, MPI_BYTE, s, tag, MPI_COMM_WORLD, &r.reqs[i]);
        }
    }
    return r;
}

static void finish_exact(exact_receives *r, const plan *p, long round)
{
    MPI_Waitall(r->total, r->reqs, r->sts);
    for (int i = 0; i < r->total; i++) {
        check_received(p, round, r->src[i], r->k[i], &r->sts[i], &r->bufs[i]);
        ff_buf_free(&r->bufs[i]);
    }
    free(r->bufs);
    free(r->reqs);
    free(r->sts);
    free(r->src);
    free(r->k);
}

/* Receives everything addressed to this rank with ANY_SOURCE/ANY_TAG; non-overtaking says each
 * source's messages arrive in the order they were sent. */
static void receive_wildcard(const plan *p, long round, bool matched_probe)
{
    int total = 0;
    for (int s = 0; s < ff.size; s++) total += planned_count(p, s, ff.rank);
    int *next = ff_xmalloc(sizeof *next * (size_t) ff.size);
    memset(next, 0, sizeof *next * (size_t) ff.size);
    ff_buf b = ff_buf_new(ff.max_size);
    for (int i = 0; i < total; i++) {
        MPI_Status st;
        ff_buf_prepare(&b, ff.max_size);
        if (matched_probe) {
            MPI_Message msg;
            MPI_Status probed;
            int bytes;
            MPI_Mprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &msg, &probed);
            MPI_Get_count(&probed, MPI_BYTE, &bytes);
            MPI_Mrecv(b.p, bytes, MPI_BYTE, &msg, &st);
        } else {
            MPI_Recv(b.p, (int) b.cap, MPI_BYTE, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        }
        int s = st.MPI_SOURCE;
        if (!ff_expect(s >= 0 && s < ff.size && next[s] < planned_count(p, s, ff.rank),
                       "round %ld: a message from source %d that was not planned", round, s))
            continue;
        check_received(p, round, s, next[s]++, &st, &b);
    }
    ff_buf_free(&b);
    free(next);
}

/* Posts every planned send of this rank, round-robin over destinations from a random start. */
static int post_sends(plan *p, long round, unsigned char ***bufs_out, MPI_Request **reqs_out)
{
    int total = 0;
    for (int d = 0; d < ff.size; d++) total += planned_count(p, ff.rank, d);
    unsigned char **bufs = ff_xmalloc(sizeof *bufs * (size_t) (total + 1));
    MPI_Request *reqs = ff_xmalloc(sizeof *reqs * (size_t) (total + 1));
    int *next = ff_xmalloc(sizeof *next * (size_t) ff.size);
    memset(next, 0, sizeof *next * (size_t) ff.size);
    int d = (int) ff_rand_below(&p->rng, (uint64_t) ff.size);
    for (int i = 0; i < total; d = (d + 1) % ff.size) {
        int k = next[d];
        if (k == planned_count(p, ff.rank, d)) continue;
        next[d]++;
        const planned *m = planned_msg(p, ff.rank, d, k);
        bufs[i] = ff_xmalloc(m->size + 1);
        ff_fill_msg(bufs[i], m->size, (ff_msg){ff.rank, d, m->tag, msg_index(round, k)});
        account(sent_to[d], bufs[i], m->size);
        if (m->synchronous)
            MPI_Issend(bufs[i], (int) m->size, MPI_BYTE, d, m->tag, MPI_COMM_WORLD, &reqs[i]);
        else
            MPI_Isend(bufs[i], (int) m->size, MPI_BYTE, d, m->tag, MPI_COMM_WORLD, &reqs[i]);
        i++;
    }
    free(next);
    *bufs_out = bufs;
    *reqs_out = reqs;
    return total;
}

static void test_stress(void)
{
    sent_to = ff_xmalloc(sizeof *sent_to * (size_t) ff.size);
    received_from = ff_xmalloc(sizeof *received_from * (size_t) ff.size);
    memset(sent_to, 0, sizeof *sent_to * (size_t) ff.size);
    memset(received_from, 0, sizeof *received_from * (size_t) ff.size);

    for (long round = 0; round < ff.iterations; round++) {
        plan p = make_plan(round);
        int mode = p.mode[ff.rank];
        exact_receives early = {0};
        if (mode == RECV_EXACT_EARLY) early = post_exact(&p);
        unsigned char **sbufs;
        MPI_Request *sreqs;
        int nsend = post_sends(&p, round, &sbufs, &sreqs);
        if (mode == RECV_EXACT_EARLY) {
            finish_exact(&early, &p, round);
        } else if (mode == RECV_EXACT_LATE) {
            exact_receives late = post_exact(&p);
            finish_exact(&late, &p, round);
        } else {
            receive_wildcard(&p, round, mode == RECV_MPROBE);
        }
        MPI_Waitall(nsend, sreqs, MPI_STATUSES_IGNORE);
        /* Wildcard receives of this round must not take the next round's messages. */
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = 0; i < nsend; i++) free(sbufs[i]);
        free(sbufs);
        free(sreqs);
        free_plan(&p);
    }
    ff_context("end of the run");

    /* What each peer says it sent to this rank must be what this rank received from it. */
    uint64_t(*sent_to_me)[T_FIELDS] = ff_xmalloc(sizeof *sent_to_me * (size_t) ff.size);
    MPI_Alltoall(sent_to, T_FIELDS, MPI_UINT64_T, sent_to_me, T_FIELDS, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int s = 0; s < ff.size; s++)
        ff_expect(memcmp(sent_to_me[s], received_from[s], sizeof sent_to_me[s]) == 0,
                  "from rank %d: sent %" PRIu64 " messages, %" PRIu64 " bytes, checksum %016" PRIx64
                  "; received %" PRIu64 " messages, %" PRIu64 " bytes, checksum %016" PRIx64,
                  s, sent_to_me[s][T_MESSAGES], sent_to_me[s][T_BYTES], sent_to_me[s][T_CHECKSUM],
                  received_from[s][T_MESSAGES], received_from[s][T_BYTES], received_from[s][T_CHECKSUM]);
    uint64_t mine[T_FIELDS] = {0}, total[T_FIELDS];
    for (int s = 0; s < ff.size; s++)
        for (int f = 0; f < T_FIELDS; f++) mine[f] += received_from[s][f];
    MPI_Allreduce(mine, total, T_FIELDS, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    char sz[32];
    ff_note("%ld rounds, %" PRIu64 " messages, %s, checksum %016" PRIx64, ff.iterations, total[T_MESSAGES],
            ff_size_str((size_t) total[T_BYTES], sz, sizeof sz), total[T_CHECKSUM]);
    free(sent_to_me);
    free(sent_to);
    free(received_from);
}

static const ff_option options[] = {
    {"messages", FF_OPT_LONG, &max_messages, 0, 1000, "most messages from one rank to another per round"},
    {0},
};

static const ff_subtest subtests[] = {
    {"stress", test_stress, "random sizes, peers, tags, send and receive modes; content and checksums"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_stress",
        .summary = "seeded random traffic between all ranks, content-checked, with per-peer checksums",
        .data_options = true,
        .default_iterations = 50,
        .default_max_size = FF_MIB + 13,
        .options = options,
        .subtests = subtests,
    };
    return ff_main(argc, argv, &prog);
}
