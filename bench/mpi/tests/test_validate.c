/* Unit test of the validation patterns: they must catch what a broken transport does (a flipped byte, a
 * stale message from another iteration, a chunk at the wrong offset, swapped words, another slot's
 * message) and accept exactly the right bytes. No MPI calls: validate.c needs only the context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/ffbench.h"

static int failures;

#define EXPECT(cond)                                                                                                   \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                                        \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

static const struct ffb_benchmark test_bench = {.name = "unit"};

static struct ffb_ctx make_ctx(size_t size)
{
    return (struct ffb_ctx){
        .rank = 1, .nranks = 2, .bench = &test_bench, .size = size, .validation = {.enabled = true}};
}

/* Bad bytes that one check of buf against the pattern of (iteration, slot) finds. */
static unsigned long long bad_bytes(struct ffb_ctx *ctx, unsigned char *buf, long iteration, int slot)
{
    const unsigned long long before = ctx->validation.bad_bytes;
    ffb_check_pattern(ctx, buf, ctx->size, ffb_message_seed(ctx, iteration, 0, 1, slot), 0, iteration);
    return ctx->validation.bad_bytes - before;
}

static void test_size(size_t size)
{
    struct ffb_ctx ctx = make_ctx(size);
    unsigned char *buf = malloc(size), *copy = malloc(size);
    ffb_fill_pattern(buf, size, ffb_message_seed(&ctx, 7, 0, 1, 3));
    memcpy(copy, buf, size);

    EXPECT(bad_bytes(&ctx, buf, 7, 3) == 0);
    EXPECT(ctx.validation.checked_bytes == size);
    /* A message from another iteration or another slot is wrong nearly everywhere. */
    EXPECT(bad_bytes(&ctx, buf, 8, 3) >= size / 2);
    EXPECT(bad_bytes(&ctx, buf, 7, 4) >= size / 2);

    buf[size - 1] ^= 1; /* one flipped bit in the last byte, the tail of odd sizes included */
    EXPECT(bad_bytes(&ctx, buf, 7, 3) == 1);
    memcpy(buf, copy, size);

    if (size >= 16) {
        memmove(buf + 8, buf, size - 8); /* data landed 8 bytes late */
        EXPECT(bad_bytes(&ctx, buf, 7, 3) >= (size - 8) / 2);
        memcpy(buf, copy, size);
        memcpy(buf, copy + 8, 8); /* two words swapped */
        memcpy(buf + 8, copy, 8);
        EXPECT(bad_bytes(&ctx, buf, 7, 3) >= 8);
        memcpy(buf, copy, size);
    }
    if (size >= 8192) {
        memcpy(buf + 4096, copy, 4096); /* a chunk repeated at a page offset */
        EXPECT(bad_bytes(&ctx, buf, 7, 3) >= 2048);
        memcpy(buf, copy, size);
    }

    /* The deliberate fault corrupts exactly one byte of exactly one message. */
    ctx.validation.fault_pending = true;
    EXPECT(bad_bytes(&ctx, buf, 7, 3) == 1);
    EXPECT(!ctx.validation.fault_pending);
    memcpy(buf, copy, size);
    EXPECT(bad_bytes(&ctx, buf, 7, 3) == 0);

    /* Comparison with an expected buffer (allreduce) counts bad bytes the same way. */
    copy[size / 3] ^= 0x80;
    const unsigned long long before = ctx.validation.bad_bytes;
    ffb_check_against(&ctx, buf, copy, size, -1, 0);
    EXPECT(ctx.validation.bad_bytes - before == 1);
    free(buf);
    free(copy);
}

static void test_seeds_differ(void)
{
    struct ffb_ctx ctx = make_ctx(64);
    const uint64_t base = ffb_message_seed(&ctx, 1, 0, 1, 0);
    EXPECT(base != ffb_message_seed(&ctx, 2, 0, 1, 0));
    EXPECT(base != ffb_message_seed(&ctx, 1, 1, 0, 0));
    EXPECT(base != ffb_message_seed(&ctx, 1, 0, 1, 1));
    ctx.size = 128;
    EXPECT(base != ffb_message_seed(&ctx, 1, 0, 1, 0));
}

int main(void)
{
    const size_t sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 64, 1000, 4096, 65536 + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) test_size(sizes[i]);
    test_seeds_differ();
    if (failures > 0) {
        fprintf(stderr, "test_validate: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_validate: all passed\n");
    return 0;
}
