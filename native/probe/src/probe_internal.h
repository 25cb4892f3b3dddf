/* Shared between the probe's parts; not installed. */
#ifndef FREEFLOW_PROBE_INTERNAL_H
#define FREEFLOW_PROBE_INTERNAL_H

#include "freeflow_probe.h"

/* Writes a printf-style message into detail (when not NULL) and returns status, so that a failing step
 * can `return ff_probe_fail(...)`. */
ff_probe_status_t ff_probe_fail(ff_probe_status_t status, char *detail, size_t detail_len, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* Copies a NUL-terminated name, truncating to fit. */
void ff_probe_copy_name(char *dst, size_t dst_size, const char *src);

ff_probe_status_t ff_probe_read_cpus(ff_probe_cpus_t *out, char *detail, size_t detail_len);
ff_probe_status_t ff_probe_read_shared_dir(const char *path, ff_probe_shared_dir_t *out, char *detail,
                                           size_t detail_len);
/* Fill result's ucx_* fields; on failure leave them empty. */
ff_probe_status_t ff_probe_read_ucx(ff_probe_result_t *result, char *detail, size_t detail_len);
/* Fill result's rdma_* fields; on failure leave them empty. */
ff_probe_status_t ff_probe_read_rdma(ff_probe_result_t *result, char *detail, size_t detail_len);
void ff_probe_free_rdma_devices(ff_probe_rdma_device_t *devices, size_t count);

#endif /* FREEFLOW_PROBE_INTERNAL_H */
