#include "freeflow.h"

#include <stdio.h>
#include <string.h>

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

ff_status_t ff_job_key_parse(const char *hex, ff_job_key_t *out)
{
    if (!hex || !out || strlen(hex) != 32) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    for (int i = 0; i < 16; ++i) {
        int hi = hex_digit(hex[2 * i]);
        int lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return FF_ERR_INVALID_ARGUMENT;
        }
        out->bytes[i] = (uint8_t) (hi << 4 | lo);
    }
    return FF_OK;
}

void ff_job_key_format(const ff_job_key_t *key, char buf[33])
{
    for (int i = 0; i < 16; ++i) {
        snprintf(buf + 2 * i, 3, "%02x", key->bytes[i]);
    }
}

/* splitmix64: a well-mixed, deterministic expansion of the seed. */
static uint64_t mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ff_job_key_derive(uint64_t seed, ff_job_key_t *out)
{
    uint64_t state = seed;
    uint64_t words[2] = {mix(&state), mix(&state)};
    memcpy(out->bytes, words, sizeof(words));
}

bool ff_job_key_equal(const ff_job_key_t *a, const ff_job_key_t *b)
{
    return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}
