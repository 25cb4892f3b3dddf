/*
 * ffcheck_p2p: point-to-point semantics across every pair of ranks (and each rank with itself).
 * Sizes from 0 B to 64 MiB around the eager/rendezvous limits of common BTLs, wildcards with status
 * checks, MPI's non-overtaking rule, bursts of unexpected messages and probes here; request storms,
 * the send modes and sendrecv in p2p_requests.c.
 */
#include "p2p.h"

#include <stdlib.h>
#include <string.h>

/* Sizes above this go only to the rank itself and the next rank, to keep the default run short. */
#define ALL_PEERS_LIMIT (FF_MIB + 13)

const size_t mixed_sizes[] = {0, 1, 7, 64, 4095, 4097, 32769, 65537, FF_MIB + 13};
const size_t n_mixed = sizeof mixed_sizes / sizeof mixed_sizes[0];

size_t clip(size_t n)
{
    return n > ff.max_size ? ff.max_size : n;
}

size_t mixed_size(size_t i)
{
    return clip(mixed_sizes[i % n_mixed]);
}

size_t largest_mixed(void)
{
    return clip(mixed_sizes[n_mixed - 1]);
}

static MPI_Comm dup_world(void)
{
    MPI_Comm c;
    MPI_Comm_dup(MPI_COMM_WORLD, &c);
    return c;
}

/* Nothing may be left to receive on a communicator whose traffic is complete: a message that shows
 * up here was delivered twice or to the wrong receive. Checked after a barrier; a duplicate still in
 * flight may escape, a reported one is always real. */
static void expect_nothing_pending(MPI_Comm comm, const char *what)
{
    MPI_Barrier(comm);
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &st);
    if (flag) {
        int count = -1;
        MPI_Get_count(&st, MPI_BYTE, &count);
        ff_fail("%s: an extra message is pending (source %d, tag %d, %d B) after every expected message arrived", what,
                st.MPI_SOURCE, st.MPI_TAG, count);
    }
}

/* ------------------------------------------------------------------------------------------------ */

/* Every standard size with every peer distance, through three call patterns in turn. */
static void test_sizes(void)
{
    size_t sizes[32];
    size_t ns = ff_standard_sizes(ff.max_size, sizes, 32);
    size_t largest = sizes[ns - 1];
    ff_buf sb = ff_buf_new(largest), rb = ff_buf_new(largest);
    MPI_Comm comm = MPI_COMM_WORLD;
    for (long it = 0; it < ff.iterations; it++) {
        for (size_t si = 0; si < ns; si++) {
            size_t n = sizes[si];
            int distances = n > ALL_PEERS_LIMIT ? (ff.size < 2 ? ff.size : 2) : ff.size;
            for (int d = 0; d < distances; d++) {
                int to = ff_peer_to(d), from = ff_peer_from(d), tag = (int) si;
                ff_fill_msg(sb.p, n, (ff_msg){ff.rank, to, tag, (uint64_t) it});
                ff_buf_prepare(&rb, n);
                MPI_Status st;
                MPI_Request rq;
                switch ((it + d + (long) si) % 3) {
                case 0:
                    MPI_Sendrecv(sb.p, (int) n, MPI_BYTE, to, tag, rb.p, (int) n, MPI_BYTE, from, tag, comm, &st);
                    break;
                case 1:
                    MPI_Irecv(rb.p, (int) n, MPI_BYTE, from, tag, comm, &rq);
                    MPI_Send(sb.p, (int) n, MPI_BYTE, to, tag, comm);
                    MPI_Wait(&rq, &st);
                    break;
                default:
                    MPI_Isend(sb.p, (int) n, MPI_BYTE, to, tag, comm, &rq);
                    MPI_Recv(rb.p, (int) n, MPI_BYTE, from, tag, comm, &st);
                    MPI_Wait(&rq, MPI_STATUS_IGNORE);
                    break;
                }
                ff_check_status(&st, from, tag, n, "sizes");
                ff_buf_check(&rb, n, (ff_msg){from, ff.rank, tag, (uint64_t) it});
            }
        }
    }
    char sz[32];
    ff_note("%zu sizes from 0 B to %s", ns, ff_size_str(largest, sz, sizeof sz));
    ff_buf_free(&sb);
    ff_buf_free(&rb);
}

/* ------------------------------------------------------------------------------------------------ */

#define WILD_PER_PEER 8

static size_t wild_size(int src, int dst, int k)
{
    return mixed_size((size_t) (k * 3 + src + 2 * dst));
}

static int wild_tag(int src, int dst, int k)
{
    return (k * 7 + src * 13 + dst * 5) % 97 + 1;
}

typedef int (*tag_fn)(int src, int dst, int k);

static int tag_is_index(int src, int dst, int k)
{
    (void) src;
    (void) dst;
    return k + 1;
}

/* A wildcard phase: WILD_PER_PEER messages from every rank to every rank (itself included) on a
 * communicator of their own, received by the phase in some wildcard way. */
typedef struct {
    int total;
    size_t cap;
    unsigned char **bufs;
    MPI_Request *reqs;
    int *next; /* per source: index of the next message expected */
    ff_buf rb;
    tag_fn tag_of;
    uint64_t base;
    MPI_Comm comm;
} wild_state;

static wild_state wild_new(void)
{
    wild_state w = {.total = ff.size * WILD_PER_PEER, .cap = largest_mixed()};
    w.bufs = ff_xmalloc(sizeof *w.bufs * (size_t) w.total);
    for (int i = 0; i < w.total; i++) w.bufs[i] = ff_xmalloc(w.cap);
    w.reqs = ff_xmalloc(sizeof *w.reqs * (size_t) w.total);
    w.next = ff_xmalloc(sizeof *w.next * (size_t) ff.size);
    w.rb = ff_buf_new(w.cap);
    return w;
}

static void wild_free(wild_state *w)
{
    ff_buf_free(&w->rb);
    free(w->next);
    free(w->reqs);
    for (int i = 0; i < w->total; i++) free(w->bufs[i]);
    free(w->bufs);
}

/* Starts a phase: a new communicator, every message posted, counters reset. */
static void wild_start(wild_state *w, tag_fn tag_of, uint64_t base)
{
    w->tag_of = tag_of;
    w->base = base;
    w->comm = dup_world();
    memset(w->next, 0, sizeof *w->next * (size_t) ff.size);
    for (int p = 0; p < ff.size; p++) {
        for (int k = 0; k < WILD_PER_PEER; k++) {
            int i = p * WILD_PER_PEER + k;
            size_t n = wild_size(ff.rank, p, k);
            int tag = tag_of(ff.rank, p, k);
            ff_fill_msg(w->bufs[i], n, (ff_msg){ff.rank, p, tag, base + (uint64_t) k});
            MPI_Isend(w->bufs[i], (int) n, MPI_BYTE, p, tag, w->comm, &w->reqs[i]);
        }
    }
}

/* Ends a phase: the sends complete and nothing is left over. */
static void wild_end(wild_state *w, const char *what)
{
    MPI_Waitall(w->total, w->reqs, MPI_STATUSES_IGNORE);
    expect_nothing_pending(w->comm, what);
    MPI_Comm_free(&w->comm);
}

/* Checks one wildcard receive (in w->rb) against the sender's next message in order: non-overtaking. */
static void check_wild(wild_state *w, const MPI_Status *st, const char *what)
{
    int s = st->MPI_SOURCE;
    if (!ff_expect(s >= 0 && s < ff.size, "%s: status names source %d", what, s)) return;
    int k = w->next[s]++;
    if (!ff_expect(k < WILD_PER_PEER, "%s: more than %d messages from rank %d", what, WILD_PER_PEER, s)) return;
    size_t n = wild_size(s, ff.rank, k);
    int tag = w->tag_of(s, ff.rank, k);
    if (ff_check_status(st, s, tag, n, what))
        ff_buf_check(&w->rb, n, (ff_msg){s, ff.rank, tag, w->base + (uint64_t) k});
}

/* Receives into w->rb with the given source and tag (either may be a wildcard) and checks it. */
static void wild_receive(wild_state *w, int source, int tag, const char *what)
{
    MPI_Status st;
    ff_buf_prepare(&w->rb, w->cap);
    MPI_Recv(w->rb.p, (int) w->cap, MPI_BYTE, source, tag, w->comm, &st);
    check_wild(w, &st, what);
}

/* ANY_SOURCE + ANY_TAG, a given source + ANY_TAG, ANY_SOURCE + a given tag. */
static void test_wildcards(void)
{
    wild_state w = wild_new();
    for (long it = 0; it < ff.iterations; it++) {
        uint64_t base = (uint64_t) it * WILD_PER_PEER;

        /* Each sender's messages must arrive in order even with both wildcards. */
        wild_start(&w, wild_tag, base);
        for (int i = 0; i < w.total; i++) wild_receive(&w, MPI_ANY_SOURCE, MPI_ANY_TAG, "ANY_SOURCE+ANY_TAG");
        wild_end(&w, "ANY_SOURCE+ANY_TAG");

        /* One source at a time (in rotated order) with ANY_TAG. */
        wild_start(&w, wild_tag, base);
        for (int d = 0; d < ff.size; d++)
            for (int k = 0; k < WILD_PER_PEER; k++) wild_receive(&w, ff_peer_from(d), MPI_ANY_TAG, "source+ANY_TAG");
        wild_end(&w, "source+ANY_TAG");

        /* Tag k+1 carries every sender's k-th message: ANY_SOURCE must see each sender once per tag. */
        wild_start(&w, tag_is_index, base);
        for (int k = 0; k < WILD_PER_PEER; k++) {
            for (int j = 0; j < ff.size; j++) {
                wild_receive(&w, MPI_ANY_SOURCE, k + 1, "ANY_SOURCE+tag");
                for (int s = 0; s < ff.size; s++)
                    if (!ff_expect(w.next[s] <= k + 1, "ANY_SOURCE+tag %d: rank %d's message came twice", k + 1, s))
                        w.next[s] = k + 1;
            }
        }
        wild_end(&w, "ANY_SOURCE+tag");
    }
    ff_note("%d messages per pair per phase", WILD_PER_PEER);
    wild_free(&w);
}

/* ------------------------------------------------------------------------------------------------ */

#define ORDER_COUNT 32
#define ORDER_TAG   5
/* Protocols alternate so that large (rendezvous, pipelined) messages sit between small (eager) ones. */
static const size_t order_sizes[] = {0,    65537, 1,  4097,  7,    32769, 64,   FF_MIB + 13,
                                     8193, 65536, 63, 32768, 4096, 0,     4095, 65535};

static size_t order_size(int k)
{
    return clip(order_sizes[k % (int) (sizeof order_sizes / sizeof order_sizes[0])]);
}

enum { ORDER_LATE_RECEIVES, ORDER_EARLY_RECEIVES, ORDER_WILDCARD_RECEIVES, ORDER_MODES };

/* MPI's non-overtaking rule: messages from one sender that match the same receives arrive in order. */
static void test_ordering(void)
{
    size_t cap = 0;
    for (int k = 0; k < ORDER_COUNT; k++) cap = order_size(k) > cap ? order_size(k) : cap;
    unsigned char *sbuf[ORDER_COUNT];
    ff_buf rbuf[ORDER_COUNT];
    for (int k = 0; k < ORDER_COUNT; k++) {
        sbuf[k] = ff_xmalloc(cap);
        rbuf[k] = ff_buf_new(cap);
    }
    MPI_Request sreq[ORDER_COUNT], rreq[ORDER_COUNT];
    MPI_Status rst[ORDER_COUNT];
    MPI_Comm comm = MPI_COMM_WORLD;

    for (long it = 0; it < ff.iterations; it++) {
        for (int mode = 0; mode < ORDER_MODES; mode++) {
            for (int d = 0; d < ff.size; d++) {
                int to = ff_peer_to(d), from = ff_peer_from(d);
                uint64_t base = ((uint64_t) it * ORDER_MODES + (uint64_t) mode) * ORDER_COUNT;
                for (int k = 0; k < ORDER_COUNT; k++) {
                    ff_fill_msg(sbuf[k], order_size(k), (ff_msg){ff.rank, to, ORDER_TAG, base + (uint64_t) k});
                    ff_buf_prepare(&rbuf[k], cap);
                }
                if (mode == ORDER_EARLY_RECEIVES) {
                    for (int k = 0; k < ORDER_COUNT; k++)
                        MPI_Irecv(rbuf[k].p, (int) cap, MPI_BYTE, from, ORDER_TAG, comm, &rreq[k]);
                    MPI_Barrier(comm); /* every receive is posted before any send */
                }
                for (int k = 0; k < ORDER_COUNT; k++)
                    MPI_Isend(sbuf[k], (int) order_size(k), MPI_BYTE, to, ORDER_TAG, comm, &sreq[k]);
                if (mode != ORDER_EARLY_RECEIVES) {
                    MPI_Barrier(comm); /* every send is posted before any receive */
                    for (int k = 0; k < ORDER_COUNT; k++) {
                        /* The wildcard mode cycles through all four ways to name source and tag. */
                        int w = mode == ORDER_WILDCARD_RECEIVES ? k % 4 : 0;
                        int src = (w & 1) ? MPI_ANY_SOURCE : from;
                        int tag = (w & 2) ? MPI_ANY_TAG : ORDER_TAG;
                        MPI_Irecv(rbuf[k].p, (int) cap, MPI_BYTE, src, tag, comm, &rreq[k]);
                    }
                }
                MPI_Waitall(ORDER_COUNT, rreq, rst);
                MPI_Waitall(ORDER_COUNT, sreq, MPI_STATUSES_IGNORE);
                for (int k = 0; k < ORDER_COUNT; k++) {
                    size_t n = order_size(k);
                    if (ff_check_status(&rst[k], from, ORDER_TAG, n, "ordering"))
                        ff_buf_check(&rbuf[k], n, (ff_msg){from, ff.rank, ORDER_TAG, base + (uint64_t) k});
                }
                /* The wildcard receives of the next distance must not see this round's messages. */
                MPI_Barrier(comm);
            }
        }
    }
    ff_note("%d messages with one tag per pair, receives late, early and with wildcards", ORDER_COUNT);
    for (int k = 0; k < ORDER_COUNT; k++) {
        free(sbuf[k]);
        ff_buf_free(&rbuf[k]);
    }
}

/* ------------------------------------------------------------------------------------------------ */

#define BURST_SMALL 128
#define BURST_LARGE 4
#define BURST_COUNT (BURST_SMALL + BURST_LARGE)

/* Every 33rd message is large; the others 0 to 299 B. */
static size_t burst_size(int src, int dst, int k)
{
    if (k % 33 == 32) {
        static const size_t large[] = {65537, FF_MIB + 13, 32769, 4 * FF_MIB - 1};
        return clip(large[(k / 33) % 4]);
    }
    return clip((size_t) ((k * 37 + src * 11 + dst * 3) % 300));
}

/* Many sends reach each receiver before it posts a single receive, which then matches out of order. */
static void test_unexpected(void)
{
    int total = ff.size * BURST_COUNT;
    size_t cap = 0;
    for (int k = 0; k < BURST_COUNT; k++) cap = burst_size(0, 0, k) > cap ? burst_size(0, 0, k) : cap;
    unsigned char **bufs = ff_xmalloc(sizeof *bufs * (size_t) total);
    for (int i = 0; i < total; i++) {
        int p = i / BURST_COUNT, k = i % BURST_COUNT;
        bufs[i] = ff_xmalloc(burst_size(ff.rank, p, k));
    }
    MPI_Request *reqs = ff_xmalloc(sizeof *reqs * (size_t) total);
    ff_buf rb = ff_buf_new(cap);
    MPI_Comm comm = MPI_COMM_WORLD;

    for (long it = 0; it < ff.iterations; it++) {
        uint64_t base = (uint64_t) it * BURST_COUNT;
        for (int i = 0; i < total; i++) {
            int p = i / BURST_COUNT, k = i % BURST_COUNT;
            size_t n = burst_size(ff.rank, p, k);
            ff_fill_msg(bufs[i], n, (ff_msg){ff.rank, p, k, base + (uint64_t) k});
            MPI_Isend(bufs[i], (int) n, MPI_BYTE, p, k, comm, &reqs[i]);
        }
        MPI_Barrier(comm);
        bool reverse = it % 2 == 0;
        for (int d = ff.size - 1; d >= 0; d--) {
            int s = ff_peer_from(d);
            for (int j = 0; j < BURST_COUNT; j++) {
                /* Even iterations: exact tags, last sent first. Odd: ANY_TAG in order. */
                int k = reverse ? BURST_COUNT - 1 - j : j;
                size_t n = burst_size(s, ff.rank, k);
                MPI_Status st;
                ff_buf_prepare(&rb, n);
                MPI_Recv(rb.p, (int) cap, MPI_BYTE, s, reverse ? k : MPI_ANY_TAG, comm, &st);
                if (ff_check_status(&st, s, k, n, reverse ? "burst, reverse tags" : "burst, ANY_TAG"))
                    ff_buf_check(&rb, n, (ff_msg){s, ff.rank, k, base + (uint64_t) k});
            }
        }
        MPI_Waitall(total, reqs, MPI_STATUSES_IGNORE);
    }
    ff_note("%d messages from each rank to each rank before any receive", BURST_COUNT);
    ff_buf_free(&rb);
    free(reqs);
    for (int i = 0; i < total; i++) free(bufs[i]);
    free(bufs);
}

/* ------------------------------------------------------------------------------------------------ */

#define NEVER_USED_TAG 30000

/* Probe, Iprobe, Mprobe/Mrecv, Improbe/Imrecv with wildcards; the probed status must describe the
 * message that is then received. */
static void test_probes(void)
{
    static const char *const methods[] = {"Probe+Recv", "Iprobe+Recv", "Mprobe+Mrecv", "Improbe+Imrecv"};
    wild_state w = wild_new();
    for (long it = 0; it < ff.iterations; it++) {
        wild_start(&w, wild_tag, (uint64_t) it * WILD_PER_PEER);
        MPI_Comm comm = w.comm;
        for (int i = 0; i < w.total; i++) {
            int method = (i + (int) it) % 4;
            MPI_Status probed, st;
            MPI_Message msg;
            int flag = 0;
            switch (method) {
            case 0: MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &probed); break;
            case 1:
                while (!flag) MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &probed);
                break;
            case 2: MPI_Mprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &msg, &probed); break;
            default:
                while (!flag) MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &msg, &probed);
                break;
            }
            int count = -1;
            MPI_Get_count(&probed, MPI_BYTE, &count);
            ff_buf_prepare(&w.rb, w.cap);
            /* Receive exactly the probed size: a wrong probe status shows up as truncation or a mismatch. */
            if (method < 2) {
                MPI_Recv(w.rb.p, count, MPI_BYTE, probed.MPI_SOURCE, probed.MPI_TAG, comm, &st);
            } else if (method == 2) {
                MPI_Mrecv(w.rb.p, count, MPI_BYTE, &msg, &st);
            } else {
                MPI_Request rq;
                MPI_Imrecv(w.rb.p, count, MPI_BYTE, &msg, &rq);
                MPI_Wait(&rq, &st);
            }
            ff_expect(st.MPI_SOURCE == probed.MPI_SOURCE && st.MPI_TAG == probed.MPI_TAG,
                      "%s: probed source %d tag %d but received source %d tag %d", methods[method], probed.MPI_SOURCE,
                      probed.MPI_TAG, st.MPI_SOURCE, st.MPI_TAG);
            check_wild(&w, &st, methods[method]);

            int stray = 0;
            MPI_Iprobe(MPI_ANY_SOURCE, NEVER_USED_TAG, comm, &stray, MPI_STATUS_IGNORE);
            ff_expect(!stray, "Iprobe found a message with tag %d, which nobody sent", NEVER_USED_TAG);
        }
        MPI_Message none;
        MPI_Status st;
        MPI_Mprobe(MPI_PROC_NULL, MPI_ANY_TAG, comm, &none, &st);
        ff_expect(none == MPI_MESSAGE_NO_PROC && st.MPI_SOURCE == MPI_PROC_NULL,
                  "Mprobe from MPI_PROC_NULL did not return MPI_MESSAGE_NO_PROC");
        wild_end(&w, "probes");
    }
    ff_note("%d messages per pair, four probe methods", WILD_PER_PEER);
    wild_free(&w);
}

/* ------------------------------------------------------------------------------------------------ */

static const ff_subtest subtests[] = {
    {"sizes", test_sizes, "every standard size (0 B to --max-size) with every peer, three call patterns"},
    {"wildcards", test_wildcards, "ANY_SOURCE/ANY_TAG receives with status and order checks"},
    {"ordering", test_ordering, "non-overtaking: one tag, mixed eager and rendezvous, late/early/wildcard receives"},
    {"unexpected", test_unexpected, "bursts of sends before any receive, received in reverse tag order"},
    {"probes", test_probes, "Probe, Iprobe, Mprobe/Mrecv, Improbe/Imrecv with wildcards"},
    {"storm_waitall", test_storm_waitall, "hundreds of Isend/Irecv completed by Waitall"},
    {"storm_waitany", test_storm_waitany, "hundreds of Isend/Irecv completed by Waitany"},
    {"storm_testsome", test_storm_testsome, "hundreds of Isend/Irecv completed by Testsome"},
    {"send_modes", test_send_modes, "Ssend/Issend (completion rule), Bsend/Ibsend, Rsend/Irsend"},
    {"sendrecv", test_sendrecv, "Sendrecv with unequal sizes, Sendrecv_replace"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_p2p",
        .summary = "point-to-point correctness: sizes, wildcards, ordering, unexpected bursts, probes, storms, "
                   "send modes",
        .data_options = true,
        .default_max_size = 64 * FF_MIB,
        .subtests = subtests,
    };
    return ff_main(argc, argv, &prog);
}
