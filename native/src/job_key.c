#include "freeflow.h"
#include "hex.h"

#include <string.h>

ff_status_t ff_job_key_parse(const char *hex, ff_job_key_t *out)
{
    if (!hex || !out || !ff_hex16_parse(hex, false, out->bytes) || strlen(hex) != 32) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    return FF_OK;
}

void ff_job_key_format(const ff_job_key_t *key, char buf[33])
{
    ff_hex16_format(key->bytes, buf);
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
