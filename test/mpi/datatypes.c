/*
 * ffcheck_datatypes: derived datatypes across every pair of ranks. Each case sends with one type and
 * receives with another type of the same signature (and the other way round), with element counts
 * from 0 to a few MiB of data, so that non-contiguous data crosses the eager, rendezvous and pipeline
 * paths. The test computes every type's byte layout itself (independently of MPI), fills the sender's
 * bytes in type-map order with the content pattern, and checks on the receiver that each byte of the
 * receive type-map holds the right pattern byte and that every byte outside it was left untouched.
 */
#include "ffcheck.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* One contiguous run of a type map, in the order MPI packs it. */
typedef struct {
    size_t off, len;
} block;

/* A datatype with `count` elements and its byte layout, computed by the test. */
typedef struct {
    const char *name;
    MPI_Datatype type;
    int count;
    size_t extent; /* of one element, as the test expects it */
    block *blocks;
    size_t nblocks, cap;
    size_t span;   /* buffer bytes the layout touches */
    size_t stream; /* packed bytes */
} layout;

/* Adds bytes [off, off+len) to the type map, merged with the previous run when adjacent. */
static void add_block(layout *l, size_t off, size_t len)
{
    if (len == 0) return;
    if (l->nblocks && l->blocks[l->nblocks - 1].off + l->blocks[l->nblocks - 1].len == off) {
        l->blocks[l->nblocks - 1].len += len;
    } else {
        if (l->nblocks == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 64;
            l->blocks = realloc(l->blocks, l->cap * sizeof *l->blocks);
            if (!l->blocks) ff_xmalloc(SIZE_MAX); /* reports and aborts */
        }
        l->blocks[l->nblocks++] = (block){off, len};
    }
    if (off + len > l->span) l->span = off + len;
    l->stream += len;
}

/* The type map of one element, placed at byte `base`. */
typedef void (*element_fn)(layout *l, size_t base);

/* A case: how to make the two types, their element extents and type maps, and how many elements of
 * the second type carry the data of one element of the first (same signature). */
typedef struct {
    const char *name;
    MPI_Datatype (*make_a)(void);
    size_t extent_a;
    element_fn elem_a;
    MPI_Datatype (*make_b)(void);
    size_t extent_b;
    element_fn elem_b;
    int b_per_a;
} type_case;

static layout make_layout(const char *name, MPI_Datatype type, int count, size_t extent, element_fn elem)
{
    layout l = {.name = name, .type = type, .count = count, .extent = extent};
    for (int i = 0; i < count; i++) elem(&l, (size_t) i * extent);
    return l;
}

static void free_layout(layout *l)
{
    free(l->blocks);
    l->blocks = NULL;
}

/* Does MPI agree with the layout the test computed? If not, the test or MPI's type engine is wrong
 * and the data checks would be meaningless. */
static bool layout_matches_mpi(const layout *l)
{
    int size;
    MPI_Aint lb, extent;
    MPI_Type_size(l->type, &size);
    MPI_Type_get_extent(l->type, &lb, &extent);
    size_t per_element = l->count ? l->stream / (size_t) l->count : (size_t) size;
    return ff_expect(lb == 0 && (size_t) extent == l->extent && (size_t) size == per_element,
                     "type %s: MPI says lb %ld extent %ld size %d, the test computed lb 0 extent %zu size %zu", l->name,
                     (long) lb, (long) extent, size, l->extent, per_element);
}

/* ------------------------------------------------------------------------------------------------ */
/* The cases. Each element function mirrors the MPI constructor next to it.                          */

#define DBL sizeof(double)
#define INT sizeof(int)

static MPI_Datatype committed(MPI_Datatype t)
{
    MPI_Type_commit(&t);
    return t;
}

static MPI_Datatype make_double(void)
{
    return MPI_DOUBLE;
}
static void elem_double(layout *l, size_t base)
{
    add_block(l, base, DBL);
}
static MPI_Datatype make_int(void)
{
    return MPI_INT;
}
static void elem_int(layout *l, size_t base)
{
    add_block(l, base, INT);
}

/* vector: 5 blocks of 3 doubles, stride 7 doubles. */
enum { V_COUNT = 5, V_BLOCK = 3, V_STRIDE = 7 };
static MPI_Datatype make_vector(void)
{
    MPI_Datatype t;
    MPI_Type_vector(V_COUNT, V_BLOCK, V_STRIDE, MPI_DOUBLE, &t);
    return committed(t);
}
static void elem_vector(layout *l, size_t base)
{
    for (int i = 0; i < V_COUNT; i++) add_block(l, base + (size_t) i * V_STRIDE * DBL, V_BLOCK * DBL);
}
#define VECTOR_EXTENT (((V_COUNT - 1) * V_STRIDE + V_BLOCK) * DBL)

/* Single doubles with stride 2: same signature as the vector, another layout. */
static MPI_Datatype make_strided_doubles(void)
{
    MPI_Datatype t;
    MPI_Type_vector(V_COUNT * V_BLOCK, 1, 2, MPI_DOUBLE, &t);
    return committed(t);
}
static void elem_strided_doubles(layout *l, size_t base)
{
    for (int i = 0; i < V_COUNT * V_BLOCK; i++) add_block(l, base + (size_t) i * 2 * DBL, DBL);
}
#define STRIDED_EXTENT (((V_COUNT * V_BLOCK - 1) * 2 + 1) * DBL)

/* hvector with a byte stride that leaves ints unaligned: 6 blocks of 2 ints every 13 bytes, resized to
 * its true extent (MPI would pad it to int alignment) so that consecutive elements stay unaligned. */
enum { HV_COUNT = 6, HV_BLOCK = 2, HV_STRIDE = 13 };
#define HVECTOR_EXTENT ((HV_COUNT - 1) * HV_STRIDE + HV_BLOCK * INT)
static MPI_Datatype make_hvector(void)
{
    MPI_Datatype t, r;
    MPI_Type_create_hvector(HV_COUNT, HV_BLOCK, HV_STRIDE, MPI_INT, &t);
    MPI_Type_create_resized(t, 0, HVECTOR_EXTENT, &r);
    MPI_Type_free(&t);
    return committed(r);
}
static void elem_hvector(layout *l, size_t base)
{
    for (int i = 0; i < HV_COUNT; i++) add_block(l, base + (size_t) i * HV_STRIDE, HV_BLOCK * INT);
}

/* indexed: blocks out of memory order (the pack order follows the declaration), one empty block. */
static const int ix_len[] = {1, 0, 5, 2, 7, 2};
static const int ix_disp[] = {30, 2, 3, 11, 16, 0};
#define IX_BLOCKS 6
#define IX_INTS   17
static MPI_Datatype make_indexed(void)
{
    MPI_Datatype t;
    MPI_Type_indexed(IX_BLOCKS, ix_len, ix_disp, MPI_INT, &t);
    return committed(t);
}
static void elem_indexed(layout *l, size_t base)
{
    for (int i = 0; i < IX_BLOCKS; i++) add_block(l, base + (size_t) ix_disp[i] * INT, (size_t) ix_len[i] * INT);
}
#define INDEXED_EXTENT (31 * INT)

/* indexed_block with one int per block, displacements descending with gaps. */
static MPI_Datatype make_indexed_block(void)
{
    int disp[IX_INTS];
    for (int i = 0; i < IX_INTS; i++) disp[i] = 2 * (IX_INTS - 1 - i);
    MPI_Datatype t;
    MPI_Type_create_indexed_block(IX_INTS, 1, disp, MPI_INT, &t);
    return committed(t);
}
static void elem_indexed_block(layout *l, size_t base)
{
    for (int i = 0; i < IX_INTS; i++) add_block(l, base + (size_t) (2 * (IX_INTS - 1 - i)) * INT, INT);
}
#define INDEXED_BLOCK_EXTENT ((2 * (IX_INTS - 1) + 1) * INT)

/* struct with the compiler's gaps, resized to sizeof, against the same fields packed without gaps. */
typedef struct {
    char c;
    double d;
    int i[3];
    short s;
} record;
#define RECORD_PACKED (1 + DBL + 3 * INT + sizeof(short))

static MPI_Datatype make_struct_type(const MPI_Aint *disp, MPI_Aint extent)
{
    int lens[4] = {1, 1, 3, 1};
    MPI_Datatype types[4] = {MPI_CHAR, MPI_DOUBLE, MPI_INT, MPI_SHORT};
    MPI_Datatype t, r;
    MPI_Type_create_struct(4, lens, disp, types, &t);
    MPI_Type_create_resized(t, 0, extent, &r);
    MPI_Type_free(&t);
    return committed(r);
}
static MPI_Datatype make_record(void)
{
    MPI_Aint disp[4] = {offsetof(record, c), offsetof(record, d), offsetof(record, i), offsetof(record, s)};
    return make_struct_type(disp, sizeof(record));
}
static void elem_record(layout *l, size_t base)
{
    add_block(l, base + offsetof(record, c), 1);
    add_block(l, base + offsetof(record, d), DBL);
    add_block(l, base + offsetof(record, i), 3 * INT);
    add_block(l, base + offsetof(record, s), sizeof(short));
}
static MPI_Datatype make_packed_record(void)
{
    MPI_Aint disp[4] = {0, 1, 1 + DBL, 1 + DBL + 3 * INT};
    return make_struct_type(disp, RECORD_PACKED);
}
static void elem_packed_record(layout *l, size_t base)
{
    add_block(l, base, RECORD_PACKED);
}

/* resized: a column of a ROWS x COLS row-major matrix with its extent shrunk to one double, so that
 * COLS of them in a row send the matrix column by column (a transpose); that, resized to the matrix,
 * is one element. */
enum { ROWS = 9, COLS = 11 };
static MPI_Datatype make_transposed_matrix(void)
{
    MPI_Datatype column, narrow, columns, matrix;
    MPI_Type_vector(ROWS, 1, COLS, MPI_DOUBLE, &column);
    MPI_Type_create_resized(column, 0, DBL, &narrow);
    MPI_Type_contiguous(COLS, narrow, &columns);
    MPI_Type_create_resized(columns, 0, ROWS * COLS * DBL, &matrix);
    MPI_Type_free(&column);
    MPI_Type_free(&narrow);
    MPI_Type_free(&columns);
    return committed(matrix);
}
static void elem_transposed_matrix(layout *l, size_t base)
{
    for (size_t j = 0; j < COLS; j++)
        for (size_t i = 0; i < ROWS; i++) add_block(l, base + (i * COLS + j) * DBL, DBL);
}

/* subarray: a 3x4x5 block at (1,2,3) of a 6x10x14 int array. */
static const int sa_sizes[3] = {6, 10, 14}, sa_sub[3] = {3, 4, 5}, sa_start[3] = {1, 2, 3};
static MPI_Datatype make_subarray(void)
{
    MPI_Datatype t;
    MPI_Type_create_subarray(3, sa_sizes, sa_sub, sa_start, MPI_ORDER_C, MPI_INT, &t);
    return committed(t);
}
static void elem_subarray(layout *l, size_t base)
{
    for (int a = 0; a < sa_sub[0]; a++)
        for (int b = 0; b < sa_sub[1]; b++)
            add_block(
                l,
                base + (size_t) (((sa_start[0] + a) * sa_sizes[1] + sa_start[1] + b) * sa_sizes[2] + sa_start[2]) * INT,
                (size_t) sa_sub[2] * INT);
}
#define SUBARRAY_EXTENT (6 * 10 * 14 * INT)

static const type_case cases[] = {
    {"vector", make_vector, VECTOR_EXTENT, elem_vector, make_double, DBL, elem_double, V_COUNT *V_BLOCK},
    {"vector-vs-vector", make_vector, VECTOR_EXTENT, elem_vector, make_strided_doubles, STRIDED_EXTENT,
     elem_strided_doubles, 1},
    {"hvector", make_hvector, HVECTOR_EXTENT, elem_hvector, make_int, INT, elem_int, HV_COUNT *HV_BLOCK},
    {"indexed", make_indexed, INDEXED_EXTENT, elem_indexed, make_indexed_block, INDEXED_BLOCK_EXTENT,
     elem_indexed_block, 1},
    {"struct", make_record, sizeof(record), elem_record, make_packed_record, RECORD_PACKED, elem_packed_record, 1},
    {"resized", make_transposed_matrix, ROWS *COLS *DBL, elem_transposed_matrix, make_double, DBL, elem_double,
     ROWS *COLS},
    {"subarray", make_subarray, SUBARRAY_EXTENT, elem_subarray, make_int, INT, elem_int, 60},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* ------------------------------------------------------------------------------------------------ */
/* Moving pattern bytes in and out of layouts                                                        */

/* Writes the first `n` stream bytes into buf at the layout's positions. */
static void scatter(unsigned char *buf, const layout *l, const unsigned char *stream, size_t n)
{
    size_t pos = 0;
    for (size_t i = 0; i < l->nblocks && pos < n; i++) {
        size_t len = l->blocks[i].len < n - pos ? l->blocks[i].len : n - pos;
        memcpy(buf + l->blocks[i].off, stream + pos, len);
        pos += len;
    }
}

static void gather(unsigned char *stream, const layout *l, const unsigned char *buf, size_t n)
{
    size_t pos = 0;
    for (size_t i = 0; i < l->nblocks && pos < n; i++) {
        size_t len = l->blocks[i].len < n - pos ? l->blocks[i].len : n - pos;
        memcpy(stream + pos, buf + l->blocks[i].off, len);
        pos += len;
    }
}

/* A send buffer: everything outside the type map holds bytes that must never arrive (poison's
 * complement), the type map holds the pattern of m. */
static unsigned char *make_send_buffer(const layout *l, ff_msg m, unsigned char *stream)
{
    unsigned char *buf = ff_xmalloc(l->span + 1);
    memset(buf, (unsigned char) ~FF_POISON, l->span + 1);
    ff_fill_msg(stream, l->stream, m);
    scatter(buf, l, stream, l->stream);
    return buf;
}

/* Checks a receive buffer: the first `n` stream bytes of the layout hold the pattern of m, every
 * other byte of the buffer (span + FF_GUARD) is still poison. */
static void check_receive_buffer(unsigned char *buf, const layout *l, size_t n, ff_msg m, unsigned char *stream)
{
    gather(stream, l, buf, n);
    ff_check_msg(stream, n, m);
    /* Blank out what the type map covers, then everything must be poison. */
    memset(stream, FF_POISON, n);
    scatter(buf, l, stream, n);
    ff_check_poison(buf, 0, l->span + FF_GUARD, "outside the receive type map");
}

static unsigned char *make_receive_buffer(const layout *l)
{
    unsigned char *buf = ff_xmalloc(l->span + FF_GUARD);
    memset(buf, FF_POISON, l->span + FF_GUARD);
    return buf;
}

/* Element counts of the first type: none, one, a few, and enough for about 64 KiB+ and 1 MiB+ of data. */
static size_t counts_for(size_t stream_per_element, int *out)
{
    static const size_t targets[] = {65537, FF_MIB + 13};
    size_t n = 0;
    out[n++] = 0;
    out[n++] = 1;
    out[n++] = 3;
    for (size_t i = 0; i < 2; i++) {
        size_t target = targets[i] > ff.max_size ? ff.max_size : targets[i];
        int c = (int) (target / stream_per_element + 1);
        if (c > out[n - 1]) out[n++] = c;
    }
    return n;
}

/* Sends `count` elements of one side's type to every distance, receives with the other side's type. */
static void exchange(const type_case *tc, bool a_to_b, int count, int tag, uint64_t index)
{
    int count_a = a_to_b ? count : count / tc->b_per_a;
    int count_b = a_to_b ? count * tc->b_per_a : count;
    MPI_Datatype ta = tc->make_a(), tb = tc->make_b();
    layout la = make_layout(tc->name, ta, count_a, tc->extent_a, tc->elem_a);
    layout lb = make_layout(tc->name, tb, count_b, tc->extent_b, tc->elem_b);
    layout *ls = a_to_b ? &la : &lb, *lr = a_to_b ? &lb : &la;
    ff_context("%s, %s -> %s, %d elements", tc->name, a_to_b ? "A" : "B", a_to_b ? "B" : "A", ls->count);
    if (layout_matches_mpi(&la) && layout_matches_mpi(&lb) &&
        ff_expect(la.stream == lb.stream, "the two types carry %zu and %zu bytes", la.stream, lb.stream)) {
        unsigned char *stream = ff_xmalloc(ls->stream + 1);
        for (int d = 0; d < ff.size; d++) {
            int to = ff_peer_to(d), from = ff_peer_from(d);
            unsigned char *sb = make_send_buffer(ls, (ff_msg){ff.rank, to, tag, index}, stream);
            unsigned char *rb = make_receive_buffer(lr);
            MPI_Status st;
            MPI_Sendrecv(sb, ls->count, ls->type, to, tag, rb, lr->count, lr->type, from, tag, MPI_COMM_WORLD, &st);
            int got = -1;
            MPI_Get_count(&st, lr->type, &got);
            ff_expect(st.MPI_SOURCE == from && st.MPI_TAG == tag && got == lr->count,
                      "status says source %d tag %d count %d, expected %d %d %d", st.MPI_SOURCE, st.MPI_TAG, got, from,
                      tag, lr->count);
            check_receive_buffer(rb, lr, lr->stream, (ff_msg){from, ff.rank, tag, index}, stream);
            free(sb);
            free(rb);
        }
        free(stream);
    }
    free_layout(&la);
    free_layout(&lb);
    if (ta != MPI_DOUBLE && ta != MPI_INT) MPI_Type_free(&ta);
    if (tb != MPI_DOUBLE && tb != MPI_INT) MPI_Type_free(&tb);
}

static void run_case(const char *name)
{
    const type_case *tc = NULL;
    for (size_t i = 0; i < N_CASES; i++)
        if (strcmp(cases[i].name, name) == 0) tc = &cases[i];
    MPI_Datatype ta = tc->make_a();
    layout one = make_layout(tc->name, ta, 1, tc->extent_a, tc->elem_a);
    int counts[8];
    size_t nc = counts_for(one.stream, counts);
    free_layout(&one);
    if (ta != MPI_DOUBLE && ta != MPI_INT) MPI_Type_free(&ta);
    for (long it = 0; it < ff.iterations; it++) {
        for (size_t c = 0; c < nc; c++) {
            uint64_t index = ((uint64_t) it * 8 + c) * 2;
            exchange(tc, true, counts[c], (int) c, index);
            /* Back from B to A: B's count must be a whole number of A elements. */
            exchange(tc, false, counts[c] * tc->b_per_a, (int) c, index + 1);
        }
    }
    char sz[32];
    ff_note("%zu counts up to %d elements = %s", nc, counts[nc - 1],
            ff_size_str((size_t) counts[nc - 1] * (one.stream), sz, sizeof sz));
}

static void test_vector(void)
{
    run_case("vector");
}
static void test_vector_vs_vector(void)
{
    run_case("vector-vs-vector");
}
static void test_hvector(void)
{
    run_case("hvector");
}
static void test_indexed(void)
{
    run_case("indexed");
}
static void test_struct(void)
{
    run_case("struct");
}
static void test_resized(void)
{
    run_case("resized");
}
static void test_subarray(void)
{
    run_case("subarray");
}

/* ------------------------------------------------------------------------------------------------ */

/* A message shorter than the receive: 2.5 elements' worth of ints into 3 indexed elements.
 * MPI_Get_count must say MPI_UNDEFINED, MPI_Get_elements the number of ints. */
static void test_partial(void)
{
    MPI_Datatype tix = make_indexed();
    int sent_ints = 2 * IX_INTS + IX_INTS / 2;
    layout ints = make_layout("int", MPI_INT, sent_ints, INT, elem_int);
    layout lix = make_layout("indexed", tix, 3, INDEXED_EXTENT, elem_indexed);
    unsigned char *stream = ff_xmalloc(lix.stream);
    for (long it = 0; it < ff.iterations; it++) {
        for (int d = 0; d < ff.size; d++) {
            int to = ff_peer_to(d), from = ff_peer_from(d);
            unsigned char *sb = make_send_buffer(&ints, (ff_msg){ff.rank, to, 7, (uint64_t) it}, stream);
            unsigned char *rb = make_receive_buffer(&lix);
            MPI_Status st;
            MPI_Sendrecv(sb, sent_ints, MPI_INT, to, 7, rb, 3, tix, from, 7, MPI_COMM_WORLD, &st);
            int count = 0, elements = 0;
            MPI_Get_count(&st, tix, &count);
            MPI_Get_elements(&st, tix, &elements);
            ff_expect(count == MPI_UNDEFINED && elements == sent_ints,
                      "partial receive: Get_count %d (expected MPI_UNDEFINED), Get_elements %d (expected %d)", count,
                      elements, sent_ints);
            check_receive_buffer(rb, &lix, ints.stream, (ff_msg){from, ff.rank, 7, (uint64_t) it}, stream);
            free(sb);
            free(rb);
        }
    }
    ff_note("%d ints into 3 indexed elements of %d", sent_ints, IX_INTS);
    free(stream);
    free_layout(&ints);
    free_layout(&lix);
    MPI_Type_free(&tix);
}

/* MPI_PACKED on the wire: packed data received with a derived type, and typed data received as
 * MPI_PACKED then unpacked into another type of the same signature. */
static void test_pack(void)
{
    MPI_Datatype trec = make_record(), tpacked = make_packed_record();
    int counts[8];
    size_t nc = counts_for(RECORD_PACKED, counts);
    for (long it = 0; it < ff.iterations; it++) {
        for (size_t c = 0; c < nc; c++) {
            int count = counts[c];
            layout lrec = make_layout("struct", trec, count, sizeof(record), elem_record);
            layout lpk = make_layout("packed struct", tpacked, count, RECORD_PACKED, elem_packed_record);
            unsigned char *stream = ff_xmalloc(lrec.stream + 1);
            int pack_size;
            MPI_Pack_size(count, trec, MPI_COMM_WORLD, &pack_size);
            unsigned char *packed = ff_xmalloc((size_t) pack_size + 1);
            for (int d = 0; d < ff.size; d++) {
                int to = ff_peer_to(d), from = ff_peer_from(d);
                uint64_t index = ((uint64_t) it * 8 + c) * 2;
                ff_context("packed send of %d records", count);
                unsigned char *sb = make_send_buffer(&lrec, (ff_msg){ff.rank, to, 8, index}, stream);
                int pos = 0;
                MPI_Pack(sb, count, trec, packed, pack_size, &pos, MPI_COMM_WORLD);
                unsigned char *rb = make_receive_buffer(&lpk);
                MPI_Sendrecv(packed, pos, MPI_PACKED, to, 8, rb, count, tpacked, from, 8, MPI_COMM_WORLD,
                             MPI_STATUS_IGNORE);
                check_receive_buffer(rb, &lpk, lpk.stream, (ff_msg){from, ff.rank, 8, index}, stream);
                free(rb);

                ff_context("typed send of %d records received as MPI_PACKED", count);
                rb = make_receive_buffer(&lpk);
                ff_fill_msg(stream, lrec.stream, (ff_msg){ff.rank, to, 9, index + 1});
                scatter(sb, &lrec, stream, lrec.stream);
                MPI_Status st;
                MPI_Sendrecv(sb, count, trec, to, 9, packed, pack_size, MPI_PACKED, from, 9, MPI_COMM_WORLD, &st);
                int got = -1;
                MPI_Get_count(&st, MPI_PACKED, &got);
                pos = 0;
                MPI_Unpack(packed, got, &pos, rb, count, tpacked, MPI_COMM_WORLD);
                ff_expect(pos == got, "MPI_Unpack consumed %d of %d packed bytes", pos, got);
                check_receive_buffer(rb, &lpk, lpk.stream, (ff_msg){from, ff.rank, 9, index + 1}, stream);
                free(rb);
                free(sb);
            }
            free(packed);
            free(stream);
            free_layout(&lrec);
            free_layout(&lpk);
        }
    }
    ff_note("%zu counts up to %d records", nc, counts[nc - 1]);
    MPI_Type_free(&trec);
    MPI_Type_free(&tpacked);
}

static const ff_subtest subtests[] = {
    {"vector", test_vector, "vector (stride) vs contiguous doubles"},
    {"vector_vs_vector", test_vector_vs_vector, "vector vs another vector of the same signature"},
    {"hvector", test_hvector, "hvector with an unaligned byte stride vs contiguous ints"},
    {"indexed", test_indexed, "indexed (out-of-order and empty blocks) vs indexed_block"},
    {"struct", test_struct, "struct with gaps (resized to sizeof) vs the same fields packed"},
    {"resized", test_resized, "resized column type (matrix transpose) vs contiguous doubles"},
    {"subarray", test_subarray, "3-D subarray vs contiguous ints"},
    {"partial", test_partial, "a message shorter than the receive type: Get_count/Get_elements"},
    {"pack", test_pack, "MPI_Pack/MPI_PACKED/MPI_Unpack against derived types"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_datatypes",
        .summary = "derived datatypes sent as one type and received as another of the same signature",
        .data_options = true,
        .default_max_size = 2 * FF_MIB,
        .subtests = subtests,
    };
    return ff_main(argc, argv, &prog);
}
