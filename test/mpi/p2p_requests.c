/* Request storms, send modes and sendrecv of ffcheck_p2p. */
#include "p2p.h"

#include <stdlib.h>
#include <string.h>

#define STORM_PER_PEER_MIN 16
#define STORM_TARGET       256 /* requests of each kind per rank */

enum { STORM_WAITALL, STORM_WAITANY, STORM_TESTSOME };

static size_t storm_size(int src, int dst, int k)
{
    static const size_t sizes[] = {0, 1, 8, 100, 1000, 4097, 13, 64};
    if (k % 16 == 15) return clip(65537);
    return clip(sizes[(k + src + dst) % 8]);
}

/* Hundreds of Isend and Irecv at once, in one request array, completed in the given way. */
static void storm(int how)
{
    int per_peer = STORM_TARGET / ff.size;
    if (per_peer < STORM_PER_PEER_MIN) per_peer = STORM_PER_PEER_MIN;
    int nreq = 2 * per_peer * ff.size;
    size_t cap = clip(65537);
    unsigned char **bufs = ff_xmalloc(sizeof *bufs * (size_t) nreq);
    for (int i = 0; i < nreq; i++) bufs[i] = ff_xmalloc(cap + FF_GUARD);
    MPI_Request *reqs = ff_xmalloc(sizeof *reqs * (size_t) nreq);
    MPI_Status *sts = ff_xmalloc(sizeof *sts * (size_t) nreq); /* by request index */
    MPI_Status *got = ff_xmalloc(sizeof *got * (size_t) nreq); /* by completion order */
    int *idx = ff_xmalloc(sizeof *idx * (size_t) nreq);
    char *done = ff_xmalloc((size_t) nreq);
    MPI_Comm comm = MPI_COMM_WORLD;

    for (long it = 0; it < ff.iterations; it++) {
        uint64_t base = (uint64_t) it * (uint64_t) per_peer;
        /* Request 2*(k*size+d) receives from distance d, the next one sends to distance d. */
        for (int k = 0; k < per_peer; k++) {
            for (int d = 0; d < ff.size; d++) {
                int i = 2 * (k * ff.size + d);
                int from = ff_peer_from(d), to = ff_peer_to(d), tag = k % 17;
                memset(bufs[i], FF_POISON, cap + FF_GUARD);
                MPI_Irecv(bufs[i], (int) cap, MPI_BYTE, from, tag, comm, &reqs[i]);
                size_t n = storm_size(ff.rank, to, k);
                ff_fill_msg(bufs[i + 1], n, (ff_msg){ff.rank, to, tag, base + (uint64_t) k});
                MPI_Isend(bufs[i + 1], (int) n, MPI_BYTE, to, tag, comm, &reqs[i + 1]);
            }
        }
        memset(done, 0, (size_t) nreq);
        int completed = 0;
        if (how == STORM_WAITALL) {
            MPI_Waitall(nreq, reqs, sts);
            memset(done, 1, (size_t) nreq);
            completed = nreq;
        } else {
            while (completed < nreq) {
                int outcount = 0;
                if (how == STORM_WAITANY) {
                    MPI_Waitany(nreq, reqs, &idx[0], &got[0]);
                    if (!ff_expect(idx[0] != MPI_UNDEFINED, "Waitany returned MPI_UNDEFINED with %d requests open",
                                   nreq - completed))
                        break;
                    outcount = 1;
                } else {
                    MPI_Testsome(nreq, reqs, &outcount, idx, got);
                    if (!ff_expect(outcount != MPI_UNDEFINED, "Testsome returned MPI_UNDEFINED with %d requests open",
                                   nreq - completed))
                        break;
                }
                for (int j = 0; j < outcount; j++) {
                    int r = idx[j];
                    if (!ff_expect(r >= 0 && r < nreq && !done[r], "request %d completed twice or out of range", r))
                        continue;
                    done[r] = 1;
                    sts[r] = got[j];
                    completed++;
                }
            }
            int last = 0, outcount = 0;
            if (how == STORM_WAITANY) {
                MPI_Waitany(nreq, reqs, &last, MPI_STATUS_IGNORE);
                ff_expect(last == MPI_UNDEFINED, "Waitany on finished requests returned index %d", last);
            } else {
                MPI_Testsome(nreq, reqs, &outcount, idx, MPI_STATUSES_IGNORE);
                ff_expect(outcount == MPI_UNDEFINED, "Testsome on finished requests returned %d", outcount);
            }
        }
        for (int k = 0; k < per_peer; k++) {
            for (int d = 0; d < ff.size; d++) {
                int i = 2 * (k * ff.size + d), from = ff_peer_from(d), tag = k % 17;
                size_t n = storm_size(from, ff.rank, k);
                if (!done[i] || !ff_check_status(&sts[i], from, tag, n, "storm receive")) continue;
                ff_check_msg(bufs[i], n, (ff_msg){from, ff.rank, tag, base + (uint64_t) k});
                ff_check_poison(bufs[i], n, n + FF_GUARD, "storm receive buffer");
            }
        }
    }
    ff_note("%d requests per rank at once", nreq);
    free(done);
    free(idx);
    free(got);
    free(sts);
    free(reqs);
    for (int i = 0; i < nreq; i++) free(bufs[i]);
    free(bufs);
}

void test_storm_waitall(void)
{
    storm(STORM_WAITALL);
}
void test_storm_waitany(void)
{
    storm(STORM_WAITANY);
}
void test_storm_testsome(void)
{
    storm(STORM_TESTSOME);
}

/* ------------------------------------------------------------------------------------------------ */

static const size_t mode_sizes[] = {0, 1, 4097, 65537, FF_MIB + 13};
#define N_MODE_SIZES (sizeof mode_sizes / sizeof mode_sizes[0])

enum { MODE_SSEND, MODE_ISSEND, MODE_BSEND, MODE_IBSEND, MODE_RSEND, MODE_IRSEND, MODE_COUNT };
static const char *const mode_names[] = {"Ssend", "Issend", "Bsend", "Ibsend", "Rsend", "Irsend"};

static void send_in_mode(int mode, void *buf, size_t n, int to, int tag, MPI_Comm comm)
{
    MPI_Request rq = MPI_REQUEST_NULL;
    switch (mode) {
    case MODE_SSEND: MPI_Ssend(buf, (int) n, MPI_BYTE, to, tag, comm); break;
    case MODE_ISSEND: MPI_Issend(buf, (int) n, MPI_BYTE, to, tag, comm, &rq); break;
    case MODE_BSEND: MPI_Bsend(buf, (int) n, MPI_BYTE, to, tag, comm); break;
    case MODE_IBSEND: MPI_Ibsend(buf, (int) n, MPI_BYTE, to, tag, comm, &rq); break;
    case MODE_RSEND: MPI_Rsend(buf, (int) n, MPI_BYTE, to, tag, comm); break;
    default: MPI_Irsend(buf, (int) n, MPI_BYTE, to, tag, comm, &rq); break;
    }
    MPI_Wait(&rq, MPI_STATUS_IGNORE);
}

/* Ssend, Bsend and Rsend with their nonblocking forms, plus the synchronous-send rule itself. */
void test_send_modes(void)
{
    size_t cap = clip(mode_sizes[N_MODE_SIZES - 1]);
    /* Ranks drift apart by a few rounds between barriers: room for every buffered send of both
     * buffered modes at once. */
    size_t total = 0;
    for (size_t i = 0; i < N_MODE_SIZES; i++) total += 2 * (clip(mode_sizes[i]) + MPI_BSEND_OVERHEAD);
    void *attached = ff_xmalloc(total);
    MPI_Buffer_attach(attached, (int) total);
    unsigned char *sb = ff_xmalloc(cap);
    ff_buf rb = ff_buf_new(cap);
    MPI_Comm comm = MPI_COMM_WORLD;

    for (long it = 0; it < ff.iterations; it++) {
        for (int d = 0; d < ff.size; d++) {
            int to = ff_peer_to(d), from = ff_peer_from(d);
            for (int mode = 0; mode < MODE_COUNT; mode++) {
                for (size_t si = 0; si < N_MODE_SIZES; si++) {
                    size_t n = clip(mode_sizes[si]);
                    int tag = mode * 16 + (int) si;
                    uint64_t index = (uint64_t) it;
                    ff_fill_msg(sb, n, (ff_msg){ff.rank, to, tag, index});
                    ff_buf_prepare(&rb, n);
                    MPI_Request rq;
                    MPI_Status st;
                    bool ready = mode == MODE_RSEND || mode == MODE_IRSEND;
                    if (ready) {
                        /* Ready mode: the receive must be posted before the send starts. */
                        MPI_Irecv(rb.p, (int) n, MPI_BYTE, from, tag, comm, &rq);
                        MPI_Barrier(comm);
                        send_in_mode(mode, sb, n, to, tag, comm);
                    } else if (mode == MODE_BSEND || mode == MODE_IBSEND) {
                        /* Buffered sends complete locally: everyone sends before receiving. */
                        send_in_mode(mode, sb, n, to, tag, comm);
                        MPI_Irecv(rb.p, (int) n, MPI_BYTE, from, tag, comm, &rq);
                    } else if (mode == MODE_ISSEND && d != 0) {
                        /* A synchronous send cannot complete before its receive is posted, and the
                         * receiver posts only after this rank has entered the barrier. */
                        MPI_Request sq;
                        int flag = 1;
                        MPI_Issend(sb, (int) n, MPI_BYTE, to, tag, comm, &sq);
                        MPI_Test(&sq, &flag, MPI_STATUS_IGNORE);
                        ff_expect(!flag, "Issend of %zu B to rank %d completed before the receiver posted its receive",
                                  n, to);
                        MPI_Barrier(comm);
                        MPI_Irecv(rb.p, (int) n, MPI_BYTE, from, tag, comm, &rq);
                        MPI_Wait(&sq, MPI_STATUS_IGNORE);
                    } else {
                        MPI_Irecv(rb.p, (int) n, MPI_BYTE, from, tag, comm, &rq);
                        send_in_mode(mode, sb, n, to, tag, comm);
                    }
                    MPI_Wait(&rq, &st);
                    if (ff_check_status(&st, from, tag, n, mode_names[mode]))
                        ff_buf_check(&rb, n, (ff_msg){from, ff.rank, tag, index});
                }
            }
        }
    }
    void *detached;
    int detached_size;
    MPI_Buffer_detach(&detached, &detached_size);
    ff_note("6 send modes x %zu sizes per pair", N_MODE_SIZES);
    free(attached);
    free(sb);
    ff_buf_free(&rb);
}

/* ------------------------------------------------------------------------------------------------ */

/* Sendrecv with different sizes in the two directions, and Sendrecv_replace. */
void test_sendrecv(void)
{
    size_t cap = largest_mixed();
    unsigned char *sb = ff_xmalloc(cap);
    ff_buf rb = ff_buf_new(cap);
    MPI_Comm comm = MPI_COMM_WORLD;
    for (long it = 0; it < ff.iterations; it++) {
        for (int d = 0; d < ff.size; d++) {
            int to = ff_peer_to(d), from = ff_peer_from(d);
            for (size_t i = 0; i < n_mixed; i++) {
                uint64_t index = (uint64_t) it * n_mixed + i;
                MPI_Status st;
                /* Each sender picks its own size: the two directions of a pair differ. */
                size_t out = mixed_size(i + (size_t) ff.rank), in = mixed_size(i + (size_t) from);
                ff_fill_msg(sb, out, (ff_msg){ff.rank, to, 1, index});
                ff_buf_prepare(&rb, cap);
                MPI_Sendrecv(sb, (int) out, MPI_BYTE, to, 1, rb.p, (int) cap, MPI_BYTE, from, 1, comm, &st);
                if (ff_check_status(&st, from, 1, in, "Sendrecv"))
                    ff_buf_check(&rb, in, (ff_msg){from, ff.rank, 1, index});

                /* Sendrecv_replace sends and receives the same count: one size per round. */
                size_t n = mixed_size(i);
                ff_buf_prepare(&rb, n);
                ff_fill_msg(rb.p, n, (ff_msg){ff.rank, to, 2, index});
                MPI_Sendrecv_replace(rb.p, (int) n, MPI_BYTE, to, 2, from, 2, comm, &st);
                if (ff_check_status(&st, from, 2, n, "Sendrecv_replace"))
                    ff_buf_check(&rb, n, (ff_msg){from, ff.rank, 2, index});
            }
        }
    }
    ff_note("%zu sizes per pair", n_mixed);
    free(sb);
    ff_buf_free(&rb);
}
