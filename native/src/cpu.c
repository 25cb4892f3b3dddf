/*
 * The running CPU: vendor, model, the features the copy routines need, and cache sizes.
 *
 * Cache sizes come from the kernel's sysfs when it has them, else from cpuid's deterministic cache
 * leaves, else from sysconf. Virtual machines are why there are three: the AMD EPYC VM this project is
 * developed on has no /sys/devices/system/cpu/cpu0/cache, and glibc's sysconf reports its L3 as 508 MiB
 * (a hypervisor's cpuid leaf with an implausible geometry); an L3 above 1 GiB or below the L2 is taken
 * as unknown.
 */
#define _GNU_SOURCE
#include "freeflow.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define FF_HAVE_CPUID 1
#endif

#define MAX_PLAUSIBLE_CACHE (1u << 30)

#ifdef FF_HAVE_CPUID
static bool cpuid_leaf(unsigned leaf, unsigned sub, unsigned regs[4])
{
    if (__get_cpuid_max(leaf & 0x80000000u, NULL) < leaf) {
        memset(regs, 0, 4 * sizeof(unsigned));
        return false;
    }
    __cpuid_count(leaf, sub, regs[0], regs[1], regs[2], regs[3]);
    return true;
}

/* Intel leaf 4 and AMD leaf 0x8000001D share one format: type, level, ways, partitions, line, sets. */
static void caches_from_cpuid(ff_cpu_info_t *cpu, unsigned leaf)
{
    for (unsigned sub = 0; sub < 16; ++sub) {
        unsigned r[4];
        if (!cpuid_leaf(leaf, sub, r)) {
            return;
        }
        const unsigned type = r[0] & 0x1fu;
        if (type == 0) {
            return;
        }
        const unsigned level = (r[0] >> 5) & 0x7u;
        const uint64_t bytes = (uint64_t) (((r[1] >> 22) & 0x3ffu) + 1) * (((r[1] >> 12) & 0x3ffu) + 1) *
                               ((r[1] & 0xfffu) + 1) * ((uint64_t) r[2] + 1);
        const uint32_t clamped = bytes > MAX_PLAUSIBLE_CACHE ? 0 : (uint32_t) bytes;
        if (level == 1 && (type == 1 || type == 3)) {
            cpu->l1d_bytes = clamped;
            cpu->line_bytes = (r[1] & 0xfffu) + 1;
        } else if (level == 2 && type != 2) {
            cpu->l2_bytes = clamped;
        } else if (level == 3 && type != 2) {
            cpu->l3_bytes = clamped;
        }
    }
}
#endif

/* "48K", "1024K", "32M" as sysfs writes them; 0 when unreadable. */
static uint32_t read_sysfs_size(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return 0;
    }
    char text[32];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    text[n] = '\0';
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end == 'K') {
        v <<= 10;
    } else if (*end == 'M') {
        v <<= 20;
    } else if (*end == 'G') {
        v <<= 30;
    }
    return v > MAX_PLAUSIBLE_CACHE ? 0 : (uint32_t) v;
}

static bool read_sysfs_word(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return true;
}

static bool caches_from_sysfs(ff_cpu_info_t *cpu)
{
    bool any = false;
    for (unsigned index = 0; index < 8; ++index) {
        char path[96], word[32];
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%u/level", index);
        if (!read_sysfs_word(path, word, sizeof(word))) {
            break;
        }
        const unsigned level = (unsigned) atoi(word);
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%u/type", index);
        if (!read_sysfs_word(path, word, sizeof(word)) || !strcmp(word, "Instruction")) {
            continue;
        }
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%u/size", index);
        const uint32_t bytes = read_sysfs_size(path);
        if (!bytes) {
            continue;
        }
        any = true;
        if (level == 1) {
            cpu->l1d_bytes = bytes;
        } else if (level == 2) {
            cpu->l2_bytes = bytes;
        } else if (level == 3) {
            cpu->l3_bytes = bytes;
        }
    }
    return any;
}

static uint32_t sysconf_bytes(int name)
{
    long v = sysconf(name);
    return v > 0 && (unsigned long) v <= MAX_PLAUSIBLE_CACHE ? (uint32_t) v : 0;
}

void ff_cpu_info_read(ff_cpu_info_t *cpu)
{
    memset(cpu, 0, sizeof(*cpu));
    cpu->line_bytes = 64;
    cpu->cache_source = "none";
#ifdef FF_HAVE_CPUID
    unsigned r[4];
    if (cpuid_leaf(0, 0, r)) {
        memcpy(cpu->vendor, &r[1], 4);
        memcpy(cpu->vendor + 4, &r[3], 4);
        memcpy(cpu->vendor + 8, &r[2], 4);
    }
    if (cpuid_leaf(1, 0, r)) {
        const unsigned base_family = (r[0] >> 8) & 0xfu;
        cpu->family = base_family + (base_family == 0xfu ? (r[0] >> 20) & 0xffu : 0);
        cpu->model_number =
            ((r[0] >> 4) & 0xfu) | (base_family == 0x6u || base_family == 0xfu ? ((r[0] >> 16) & 0xfu) << 4 : 0);
        cpu->stepping = r[0] & 0xfu;
        cpu->sse2 = (r[3] >> 26) & 1u;
        cpu->hypervisor = (r[2] >> 31) & 1u;
        /* AVX state must be enabled by the OS (OSXSAVE and XCR0) before the instructions may run */
        const bool osxsave = (r[2] >> 27) & 1u;
        uint64_t xcr0 = 0;
        if (osxsave) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            xcr0 = ((uint64_t) hi << 32) | lo;
        }
        const bool ymm = (xcr0 & 0x6u) == 0x6u;
        const bool zmm = (xcr0 & 0xe6u) == 0xe6u;
        if (cpuid_leaf(7, 0, r)) {
            cpu->avx2 = ymm && ((r[1] >> 5) & 1u);
            cpu->erms = (r[1] >> 9) & 1u;
            cpu->avx512f = zmm && ((r[1] >> 16) & 1u);
            cpu->avx512bw = zmm && ((r[1] >> 30) & 1u);
            cpu->fsrm = (r[3] >> 4) & 1u;
        }
    }
    if (cpuid_leaf(0x80000004u, 0, r)) {
        char brand[49];
        for (unsigned i = 0; i < 3; ++i) {
            cpuid_leaf(0x80000002u + i, 0, r);
            memcpy(brand + 16 * i, r, 16);
        }
        brand[48] = '\0';
        const char *start = brand;
        while (*start == ' ') {
            ++start;
        }
        snprintf(cpu->model, sizeof(cpu->model), "%s", start);
        size_t n = strlen(cpu->model);
        while (n && cpu->model[n - 1] == ' ') {
            cpu->model[--n] = '\0';
        }
    }
#endif
    if (caches_from_sysfs(cpu)) {
        cpu->cache_source = "sysfs";
    }
#ifdef FF_HAVE_CPUID
    else {
        const bool amd = !strcmp(cpu->vendor, "AuthenticAMD") || !strcmp(cpu->vendor, "HygonGenuine");
        unsigned ext[4];
        /* AMD: leaf 0x8000001D exists with TOPOEXT (cpuid 0x80000001 ecx bit 22) */
        if (amd && cpuid_leaf(0x80000001u, 0, ext) && ((ext[2] >> 22) & 1u)) {
            caches_from_cpuid(cpu, 0x8000001Du);
        } else if (!amd) {
            caches_from_cpuid(cpu, 4);
        }
        if (cpu->l2_bytes) {
            cpu->cache_source = "cpuid";
        }
    }
#endif
    if (!cpu->l2_bytes) {
#ifdef _SC_LEVEL2_CACHE_SIZE
        cpu->l1d_bytes = sysconf_bytes(_SC_LEVEL1_DCACHE_SIZE);
        cpu->l2_bytes = sysconf_bytes(_SC_LEVEL2_CACHE_SIZE);
        cpu->l3_bytes = sysconf_bytes(_SC_LEVEL3_CACHE_SIZE);
#endif
        if (cpu->l2_bytes) {
            cpu->cache_source = "sysconf";
        }
    }
    if (cpu->l3_bytes && cpu->l3_bytes < cpu->l2_bytes) {
        cpu->l3_bytes = 0;
    }
}

int ff_cpu_flags_string(const ff_cpu_info_t *cpu, char *buf, size_t len)
{
    return snprintf(buf, len, "%s%s%s%s%s%s%s", cpu->sse2 ? "sse2 " : "", cpu->avx2 ? "avx2 " : "",
                    cpu->avx512f ? "avx512f " : "", cpu->avx512bw ? "avx512bw " : "", cpu->erms ? "erms " : "",
                    cpu->fsrm ? "fsrm " : "", cpu->hypervisor ? "hypervisor" : "");
}
