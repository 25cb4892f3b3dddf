/* ffcheck_data.c: content patterns, checks, buffers, sizes and random numbers of the ffcheck_* programs. */
#include "ffcheck.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------ */
/* Content patterns                                                                                  */

uint64_t ff_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t ff_key(ff_msg m)
{
    uint64_t k = ff_mix64((uint64_t) ff.seed);
    k = ff_mix64(k ^ (uint32_t) m.src);
    k = ff_mix64(k ^ (uint32_t) m.dst);
    k = ff_mix64(k ^ (uint32_t) m.tag);
    return ff_mix64(k ^ m.index);
}

/* Byte `offset` of the pattern is byte offset%8 of the 64-bit word mix64(key + offset/8). */
unsigned char ff_pattern_byte(uint64_t key, size_t offset)
{
    return (unsigned char) (ff_mix64(key + offset / 8) >> (8 * (offset % 8)));
}

static void word_bytes(uint64_t w, unsigned char out[8])
{
    for (int b = 0; b < 8; b++) out[b] = (unsigned char) (w >> (8 * b));
}

void ff_fill(void *buf, size_t n, uint64_t key)
{
    unsigned char *p = buf;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++) word_bytes(ff_mix64(key + i), p + 8 * i);
    for (size_t o = words * 8; o < n; o++) p[o] = ff_pattern_byte(key, o);
}

void ff_fill_msg(void *buf, size_t n, ff_msg m)
{
    ff_fill(buf, n, ff_key(m));
}

bool ff_check_msg(void *buf, size_t n, ff_msg m)
{
    ff_maybe_inject(buf, n);
    uint64_t key = ff_key(m);
    const unsigned char *p = buf;
    size_t first = SIZE_MAX, differ = 0;
    unsigned char want[8];
    for (size_t i = 0; i * 8 < n; i++) {
        word_bytes(ff_mix64(key + i), want);
        size_t len = n - i * 8 < 8 ? n - i * 8 : 8;
        if (memcmp(p + i * 8, want, len) == 0) continue;
        for (size_t b = 0; b < len; b++) {
            if (p[i * 8 + b] != want[b]) {
                differ++;
                if (first == SIZE_MAX) first = i * 8 + b;
            }
        }
    }
    if (!differ) return true;
    ff_fail("data from rank %d to rank %d (tag %d, message %llu, %zu B) differs at offset %zu: expected 0x%02x "
            "got 0x%02x; %zu of %zu bytes differ%s",
            m.src, m.dst, m.tag, (unsigned long long) m.index, n, first, ff_pattern_byte(key, first), p[first], differ,
            n, differ == n && p[first] == FF_POISON ? " (looks never written)" : "");
    return false;
}

bool ff_check_poison(const void *buf, size_t from, size_t to, const char *what)
{
    const unsigned char *p = buf;
    for (size_t o = from; o < to; o++) {
        if (p[o] != FF_POISON) {
            ff_fail("%s: byte %zu was written (0x%02x) though nothing should be there (expected poison 0x%02x)", what,
                    o, p[o], FF_POISON);
            return false;
        }
    }
    return true;
}

uint64_t ff_checksum(const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uint64_t h = 0x6A09E667F3BCC909ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = ff_mix64(h ^ w);
    }
    uint64_t tail = 0;
    for (; i < n; i++) tail = (tail << 8) | p[i];
    return ff_mix64(h ^ tail);
}

/* ------------------------------------------------------------------------------------------------ */
/* Buffers and statuses                                                                              */

void *ff_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "%s: rank %d: out of memory allocating %zu bytes; lower --max-size.\n", ff.prog->name, ff.rank,
                n);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return p;
}

ff_buf ff_buf_new(size_t cap)
{
    ff_buf b = {ff_xmalloc(cap + FF_GUARD), cap};
    memset(b.p, FF_POISON, cap + FF_GUARD);
    return b;
}

void ff_buf_free(ff_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

void ff_buf_prepare(ff_buf *b, size_t expected)
{
    size_t end = expected > b->cap ? b->cap : expected;
    memset(b->p, FF_POISON, end + FF_GUARD);
}

bool ff_buf_check(ff_buf *b, size_t received, ff_msg m)
{
    bool ok = ff_check_msg(b->p, received, m);
    char what[128];
    snprintf(what, sizeof what, "after the %zu B message from rank %d (tag %d, message %llu)", received, m.src, m.tag,
             (unsigned long long) m.index);
    size_t end = received + FF_GUARD > b->cap + FF_GUARD ? b->cap + FF_GUARD : received + FF_GUARD;
    return ff_check_poison(b->p, received, end, what) && ok;
}

bool ff_check_status(const MPI_Status *st, int source, int tag, size_t bytes, const char *what)
{
    int count = -1;
    MPI_Get_count(st, MPI_BYTE, &count);
    bool ok = st->MPI_SOURCE == source && st->MPI_TAG == tag && count >= 0 && (size_t) count == bytes;
    if (!ok)
        ff_fail("%s: status says source %d tag %d count %d, expected source %d tag %d count %zu", what, st->MPI_SOURCE,
                st->MPI_TAG, count, source, tag, bytes);
    return ok;
}

/* ------------------------------------------------------------------------------------------------ */
/* Random numbers, sizes, peers                                                                      */

uint64_t ff_rand(uint64_t *state_)
{
    *state_ += 0x9E3779B97F4A7C15ull;
    return ff_mix64(*state_);
}

uint64_t ff_rand_below(uint64_t *state_, uint64_t n)
{
    return ff_rand(state_) % n;
}

size_t ff_standard_sizes(size_t max, size_t *out, size_t cap)
{
    static const size_t sizes[] = {
        0,
        1,
        7,
        8,
        63,
        64,
        65,
        4095,
        4096,
        4097,
        8193,
        32767,
        32768,
        32769,
        65535,
        65536,
        65537,
        256 * 1024 + 1,
        1024 * 1024 + 13,
        4 * 1024 * 1024 - 1,
        64 * 1024 * 1024,
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && n < cap; i++)
        if (sizes[i] <= max) out[n++] = sizes[i];
    if (n < cap && (n == 0 || out[n - 1] < max)) out[n++] = max;
    return n;
}

int ff_peer_to(int d)
{
    return (ff.rank + d) % ff.size;
}

int ff_peer_from(int d)
{
    return ((ff.rank - d) % ff.size + ff.size) % ff.size;
}
