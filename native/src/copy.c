/*
 * Bulk copies into and out of rings, one routine per kind, and the process-wide choice ff_copy uses.
 *
 * Why several: the fastest way to copy 16-128 KiB differs by CPU. glibc's memcpy uses `rep movsb` above
 * about 2 KiB; on the Intel machine the BTL was first tuned on that ran at full or about 60% speed for a
 * whole process depending on where its buffers landed (bimodal 4 MiB bandwidth, 10 vs 17 GB/s), which
 * plain vector loads and stores in fixed blocks do not do. On CPUs with fast short rep movsb (FSRM: AMD
 * Zen 3 and later, Intel Ice Lake and later) the microcode copy is as fast as the widest vector loop.
 * ff_copy_choose (tuning.c) picks one from the CPU's features; btl_freeflow_copy overrides it.
 */
#define _GNU_SOURCE
#include "freeflow.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void copy_libc(void *restrict dst, const void *restrict src, size_t len)
{
    memcpy(dst, src, len);
}

/* Fixed 256-byte blocks: compiled to plain vector loads and stores (no rep movsb). */
static void copy_blocks(void *restrict dst, const void *restrict src, size_t len)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (len >= 256) {
        memcpy(d, s, 256);
        d += 256;
        s += 256;
        len -= 256;
    }
    memcpy(d, s, len);
}

#if defined(__x86_64__)
static void copy_movsb(void *restrict dst, const void *restrict src, size_t len)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(len) : : "memory");
}

/* 128 bytes per step with 32-byte loads and stores; the tail through memcpy. */
__attribute__((target("avx2"))) static void copy_avx2(void *restrict dst, const void *restrict src, size_t len)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (len >= 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *) (const void *) s);
        __m256i b = _mm256_loadu_si256((const __m256i *) (const void *) (s + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *) (const void *) (s + 64));
        __m256i e = _mm256_loadu_si256((const __m256i *) (const void *) (s + 96));
        _mm256_storeu_si256((__m256i *) (void *) d, a);
        _mm256_storeu_si256((__m256i *) (void *) (d + 32), b);
        _mm256_storeu_si256((__m256i *) (void *) (d + 64), c);
        _mm256_storeu_si256((__m256i *) (void *) (d + 96), e);
        d += 128;
        s += 128;
        len -= 128;
    }
    memcpy(d, s, len);
}

/* 256 bytes per step with 64-byte loads and stores. */
__attribute__((target("avx512f"))) static void copy_avx512(void *restrict dst, const void *restrict src, size_t len)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (len >= 256) {
        __m512i a = _mm512_loadu_si512((const void *) s);
        __m512i b = _mm512_loadu_si512((const void *) (s + 64));
        __m512i c = _mm512_loadu_si512((const void *) (s + 128));
        __m512i e = _mm512_loadu_si512((const void *) (s + 192));
        _mm512_storeu_si512((void *) d, a);
        _mm512_storeu_si512((void *) (d + 64), b);
        _mm512_storeu_si512((void *) (d + 128), c);
        _mm512_storeu_si512((void *) (d + 192), e);
        d += 256;
        s += 256;
        len -= 256;
    }
    memcpy(d, s, len);
}

/* Non-temporal (streaming) stores: the data goes to memory, not into this core's cache. Only for a
 * destination nobody reads soon; a ring's consumer reads within microseconds, so this is never chosen
 * for rings automatically (measured in docs/btl.md). The destination's head is copied normally up to a
 * 32-byte boundary; sfence orders the streaming stores before the caller's release store. */
__attribute__((target("avx2"))) static void copy_nt(void *restrict dst, const void *restrict src, size_t len)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    const size_t head = (32u - ((uintptr_t) d & 31u)) & 31u;
    if (len < head + 128) {
        memcpy(d, s, len);
        return;
    }
    memcpy(d, s, head);
    d += head;
    s += head;
    len -= head;
    while (len >= 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *) (const void *) s);
        __m256i b = _mm256_loadu_si256((const __m256i *) (const void *) (s + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *) (const void *) (s + 64));
        __m256i e = _mm256_loadu_si256((const __m256i *) (const void *) (s + 96));
        _mm256_stream_si256((__m256i *) (void *) d, a);
        _mm256_stream_si256((__m256i *) (void *) (d + 32), b);
        _mm256_stream_si256((__m256i *) (void *) (d + 64), c);
        _mm256_stream_si256((__m256i *) (void *) (d + 96), e);
        d += 128;
        s += 128;
        len -= 128;
    }
    _mm_sfence();
    memcpy(d, s, len);
}
#endif

static const char *const COPY_NAMES[FF_COPY_KIND_COUNT] = {
    [FF_COPY_AUTO] = "auto", [FF_COPY_LIBC] = "libc",     [FF_COPY_BLOCKS] = "blocks", [FF_COPY_MOVSB] = "movsb",
    [FF_COPY_AVX2] = "avx2", [FF_COPY_AVX512] = "avx512", [FF_COPY_NT] = "nt",
};

const char *ff_copy_kind_name(ff_copy_kind_t kind)
{
    return (unsigned) kind < FF_COPY_KIND_COUNT ? COPY_NAMES[kind] : "unknown";
}

ff_status_t ff_copy_kind_parse(const char *name, ff_copy_kind_t *kind)
{
    if (!name || !kind) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    for (unsigned i = 0; i < FF_COPY_KIND_COUNT; ++i) {
        if (!strcmp(name, COPY_NAMES[i])) {
            *kind = (ff_copy_kind_t) i;
            return FF_OK;
        }
    }
    return FF_ERR_INVALID_ARGUMENT;
}

ff_copy_fn_t ff_copy_routine(ff_copy_kind_t kind, const ff_cpu_info_t *cpu)
{
    switch (kind) {
    case FF_COPY_LIBC: return copy_libc;
    case FF_COPY_BLOCKS: return copy_blocks;
#if defined(__x86_64__)
    case FF_COPY_MOVSB: return copy_movsb;
    case FF_COPY_AVX2: return cpu && cpu->avx2 ? copy_avx2 : NULL;
    case FF_COPY_AVX512: return cpu && cpu->avx512f ? copy_avx512 : NULL;
    case FF_COPY_NT: return cpu && cpu->avx2 ? copy_nt : NULL;
#endif
    default: return NULL;
    }
}

/* The routine ff_copy calls: set once at start-up (ff_copy_use), before any copy, by one thread. */
static ff_copy_fn_t current_copy = copy_blocks;

ff_status_t ff_copy_use(ff_copy_kind_t kind, const ff_cpu_info_t *cpu)
{
    ff_copy_fn_t routine = ff_copy_routine(kind, cpu);
    if (!routine) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    current_copy = routine;
    return FF_OK;
}

void ff_copy(void *restrict dst, const void *restrict src, size_t len)
{
    current_copy(dst, src, len);
}
