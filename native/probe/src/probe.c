#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe_internal.h"

static const struct {
    const char *name;
    const char *description;
} status_table[FF_PROBE_STATUS_COUNT] = {
    [FF_PROBE_OK] = {"FF_PROBE_OK", "success"},
    [FF_PROBE_ERR_INVALID_ARGUMENT] = {"FF_PROBE_ERR_INVALID_ARGUMENT",
                                       "the shared directory must be given as an absolute path"},
    [FF_PROBE_ERR_SHARED_DIR_NOT_FOUND] = {"FF_PROBE_ERR_SHARED_DIR_NOT_FOUND",
                                           "the shared directory does not exist: create it or pass the "
                                           "host's shared directory"},
    [FF_PROBE_ERR_SHARED_DIR_NOT_DIRECTORY] = {"FF_PROBE_ERR_SHARED_DIR_NOT_DIRECTORY",
                                               "the shared directory path is not a directory: pass the "
                                               "directory itself"},
    [FF_PROBE_ERR_SHARED_DIR_ACCESS] = {"FF_PROBE_ERR_SHARED_DIR_ACCESS",
                                        "the shared directory cannot be examined: run as root or fix its "
                                        "permissions"},
    [FF_PROBE_ERR_SYSTEM] = {"FF_PROBE_ERR_SYSTEM", "a system call failed: see the detail"},
    [FF_PROBE_ERR_NO_MEMORY] = {"FF_PROBE_ERR_NO_MEMORY", "out of memory"},
    [FF_PROBE_ERR_UCX] = {"FF_PROBE_ERR_UCX",
                          "UCX could not list its transports: check the UCX installation with `ucx_info -d`"},
    [FF_PROBE_ERR_VERBS] = {"FF_PROBE_ERR_VERBS",
                            "libibverbs failed on an RDMA device it listed: check it with `ibv_devinfo`"},
};

const char *ff_probe_status_name(ff_probe_status_t status)
{
    if ((unsigned) status >= FF_PROBE_STATUS_COUNT) return "FF_PROBE_ERR_UNKNOWN_STATUS";
    return status_table[status].name;
}

const char *ff_probe_status_describe(ff_probe_status_t status)
{
    if ((unsigned) status >= FF_PROBE_STATUS_COUNT) return "unknown status code";
    return status_table[status].description;
}

const char *ff_probe_ucx_device_type_name(ff_probe_ucx_device_type_t type)
{
    switch (type) {
    case FF_PROBE_UCX_DEVICE_NETWORK: return "network";
    case FF_PROBE_UCX_DEVICE_INTRA_NODE: return "intra-node";
    case FF_PROBE_UCX_DEVICE_ACCELERATOR: return "accelerator";
    case FF_PROBE_UCX_DEVICE_LOOPBACK: return "loopback";
    case FF_PROBE_UCX_DEVICE_UNKNOWN: break;
    }
    return "unknown";
}

ff_probe_status_t ff_probe_fail(ff_probe_status_t status, char *detail, size_t detail_len, const char *format, ...)
{
    if (detail != NULL && detail_len > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(detail, detail_len, format, args);
        va_end(args);
    }
    return status;
}

void ff_probe_copy_name(char *dst, size_t dst_size, const char *src)
{
    snprintf(dst, dst_size, "%s", src);
}

ff_probe_status_t ff_probe_run(const char *shared_dir, ff_probe_result_t *out, char *detail, size_t detail_len)
{
    if (detail != NULL && detail_len > 0) detail[0] = '\0';
    if (out == NULL) {
        return ff_probe_fail(FF_PROBE_ERR_INVALID_ARGUMENT, detail, detail_len, "no result to fill (NULL)");
    }
    memset(out, 0, sizeof(*out));
    if (shared_dir == NULL || shared_dir[0] != '/') {
        return ff_probe_fail(FF_PROBE_ERR_INVALID_ARGUMENT, detail, detail_len,
                             "shared directory \"%s\" is not an absolute path",
                             shared_dir == NULL ? "(null)" : shared_dir);
    }

    /* The shared directory first: it is the only part a caller can get wrong. */
    ff_probe_status_t status = ff_probe_read_shared_dir(shared_dir, &out->shared_dir, detail, detail_len);
    if (status == FF_PROBE_OK) status = ff_probe_read_cpus(&out->cpus, detail, detail_len);
    if (status == FF_PROBE_OK) status = ff_probe_read_ucx(out, detail, detail_len);
    if (status == FF_PROBE_OK) status = ff_probe_read_rdma(out, detail, detail_len);
    if (status != FF_PROBE_OK) ff_probe_result_free(out);
    return status;
}

void ff_probe_result_free(ff_probe_result_t *result)
{
    if (result == NULL) return;
    free(result->ucx_transports);
    ff_probe_free_rdma_devices(result->rdma_devices, result->rdma_device_count);
    memset(result, 0, sizeof(*result));
}
