/* Validation mode: per-message byte patterns, checks of every received byte, and the deliberate fault
 * (--inject-fault) that proves a bad byte is caught. */
#include <stdio.h>
#include <string.h>

#include "ffbench.h"

enum { MAX_REPORTED_MESSAGES = 3 }; /* per rank and size: enough to diagnose, not a flood */

uint64_t ffb_mix64(uint64_t x)
{ /* splitmix64 */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t ffb_message_seed(const struct ffb_ctx *ctx, long iteration, int src, int dst, int slot)
{
    uint64_t h = ffb_mix64((uint64_t) ctx->size);
    h = ffb_mix64(h ^ (uint64_t) iteration);
    h = ffb_mix64(h ^ ((uint64_t) (uint32_t) src << 32 | (uint32_t) dst));
    return ffb_mix64(h ^ (uint64_t) (uint32_t) slot);
}

/* Word k of a pattern covers bytes [8k, 8k + 8). k times an odd constant differs for every k, so a shifted
 * or misplaced chunk no longer matches; the (well mixed) seed differs for every message. Cheap enough that
 * validating large messages runs at close to memory speed. */
static uint64_t pattern_word(uint64_t seed, size_t k)
{
    return seed ^ ((uint64_t) k * 0x9e3779b97f4a7c15ULL);
}

void ffb_fill_pattern(void *buf, size_t len, uint64_t seed)
{
    unsigned char *p = buf;
    const size_t words = len / 8;
    for (size_t k = 0; k < words; k++) {
        const uint64_t word = pattern_word(seed, k);
        memcpy(p + 8 * k, &word, 8);
    }
    const uint64_t tail = pattern_word(seed, words);
    memcpy(p + 8 * words, &tail, len % 8);
}

struct mismatch {
    unsigned long long bad_bytes;
    size_t first_offset;
    unsigned char expected, got;
};

static void note_mismatches(struct mismatch *m, const unsigned char *got, const unsigned char *expected, size_t n,
                            size_t base_offset)
{
    for (size_t i = 0; i < n; i++) {
        if (got[i] == expected[i]) continue;
        if (m->bad_bytes == 0) {
            m->first_offset = base_offset + i;
            m->expected = expected[i];
            m->got = got[i];
        }
        m->bad_bytes++;
    }
}

static void inject_fault_if_pending(struct ffb_ctx *ctx, unsigned char *buf, size_t len)
{
    if (!ctx->validation.fault_pending || len == 0) return;
    buf[len / 2] ^= 0x5a;
    ctx->validation.fault_pending = false;
}

static void finish_check(struct ffb_ctx *ctx, const struct mismatch *m, size_t len, int src, long iteration)
{
    struct ffb_validation *v = &ctx->validation;
    v->checked_bytes += len;
    if (m->bad_bytes == 0) return;
    v->bad_bytes += m->bad_bytes;
    if (v->reported++ >= MAX_REPORTED_MESSAGES) return;
    char from[32];
    if (src < 0)
        snprintf(from, sizeof from, "the reduction");
    else
        snprintf(from, sizeof from, "rank %d", src);
    fprintf(stderr,
            FFB_PROGRAM ": VALIDATION FAILED: %s size %zu iteration %ld: rank %d got %llu bad byte(s) from %s; "
                        "first at offset %zu: expected 0x%02x, got 0x%02x\n",
            ctx->bench->name, ctx->size, iteration, ctx->rank, m->bad_bytes, from, m->first_offset, m->expected,
            m->got);
}

void ffb_check_pattern(struct ffb_ctx *ctx, void *buf, size_t len, uint64_t seed, int src, long iteration)
{
    unsigned char *p = buf;
    inject_fault_if_pending(ctx, p, len);
    struct mismatch m = {0};
    const size_t words = len / 8;
    for (size_t k = 0; k < words; k++) {
        const uint64_t want = pattern_word(seed, k);
        uint64_t got;
        memcpy(&got, p + 8 * k, 8);
        if (got != want) note_mismatches(&m, p + 8 * k, (const unsigned char *) &want, 8, 8 * k);
    }
    const uint64_t tail = pattern_word(seed, words);
    if (memcmp(p + 8 * words, &tail, len % 8) != 0)
        note_mismatches(&m, p + 8 * words, (const unsigned char *) &tail, len % 8, 8 * words);
    finish_check(ctx, &m, len, src, iteration);
}

void ffb_check_against(struct ffb_ctx *ctx, void *got, const void *expected, size_t len, int src, long iteration)
{
    inject_fault_if_pending(ctx, got, len);
    struct mismatch m = {0};
    if (memcmp(got, expected, len) != 0) note_mismatches(&m, got, expected, len, 0);
    finish_check(ctx, &m, len, src, iteration);
}
