/*
 * The shared-memory path's sizes and copy routine, chosen from the CPU (freeflow.h, ff_shm_tuning_choose).
 *
 * A large message is a pipeline: the sender copies fragment i+1 into the ring while the receiver copies
 * fragment i out. Both copies run at cache speed only while the ring's bytes are still in a cache when
 * the other side touches them; the sender's source and the receiver's destination stream through the
 * same caches. Small messages walk the ring too, a fresh cache line every few messages: once the ring
 * no longer stays in the L2 next to everything else, each such line comes from L3 or memory on the
 * critical path (8 B latency 0.57-0.61 us with a 512 KiB ring against 0.48 with 128 KiB, 1 MiB L2, AMD
 * EPYC; vader 0.46). So the ring is an eighth of the L2, and a fragment small enough for several to be
 * in flight yet large enough to amortise ob1's per-fragment work (~0.3 us). The measurements behind the
 * rules are in docs/btl.md ("Large messages").
 */
#include "freeflow.h"

#include <stdio.h>

#define DEFAULT_L2 (512u * 1024u) /* when the machine reports none: the smallest L2 of current x86-64 */

static uint32_t floor_power_of_two(uint32_t v)
{
    uint32_t p = 1;
    while (p <= v / 2) {
        p <<= 1;
    }
    return p;
}

static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static ff_copy_kind_t choose_copy(const ff_cpu_info_t *cpu)
{
    /* A ring's lines were last read by the consumer's core. Vector stores must first fetch each line
     * back for ownership (one cross-core transfer per 64 bytes, 88-250 ns on this VM), while rep movsb
     * with ERMS writes whole lines without reading them: measured on an AMD EPYC (Zen 5, FSRM), 2 ranks
     * under ob1, 17-20 GB/s with rep movsb against 4-9 GB/s with 256-byte SSE blocks or an AVX-512 loop.
     * rep movsb is at full speed only when source and destination share their phase within a cache
     * line, which the BTL arranges (data is placed in the ring in the source's phase). */
    if (cpu->erms) {
        return FF_COPY_MOVSB;
    }
    if (cpu->avx2) {
        return FF_COPY_AVX2;
    }
    return FF_COPY_BLOCKS;
}

ff_status_t ff_shm_tuning_choose(const ff_cpu_info_t *cpu, ff_shm_tuning_t *tuning, char *error, size_t error_len)
{
    if (!cpu || !tuning) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    const uint32_t l2 = cpu->l2_bytes ? cpu->l2_bytes : DEFAULT_L2;
    if (!tuning->ring_size) {
        tuning->ring_size = clamp(floor_power_of_two(l2 / 8), FF_RING_SIZE_MIN, 4u << 20);
    }
    if (!tuning->fragment_size) {
        const uint32_t quarter = tuning->ring_size / 4;
        tuning->fragment_size = clamp(floor_power_of_two(l2 / 32), 16u * 1024u, 64u * 1024u);
        if (tuning->fragment_size > quarter) {
            tuning->fragment_size = quarter;
        }
    }
    if (FF_COPY_AUTO == tuning->copy) {
        tuning->copy = choose_copy(cpu);
    }
    tuning->why = cpu->l2_bytes
                      ? "ring L2/8 (64 KiB-4 MiB), fragment L2/32 (16-64 KiB, at most a quarter of the ring), copy "
                        "movsb with erms, else avx2, else blocks"
                      : "no L2 size reported: sized for a 512 KiB L2; copy movsb with erms, else avx2, else blocks";
    const uint32_t r = tuning->ring_size;
    if (r < FF_RING_SIZE_MIN || r > FF_RING_SIZE_MAX || (r & (r - 1))) {
        snprintf(error, error_len, "ring size %u is not a power of two from %u to %u; set e.g. 524288", r,
                 FF_RING_SIZE_MIN, FF_RING_SIZE_MAX);
        return FF_ERR_INVALID_ARGUMENT;
    }
    if (tuning->fragment_size < FF_FRAGMENT_MIN || tuning->fragment_size > r / 4) {
        snprintf(error, error_len, "fragment size %u must be from %u to a quarter of the ring (%u); set e.g. %u",
                 tuning->fragment_size, FF_FRAGMENT_MIN, r / 4, r / 8);
        return FF_ERR_INVALID_ARGUMENT;
    }
    if ((unsigned) tuning->copy >= FF_COPY_KIND_COUNT || !ff_copy_routine(tuning->copy, cpu)) {
        snprintf(error, error_len,
                 "copy routine '%s' cannot run on this CPU (features: avx2 %d, avx512f %d); "
                 "choose libc, blocks or movsb",
                 ff_copy_kind_name(tuning->copy), cpu->avx2, cpu->avx512f);
        return FF_ERR_INVALID_ARGUMENT;
    }
    return FF_OK;
}
