/* SHA-256 (FIPS 180-2) and HMAC-SHA256 (RFC 2104), plain C11. Used by ffagent to authenticate agents
 * to each other with the job key without sending it over the network. Not optimised: it hashes a few
 * hundred bytes per connection. */
#include "freeflow.h"

#include <string.h>

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void compress(ff_sha256_t *ctx, const uint8_t block[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
        w[i] = (uint32_t) block[4 * i] << 24 | (uint32_t) block[4 * i + 1] << 16 | (uint32_t) block[4 * i + 2] << 8 |
               (uint32_t) block[4 * i + 3];
    }
    for (int i = 16; i < 64; ++i) {
        const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = ctx->state[0], b = ctx->state[1], c = ctx->state[2], d = ctx->state[3];
    uint32_t e = ctx->state[4], f = ctx->state[5], g = ctx->state[6], h = ctx->state[7];
    for (int i = 0; i < 64; ++i) {
        const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    ctx->state[0] += a;
    ctx->state[1] += b;
    ctx->state[2] += c;
    ctx->state[3] += d;
    ctx->state[4] += e;
    ctx->state[5] += f;
    ctx->state[6] += g;
    ctx->state[7] += h;
}

void ff_sha256_init(ff_sha256_t *ctx)
{
    static const uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(ctx->state, init, sizeof(init));
    ctx->bytes = 0;
}

void ff_sha256_update(ff_sha256_t *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t used = (size_t) (ctx->bytes & 63);
    ctx->bytes += len;
    if (used) {
        const size_t take = len < 64 - used ? len : 64 - used;
        memcpy(ctx->block + used, p, take);
        p += take;
        len -= take;
        if (used + take < 64) {
            return;
        }
        compress(ctx, ctx->block);
    }
    while (len >= 64) {
        compress(ctx, p);
        p += 64;
        len -= 64;
    }
    memcpy(ctx->block, p, len);
}

void ff_sha256_final(ff_sha256_t *ctx, uint8_t digest[FF_SHA256_SIZE])
{
    const uint64_t bits = ctx->bytes * 8;
    static const uint8_t pad[64] = {0x80};
    const size_t used = (size_t) (ctx->bytes & 63);
    ff_sha256_update(ctx, pad, used < 56 ? 56 - used : 120 - used);
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) {
        length[i] = (uint8_t) (bits >> (56 - 8 * i));
    }
    ff_sha256_update(ctx, length, 8);
    for (int i = 0; i < 8; ++i) {
        digest[4 * i] = (uint8_t) (ctx->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t) (ctx->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t) (ctx->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t) ctx->state[i];
    }
}

void ff_sha256(const void *data, size_t len, uint8_t digest[FF_SHA256_SIZE])
{
    ff_sha256_t ctx;
    ff_sha256_init(&ctx);
    ff_sha256_update(&ctx, data, len);
    ff_sha256_final(&ctx, digest);
}

void ff_hmac_sha256_init(ff_hmac_sha256_t *ctx, const void *key, size_t key_len)
{
    uint8_t block[64] = {0};
    if (key_len > 64) {
        ff_sha256(key, key_len, block);
    } else if (key_len) {
        memcpy(block, key, key_len);
    }
    uint8_t ipad[64];
    for (int i = 0; i < 64; ++i) {
        ipad[i] = block[i] ^ 0x36;
        ctx->opad[i] = block[i] ^ 0x5c;
    }
    ff_sha256_init(&ctx->inner);
    ff_sha256_update(&ctx->inner, ipad, 64);
    memset(block, 0, sizeof(block));
    memset(ipad, 0, sizeof(ipad));
}

void ff_hmac_sha256_update(ff_hmac_sha256_t *ctx, const void *data, size_t len)
{
    ff_sha256_update(&ctx->inner, data, len);
}

void ff_hmac_sha256_final(ff_hmac_sha256_t *ctx, uint8_t mac[FF_SHA256_SIZE])
{
    uint8_t inner[FF_SHA256_SIZE];
    ff_sha256_final(&ctx->inner, inner);
    ff_sha256_t outer;
    ff_sha256_init(&outer);
    ff_sha256_update(&outer, ctx->opad, 64);
    ff_sha256_update(&outer, inner, sizeof(inner));
    ff_sha256_final(&outer, mac);
    memset(ctx, 0, sizeof(*ctx));
}

void ff_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, uint8_t mac[FF_SHA256_SIZE])
{
    ff_hmac_sha256_t ctx;
    ff_hmac_sha256_init(&ctx, key, key_len);
    ff_hmac_sha256_update(&ctx, data, len);
    ff_hmac_sha256_final(&ctx, mac);
}

bool ff_ct_equal(const void *a, const void *b, size_t len)
{
    /* volatile: the compiler may not turn the loop into an early-exit memcmp */
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < len; ++i) {
        diff |= (uint8_t) (x[i] ^ y[i]);
    }
    return diff == 0;
}
