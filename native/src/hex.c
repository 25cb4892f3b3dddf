#include "hex.h"

#include <stddef.h>

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool ff_hex16_parse(const char *text, bool skip_dashes, uint8_t out[16])
{
    unsigned nibbles = 0;
    for (const char *c = text; *c; ++c) {
        if (skip_dashes && *c == '-') {
            continue;
        }
        if (*c == '\n' && c[1] == '\0') {
            break;
        }
        const int value = hex_digit(*c);
        if (value < 0 || nibbles == 32) {
            return false;
        }
        out[nibbles / 2] = (uint8_t) (nibbles % 2 ? out[nibbles / 2] | value : value << 4);
        ++nibbles;
    }
    return nibbles == 32;
}

void ff_hex16_format(const uint8_t in[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 16; ++i) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[32] = '\0';
}
