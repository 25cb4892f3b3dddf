/* sched_getaffinity and the CPU_* macros are GNU extensions. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "probe_internal.h"

/* The affinity mask may cover more CPUs than a cpu_set_t holds: grow until the kernel accepts it. */
static ff_probe_status_t count_usable_cpus(unsigned *usable, char *detail, size_t detail_len)
{
    for (int capacity = CPU_SETSIZE; capacity <= (1 << 22); capacity *= 2) {
        cpu_set_t *set = CPU_ALLOC(capacity);
        if (set == NULL) {
            return ff_probe_fail(FF_PROBE_ERR_NO_MEMORY, detail, detail_len, "CPU_ALLOC(%d) failed", capacity);
        }
        size_t size = CPU_ALLOC_SIZE(capacity);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) {
            *usable = (unsigned) CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return FF_PROBE_OK;
        }
        int error = errno;
        CPU_FREE(set);
        if (error != EINVAL) {
            return ff_probe_fail(FF_PROBE_ERR_SYSTEM, detail, detail_len, "sched_getaffinity failed: %s",
                                 strerror(error));
        }
    }
    return ff_probe_fail(FF_PROBE_ERR_SYSTEM, detail, detail_len,
                         "sched_getaffinity refused every mask size up to 4M CPUs");
}

ff_probe_status_t ff_probe_read_cpus(ff_probe_cpus_t *out, char *detail, size_t detail_len)
{
    long configured = sysconf(_SC_NPROCESSORS_CONF);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (configured < 1 || online < 1) {
        return ff_probe_fail(FF_PROBE_ERR_SYSTEM, detail, detail_len,
                             "sysconf reported %ld configured and %ld online CPUs", configured, online);
    }
    out->configured = (unsigned) configured;
    out->online = (unsigned) online;
    return count_usable_cpus(&out->usable, detail, detail_len);
}
