/* Private to the core: 16-byte identifiers (job keys, boot ids) as 32 hex digits. */
#ifndef FREEFLOW_HEX_H
#define FREEFLOW_HEX_H

#include <stdbool.h>
#include <stdint.h>

/* Reads exactly 32 hex digits into `out`. With `skip_dashes`, dashes between them are ignored (the
 * kernel's boot id is a UUID); anything else after the digits but a newline is an error. */
bool ff_hex16_parse(const char *text, bool skip_dashes, uint8_t out[16]);
/* Writes 32 lower-case hex digits and a NUL. */
void ff_hex16_format(const uint8_t in[16], char out[33]);

#endif
