/* The machine's shared-memory choices (tuning.c), the CPU reader (cpu.c) and every copy routine (copy.c). */
#include "check.h"
#include "freeflow.h"

#include <stdint.h>

static ff_cpu_info_t cpu_with(uint32_t l2, bool erms, bool avx2, bool avx512f)
{
    ff_cpu_info_t cpu = {.line_bytes = 64,
                         .l2_bytes = l2,
                         .cache_source = "test",
                         .sse2 = true,
                         .erms = erms,
                         .avx2 = avx2,
                         .avx512f = avx512f};
    return cpu;
}

static void test_sizes_follow_the_l2(void)
{
    char error[256];
    struct {
        uint32_t l2, ring, fragment;
    } cases[] = {
        {256u << 10, 64u << 10, 16u << 10},   /* small L2: the ring and fragment floors */
        {1u << 20, 128u << 10, 32u << 10},    /* AMD Zen 4/5 */
        {2u << 20, 256u << 10, 64u << 10},    /* Intel Sapphire Rapids */
        {1280u << 10, 128u << 10, 32u << 10}, /* not a power of two: rounded down */
        {64u << 20, 4u << 20, 64u << 10},     /* capped */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        ff_cpu_info_t cpu = cpu_with(cases[i].l2, true, true, false);
        ff_shm_tuning_t t = {0};
        CHECK_STATUS(ff_shm_tuning_choose(&cpu, &t, error, sizeof(error)), FF_OK);
        CHECK(t.ring_size == cases[i].ring);
        CHECK(t.fragment_size == cases[i].fragment);
        CHECK(t.fragment_size <= t.ring_size / 4);
        CHECK(t.why && *t.why);
    }
    /* nothing reported: sized for a 512 KiB L2 */
    ff_cpu_info_t unknown = cpu_with(0, false, false, false);
    ff_shm_tuning_t t = {0};
    CHECK_STATUS(ff_shm_tuning_choose(&unknown, &t, error, sizeof(error)), FF_OK);
    CHECK(t.ring_size == 64u << 10 && t.fragment_size == 16u << 10);
    CHECK(t.copy == FF_COPY_BLOCKS);
}

static void test_copy_follows_the_features(void)
{
    char error[256];
    ff_cpu_info_t erms = cpu_with(1u << 20, true, true, true), avx2 = cpu_with(1u << 20, false, true, false),
                  plain = cpu_with(1u << 20, false, false, false);
    ff_shm_tuning_t a = {0}, b = {0}, c = {0};
    CHECK_STATUS(ff_shm_tuning_choose(&erms, &a, error, sizeof(error)), FF_OK);
    CHECK_STATUS(ff_shm_tuning_choose(&avx2, &b, error, sizeof(error)), FF_OK);
    CHECK_STATUS(ff_shm_tuning_choose(&plain, &c, error, sizeof(error)), FF_OK);
    CHECK(a.copy == FF_COPY_MOVSB);
    CHECK(b.copy == FF_COPY_AVX2);
    CHECK(c.copy == FF_COPY_BLOCKS);
}

static void test_overrides_are_kept_or_refused(void)
{
    char error[256];
    ff_cpu_info_t cpu = cpu_with(1u << 20, true, true, false);
    ff_shm_tuning_t t = {.ring_size = 2u << 20, .fragment_size = 128u << 10, .copy = FF_COPY_LIBC};
    CHECK_STATUS(ff_shm_tuning_choose(&cpu, &t, error, sizeof(error)), FF_OK);
    CHECK(t.ring_size == 2u << 20 && t.fragment_size == 128u << 10 && t.copy == FF_COPY_LIBC);

    /* a given ring size caps the automatic fragment at a quarter of it */
    ff_shm_tuning_t small = {.ring_size = 64u << 10};
    CHECK_STATUS(ff_shm_tuning_choose(&cpu, &small, error, sizeof(error)), FF_OK);
    CHECK(small.fragment_size == 16u << 10);

    ff_shm_tuning_t bad_ring = {.ring_size = 100000};
    CHECK_STATUS(ff_shm_tuning_choose(&cpu, &bad_ring, error, sizeof(error)), FF_ERR_INVALID_ARGUMENT);
    CHECK(strstr(error, "power of two") != NULL);

    ff_shm_tuning_t bad_fragment = {.ring_size = 256u << 10, .fragment_size = 128u << 10};
    CHECK_STATUS(ff_shm_tuning_choose(&cpu, &bad_fragment, error, sizeof(error)), FF_ERR_INVALID_ARGUMENT);
    CHECK(strstr(error, "quarter") != NULL);

    /* a routine the CPU cannot run is refused, never run */
    ff_shm_tuning_t no_avx512 = {.copy = FF_COPY_AVX512};
    CHECK_STATUS(ff_shm_tuning_choose(&cpu, &no_avx512, error, sizeof(error)), FF_ERR_INVALID_ARGUMENT);
    CHECK(strstr(error, "avx512") != NULL);
    CHECK(ff_copy_routine(FF_COPY_AVX512, &cpu) == NULL);
    CHECK_STATUS(ff_copy_use(FF_COPY_AVX512, &cpu), FF_ERR_INVALID_ARGUMENT);
}

static void test_names_round_trip(void)
{
    CHECK_NAMES_ROUND_TRIP(ff_copy_kind_t, FF_COPY_KIND_COUNT, ff_copy_kind_name, ff_copy_kind_parse, "fast");
}

/* Every routine this CPU runs copies exactly `len` bytes for every length and relative alignment the
 * ring sees (tails, heads before the non-temporal part), and touches nothing around them. */
static void test_every_routine_copies_exactly(const ff_cpu_info_t *cpu)
{
    enum { MAX = 5000, GUARD = 64 };
    static uint8_t src[MAX + 128], dst[MAX + 128 + 2 * GUARD];
    for (size_t i = 0; i < sizeof(src); ++i) {
        src[i] = (uint8_t) (i * 131u + 7u);
    }
    const size_t lengths[] = {0, 1, 7, 31, 32, 63, 64, 127, 128, 129, 255, 256, 257, 1000, 4096, 4097, MAX};
    unsigned routines = 0;
    for (unsigned k = FF_COPY_LIBC; k < FF_COPY_KIND_COUNT; ++k) {
        ff_copy_fn_t copy = ff_copy_routine((ff_copy_kind_t) k, cpu);
        if (!copy) {
            continue;
        }
        ++routines;
        for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); ++l) {
            for (unsigned s = 0; s < 64; s += 13) {
                for (unsigned d = 0; d < 64; d += 11) {
                    memset(dst, 0xee, sizeof(dst));
                    copy(dst + GUARD + d, src + s, lengths[l]);
                    bool ok = memcmp(dst + GUARD + d, src + s, lengths[l]) == 0;
                    for (size_t g = 0; g < GUARD + d; ++g) {
                        ok = ok && dst[g] == 0xee;
                    }
                    for (size_t g = GUARD + d + lengths[l]; g < sizeof(dst); ++g) {
                        ok = ok && dst[g] == 0xee;
                    }
                    if (!ok) {
                        fprintf(stderr, "copy %s: length %zu, source +%u, destination +%u wrong\n",
                                ff_copy_kind_name((ff_copy_kind_t) k), lengths[l], s, d);
                    }
                    CHECK(ok);
                }
            }
        }
    }
    CHECK(routines >= 3); /* libc, blocks and movsb run on every x86-64 */
    /* ff_copy uses the chosen routine */
    CHECK_STATUS(ff_copy_use(FF_COPY_MOVSB, cpu), FF_OK);
    memset(dst, 0, sizeof(dst));
    ff_copy(dst, src, 300);
    CHECK(memcmp(dst, src, 300) == 0);
    CHECK_STATUS(ff_copy_use(FF_COPY_AUTO, cpu), FF_ERR_INVALID_ARGUMENT);
}

static void test_this_cpu(ff_cpu_info_t *cpu)
{
    ff_cpu_info_read(cpu);
    CHECK(cpu->line_bytes >= 32 && cpu->line_bytes <= 256);
    CHECK(cpu->cache_source != NULL);
#if defined(__x86_64__)
    CHECK(cpu->sse2); /* architectural on x86-64 */
    CHECK(cpu->vendor[0] != '\0');
#endif
    CHECK(cpu->l3_bytes == 0 || cpu->l3_bytes >= cpu->l2_bytes);
    char flags[160];
    CHECK(ff_cpu_flags_string(cpu, flags, sizeof(flags)) > 0);
    ff_shm_tuning_t t = {0};
    char error[256];
    CHECK_STATUS(ff_shm_tuning_choose(cpu, &t, error, sizeof(error)), FF_OK);
    CHECK(ff_copy_routine(t.copy, cpu) != NULL);
    printf("this CPU: %s (%s), %s, L1d %u L2 %u L3 %u from %s: ring %u, fragment %u, copy %s\n", cpu->model,
           cpu->vendor, flags, cpu->l1d_bytes, cpu->l2_bytes, cpu->l3_bytes, cpu->cache_source, t.ring_size,
           t.fragment_size, ff_copy_kind_name(t.copy));
}

int main(void)
{
    ff_cpu_info_t cpu;
    test_sizes_follow_the_l2();
    test_copy_follows_the_features();
    test_overrides_are_kept_or_refused();
    test_names_round_trip();
    test_this_cpu(&cpu);
    test_every_routine_copies_exactly(&cpu);
    return check_exit_code("test_tuning");
}
