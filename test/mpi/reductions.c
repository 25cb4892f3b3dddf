/*
 * Reductions of ffcheck_collectives: each rank's element i is a deterministic value and the expected
 * result is computed locally in rank order. Values are exact (integers, or floating point with few
 * fraction bits), so the result does not depend on the order an algorithm combines them in; a
 * non-commutative user operation's result does, and checks the rank order MPI promises.
 */
#include "collectives.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_INT, T_I64, T_U8, T_FLOAT, T_DOUBLE, T_2INT, T_DOUBLE_INT, T_MAT } vtype;
typedef enum {
    O_SUM,
    O_PROD,
    O_MAX,
    O_MIN,
    O_BAND,
    O_BOR,
    O_BXOR,
    O_LAND,
    O_LOR,
    O_LXOR,
    O_MAXLOC,
    O_MINLOC,
    O_MATMUL
} vop;

typedef struct {
    int v, i;
} int_int;
typedef struct {
    double v;
    int i;
} double_int;
typedef struct {
    uint32_t m[4];
} mat2; /* 2x2, row-major, arithmetic mod 2^32 */

static const char *const type_names[] = {"int", "int64", "uchar", "float", "double", "2int", "double_int", "mat2x2"};
static const char *const op_names[] = {"SUM",
                                       "PROD",
                                       "MAX",
                                       "MIN",
                                       "BAND",
                                       "BOR",
                                       "BXOR",
                                       "LAND",
                                       "LOR",
                                       "LXOR",
                                       "MAXLOC",
                                       "MINLOC",
                                       "user non-commutative matmul"};

typedef struct {
    vop op;
    vtype type;
    bool big; /* also run with about --max-size bytes */
} combo;

static const combo combos[] = {
    {O_SUM, T_INT, false},           {O_SUM, T_I64, false},     {O_SUM, T_U8, false},
    {O_SUM, T_FLOAT, false},         {O_SUM, T_DOUBLE, true},   {O_PROD, T_INT, false},
    {O_PROD, T_DOUBLE, false},       {O_MAX, T_INT, false},     {O_MAX, T_FLOAT, false},
    {O_MAX, T_DOUBLE, false},        {O_MIN, T_I64, false},     {O_MIN, T_DOUBLE, false},
    {O_BAND, T_INT, false},          {O_BAND, T_U8, false},     {O_BOR, T_I64, false},
    {O_BXOR, T_INT, true},           {O_BXOR, T_I64, false},    {O_LAND, T_INT, false},
    {O_LOR, T_INT, false},           {O_LXOR, T_INT, false},    {O_MAXLOC, T_2INT, false},
    {O_MAXLOC, T_DOUBLE_INT, false}, {O_MINLOC, T_2INT, false}, {O_MINLOC, T_DOUBLE_INT, false},
    {O_MATMUL, T_MAT, true},
};
#define N_COMBOS (sizeof combos / sizeof combos[0])

static MPI_Datatype mat_type = MPI_DATATYPE_NULL;
static MPI_Op matmul_op = MPI_OP_NULL;

static size_t type_size(vtype t)
{
    static const size_t sizes[] = {sizeof(int),     sizeof(int64_t),    1,           sizeof(float), sizeof(double),
                                   sizeof(int_int), sizeof(double_int), sizeof(mat2)};
    return sizes[t];
}

static MPI_Datatype mpi_type(vtype t)
{
    switch (t) {
    case T_INT: return MPI_INT;
    case T_I64: return MPI_INT64_T;
    case T_U8: return MPI_UNSIGNED_CHAR;
    case T_FLOAT: return MPI_FLOAT;
    case T_DOUBLE: return MPI_DOUBLE;
    case T_2INT: return MPI_2INT;
    case T_DOUBLE_INT: return MPI_DOUBLE_INT;
    default: return mat_type;
    }
}

static MPI_Op mpi_op(vop o)
{
    switch (o) {
    case O_SUM: return MPI_SUM;
    case O_PROD: return MPI_PROD;
    case O_MAX: return MPI_MAX;
    case O_MIN: return MPI_MIN;
    case O_BAND: return MPI_BAND;
    case O_BOR: return MPI_BOR;
    case O_BXOR: return MPI_BXOR;
    case O_LAND: return MPI_LAND;
    case O_LOR: return MPI_LOR;
    case O_LXOR: return MPI_LXOR;
    case O_MAXLOC: return MPI_MAXLOC;
    case O_MINLOC: return MPI_MINLOC;
    default: return matmul_op;
    }
}

static mat2 mat_mul(mat2 a, mat2 b)
{
    mat2 r;
    r.m[0] = a.m[0] * b.m[0] + a.m[1] * b.m[2];
    r.m[1] = a.m[0] * b.m[1] + a.m[1] * b.m[3];
    r.m[2] = a.m[2] * b.m[0] + a.m[3] * b.m[2];
    r.m[3] = a.m[2] * b.m[1] + a.m[3] * b.m[3];
    return r;
}

/* MPI applies user operations as inout = in op inout, with `in` from the lower ranks. */
static void matmul_fn(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void) type;
    mat2 *a = in, *b = inout;
    for (int i = 0; i < *len; i++) b[i] = mat_mul(a[i], b[i]);
}

/* The values one reduction combines: element i of comm rank r is a function of (salt, r, i). Values
 * are chosen so that no result overflows its type for `ranks` ranks: MPI does not define overflow, and
 * Open MPI 4.1's AVX operations saturate 8-bit sums where C would wrap (open-mpi/ompi#8045). */
typedef struct {
    const combo *cb;
    uint64_t salt;
    int ranks;
} series;

static void value(const series *s, int r, size_t i, void *out)
{
    const combo *cb = s->cb;
    uint64_t u = ff_mix64(ff_mix64(s->salt ^ (uint64_t) ff.seed) ^ ((uint64_t) r << 40) ^ i);
    int small = (int) (u % 2001) - 1000; /* exact in every type used, and its sums too */
    /* Products of up to 16 factors of magnitude 2 fit an int; beyond, only signs change. */
    static const int prod_factors[] = {-2, -1, 1, 2};
    int factor = prod_factors[s->ranks <= 16 ? u % 4 : 1 + u % 2];
    switch (cb->type) {
    case T_INT: {
        int v = cb->op == O_SUM                                             ? small
                : cb->op == O_PROD                                          ? factor
                : (cb->op == O_LAND || cb->op == O_LOR || cb->op == O_LXOR) ? (u % 3 == 0 ? 0 : (int) (u % 7) + 1)
                                                                            : (int) (uint32_t) u;
        memcpy(out, &v, sizeof v);
        break;
    }
    case T_I64: {
        int64_t v = cb->op == O_SUM ? (int64_t) (u % 2000001) - 1000000 : (int64_t) u;
        memcpy(out, &v, sizeof v);
        break;
    }
    case T_U8: {
        unsigned char v = cb->op == O_SUM ? (unsigned char) (u % (256u / (unsigned) s->ranks)) : (unsigned char) u;
        memcpy(out, &v, 1);
        break;
    }
    case T_FLOAT: {
        float v = (float) small / 4.0f;
        memcpy(out, &v, sizeof v);
        break;
    }
    case T_DOUBLE: {
        double v = cb->op == O_PROD ? factor : (double) small / 8.0;
        memcpy(out, &v, sizeof v);
        break;
    }
    case T_2INT: {
        int_int v = {(int) (u % 5), r}; /* many ties: MPI must pick the lowest rank */
        memcpy(out, &v, sizeof v);
        break;
    }
    case T_DOUBLE_INT: {
        double_int v;
        memset(&v, 0, sizeof v);
        v.v = (double) (u % 5) / 2.0;
        v.i = r;
        memcpy(out, &v, sizeof v);
        break;
    }
    case T_MAT: {
        uint64_t w = ff_mix64(u);
        mat2 v = {{(uint32_t) u, (uint32_t) (u >> 32), (uint32_t) w, (uint32_t) (w >> 32)}};
        memcpy(out, &v, sizeof v);
        break;
    }
    }
}

#define COMBINE(T, EXPR)                                                                                               \
    do {                                                                                                               \
        T a, b;                                                                                                        \
        memcpy(&a, acc, sizeof a);                                                                                     \
        memcpy(&b, x, sizeof b);                                                                                       \
        a = (EXPR);                                                                                                    \
        memcpy(acc, &a, sizeof a);                                                                                     \
    } while (0)

/* Value and index of a MAXLOC/MINLOC element (2INT or DOUBLE_INT; the latter has padding). */
static void loc_pair(vtype t, const void *p, double *v, int *i)
{
    if (t == T_2INT) {
        int_int x;
        memcpy(&x, p, sizeof x);
        *v = x.v, *i = x.i;
    } else {
        double_int x;
        memcpy(&x, p, sizeof x);
        *v = x.v, *i = x.i;
    }
}

/* acc = acc op x, the way MPI defines op for this type. */
static void combine(const combo *cb, void *acc, const void *x)
{
    switch (cb->type) {
    case T_INT:
        switch (cb->op) {
        case O_SUM: COMBINE(int, a + b); break;
        case O_PROD: COMBINE(int, a *b); break;
        case O_MAX: COMBINE(int, a > b ? a : b); break;
        case O_BAND: COMBINE(int, a &b); break;
        case O_BXOR: COMBINE(int, a ^ b); break;
        case O_LAND: COMBINE(int, a &&b); break;
        case O_LOR: COMBINE(int, a || b); break;
        default: COMBINE(int, !a != !b); break; /* LXOR */
        }
        break;
    case T_I64:
        switch (cb->op) {
        case O_SUM: COMBINE(int64_t, a + b); break;
        case O_MIN: COMBINE(int64_t, a < b ? a : b); break;
        case O_BOR: COMBINE(int64_t, a | b); break;
        default: COMBINE(int64_t, a ^ b); break; /* BXOR */
        }
        break;
    case T_U8:
        switch (cb->op) {
        case O_SUM: COMBINE(unsigned char, (unsigned char) (a + b)); break;
        default: COMBINE(unsigned char, a &b); break; /* BAND */
        }
        break;
    case T_FLOAT:
        if (cb->op == O_SUM)
            COMBINE(float, a + b);
        else
            COMBINE(float, a > b ? a : b); /* MAX */
        break;
    case T_DOUBLE:
        switch (cb->op) {
        case O_SUM: COMBINE(double, a + b); break;
        case O_PROD: COMBINE(double, a *b); break;
        case O_MAX: COMBINE(double, a > b ? a : b); break;
        default: COMBINE(double, a < b ? a : b); break; /* MIN */
        }
        break;
    case T_2INT:
    case T_DOUBLE_INT: {
        double av, bv;
        int ai, bi;
        loc_pair(cb->type, acc, &av, &ai);
        loc_pair(cb->type, x, &bv, &bi);
        bool take = cb->op == O_MAXLOC ? bv > av : bv < av;
        if (take || (bv == av && bi < ai)) /* ties: the lowest index wins */
            memcpy(acc, x, type_size(cb->type));
        break;
    }
    case T_MAT: COMBINE(mat2, mat_mul(a, b)); break;
    }
}

/* Compares one element; padding of double_int is not part of the value. */
static bool same(vtype t, const void *a, const void *b)
{
    if (t == T_2INT || t == T_DOUBLE_INT) {
        double av, bv;
        int ai, bi;
        loc_pair(t, a, &av, &ai);
        loc_pair(t, b, &bv, &bi);
        return av == bv && ai == bi;
    }
    if (t == T_FLOAT) {
        float x, y;
        memcpy(&x, a, sizeof x);
        memcpy(&y, b, sizeof y);
        return x == y;
    }
    if (t == T_DOUBLE) {
        double x, y;
        memcpy(&x, a, sizeof x);
        memcpy(&y, b, sizeof y);
        return x == y;
    }
    return memcmp(a, b, type_size(t)) == 0;
}

static void fill_values(const series *s, int r, size_t first, size_t count, unsigned char *out)
{
    size_t es = type_size(s->cb->type);
    for (size_t i = 0; i < count; i++) value(s, r, first + i, out + i * es);
}

/* Checks count elements (global indexes first..) against the reduction over ranks lo..hi-1. */
static void check_reduced(const series *s, int lo, int hi, size_t first, size_t count, unsigned char *got)
{
    const combo *cb = s->cb;
    size_t es = type_size(cb->type);
    ff_maybe_inject(got, count * es);
    unsigned char acc[sizeof(mat2) + sizeof(double_int)], x[sizeof(mat2) + sizeof(double_int)];
    long bad = 0;
    for (size_t i = 0; i < count; i++) {
        value(s, lo, first + i, acc);
        for (int r = lo + 1; r < hi; r++) {
            value(s, r, first + i, x);
            combine(cb, acc, x);
        }
        if (!same(cb->type, acc, got + i * es) && bad++ == 0) {
            char e[64] = "", g[64] = "";
            for (size_t b = 0; b < es && b < 16; b++) {
                sprintf(e + 2 * b, "%02x", acc[b]);
                sprintf(g + 2 * b, "%02x", got[i * es + b]);
            }
            ff_fail("%s on %s: element %zu of %zu wrong: expected bytes %s got %s", op_names[cb->op],
                    type_names[cb->type], first + i, count, e, g);
        }
    }
    if (bad > 1)
        ff_fail("%s on %s: %ld of %zu elements wrong in all", op_names[cb->op], type_names[cb->type], bad, count);
}

static size_t element_counts(const combo *cb, size_t *out)
{
    static const size_t counts[] = {0, 1, 13, 1031, 16411};
    size_t es = type_size(cb->type), n = 0;
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i] * es <= ff.max_size) out[n++] = counts[i];
    if (cb->big && ff.max_size / es > out[n - 1]) out[n++] = ff.max_size / es;
    return n;
}

static void reduce_setup(void)
{
    MPI_Type_contiguous(4, MPI_UINT32_T, &mat_type);
    MPI_Type_commit(&mat_type);
    MPI_Op_create(matmul_fn, 0, &matmul_op);
}

static void reduce_teardown(void)
{
    MPI_Op_free(&matmul_op);
    MPI_Type_free(&mat_type);
}

static void reductions_body(const cctx *c, bool all)
{
    for (long it = 0; it < ff.iterations; it++) {
        for (size_t k = 0; k < N_COMBOS; k++) {
            const combo *cb = &combos[k];
            size_t counts[8];
            size_t nc = element_counts(cb, counts);
            size_t es = type_size(cb->type);
            for (size_t ci = 0; ci < nc; ci++) {
                size_t count = counts[ci];
                series sr = {cb, ((uint64_t) it << 32) ^ (k << 16) ^ (ci << 8) ^ (uint64_t) c->index, c->size};
                int root = (int) ((it + (long) k + (long) ci) % c->size);
                /* Only the root may pass MPI_IN_PLACE to reduce. */
                bool in_place = (k + ci) % 2 == 1 && (all || c->rank == root);
                unsigned char *sb = ff_xmalloc(count * es + 1), *rb = poisoned(count * es);
                fill_values(&sr, c->rank, 0, count, in_place ? rb : sb);
                if (all) {
                    ff_context("allreduce%s %s/%s on %s, %zu elements", in_place ? " (in place)" : "", op_names[cb->op],
                               type_names[cb->type], c->name, count);
                    MPI_Allreduce(in_place ? MPI_IN_PLACE : sb, rb, (int) count, mpi_type(cb->type), mpi_op(cb->op),
                                  c->comm);
                } else {
                    ff_context("reduce%s %s/%s on %s, root %d, %zu elements", in_place ? " (in place)" : "",
                               op_names[cb->op], type_names[cb->type], c->name, root, count);
                    MPI_Reduce(in_place ? MPI_IN_PLACE : sb, rb, (int) count, mpi_type(cb->type), mpi_op(cb->op), root,
                               c->comm);
                }
                if (all || c->rank == root) {
                    check_reduced(&sr, 0, c->size, 0, count, rb);
                    ff_check_poison(rb, count * es, count * es + FF_GUARD, "after the reduced elements");
                }
                free(sb);
                free(rb);
            }
        }
    }
}

static void allreduce_body(const cctx *c)
{
    reductions_body(c, true);
}
static void reduce_body(const cctx *c)
{
    reductions_body(c, false);
}

void test_allreduce(void)
{
    reduce_setup();
    for_each_comm(allreduce_body);
    reduce_teardown();
    ff_note("%zu op/type pairs incl. a non-commutative user op, on 4 communicators", N_COMBOS);
}

void test_reduce(void)
{
    reduce_setup();
    for_each_comm(reduce_body);
    reduce_teardown();
    ff_note("%zu op/type pairs incl. a non-commutative user op, on 4 communicators", N_COMBOS);
}

/* reduce_scatter with uneven counts (including zero) and reduce_scatter_block. */
static void reduce_scatter_body(const cctx *c)
{
    static const combo picks[] = {{O_SUM, T_I64, false}, {O_MAX, T_DOUBLE, false}, {O_MATMUL, T_MAT, false}};
    static const int count_table[] = {0, 1, 13, 1031, 5, 0, 4099};
    int n = c->size;
    int *counts = ff_xmalloc(sizeof(int) * (size_t) n);
    for (long it = 0; it < ff.iterations; it++) {
        for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
            const combo *cb = &picks[k];
            size_t es = type_size(cb->type);
            for (int block = 0; block < 2; block++) {
                size_t total = 0, first = 0;
                for (int j = 0; j < n; j++) {
                    counts[j] = block ? 1031 : count_table[ff_mix64((uint64_t) (j * 131 + it * 7) + k) % 7];
                    if (j < c->rank) first += (size_t) counts[j];
                    total += (size_t) counts[j];
                }
                series sr = {
                    cb, ((uint64_t) it << 32) ^ (k << 16) ^ ((uint64_t) block << 8) ^ (uint64_t) c->index ^ 0x55, n};
                size_t mine = (size_t) counts[c->rank];
                unsigned char *sb = ff_xmalloc(total * es + 1), *rb = poisoned(mine * es);
                fill_values(&sr, c->rank, 0, total, sb);
                ff_context("reduce_scatter%s %s/%s on %s", block ? "_block" : "", op_names[cb->op],
                           type_names[cb->type], c->name);
                if (block)
                    MPI_Reduce_scatter_block(sb, rb, counts[0], mpi_type(cb->type), mpi_op(cb->op), c->comm);
                else
                    MPI_Reduce_scatter(sb, rb, counts, mpi_type(cb->type), mpi_op(cb->op), c->comm);
                check_reduced(&sr, 0, n, first, mine, rb);
                ff_check_poison(rb, mine * es, mine * es + FF_GUARD, "after this rank's part");
                free(sb);
                free(rb);
            }
        }
    }
    free(counts);
}

void test_reduce_scatter(void)
{
    reduce_setup();
    for_each_comm(reduce_scatter_body);
    reduce_teardown();
}

/* Inclusive and exclusive prefix reductions; the user op checks rank order. */
static void scan_body(const cctx *c)
{
    static const combo picks[] = {{O_SUM, T_I64, false}, {O_MATMUL, T_MAT, false}, {O_MAX, T_INT, false}};
    static const size_t counts[] = {1, 1031, 16411};
    for (long it = 0; it < ff.iterations; it++) {
        for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
            const combo *cb = &picks[k];
            size_t es = type_size(cb->type);
            for (size_t ci = 0; ci < 3; ci++) {
                size_t count = counts[ci];
                if (count * es > ff.max_size) continue;
                for (int ex = 0; ex < 2; ex++) {
                    series sr = {cb,
                                 ((uint64_t) it << 32) ^ (k << 16) ^ (ci << 8) ^ ((uint64_t) ex << 4) ^
                                     (uint64_t) c->index ^ 0xAA,
                                 c->size};
                    unsigned char *sb = ff_xmalloc(count * es + 1), *rb = poisoned(count * es);
                    fill_values(&sr, c->rank, 0, count, sb);
                    ff_context("%s %s/%s on %s, %zu elements", ex ? "exscan" : "scan", op_names[cb->op],
                               type_names[cb->type], c->name, count);
                    if (ex)
                        MPI_Exscan(sb, rb, (int) count, mpi_type(cb->type), mpi_op(cb->op), c->comm);
                    else
                        MPI_Scan(sb, rb, (int) count, mpi_type(cb->type), mpi_op(cb->op), c->comm);
                    /* Exscan leaves rank 0's buffer undefined. */
                    if (!ex || c->rank > 0) check_reduced(&sr, 0, ex ? c->rank : c->rank + 1, 0, count, rb);
                    free(sb);
                    free(rb);
                }
            }
        }
    }
}

void test_scan(void)
{
    reduce_setup();
    for_each_comm(scan_body);
    reduce_teardown();
}

static const combo int64_sum = {O_SUM, T_I64, false};

void sum_int64_fill(const cctx *c, uint64_t salt, size_t count, int64_t *out)
{
    series sr = {&int64_sum, salt, c->size};
    fill_values(&sr, c->rank, 0, count, (unsigned char *) out);
}

void sum_int64_check(const cctx *c, uint64_t salt, size_t count, int64_t *got)
{
    series sr = {&int64_sum, salt, c->size};
    check_reduced(&sr, 0, c->size, 0, count, (unsigned char *) got);
}
