/*
 * freeflow_probe.h: what a host offers freeflow, read from the running system.
 *
 * Plain C11 with no UCX, libibverbs or Node headers in this interface (the implementation uses them):
 *   - RDMA devices through libibverbs: name, node GUID, node type, transport, and every port's state and
 *     link layer. No device (or no kernel RDMA support) gives an empty list, not an error.
 *   - UCX: the library version and every transport resource UCT offers (component, memory domain,
 *     transport, device, device type), as `ucx_info -d` lists them. UCX sees the network interfaces of
 *     the calling process's network namespace (through /sys/class/net).
 *   - CPUs: configured, online, and usable by this process (its affinity mask).
 *   - The shared directory: filesystem type and sizes.
 *
 * One call fills one ff_probe_result_t; ff_probe_result_free releases it. Not thread-safe: probe from one
 * thread at a time.
 */
#ifndef FREEFLOW_PROBE_H
#define FREEFLOW_PROBE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FF_PROBE_API __attribute__((visibility("default")))

typedef enum ff_probe_status {
    FF_PROBE_OK = 0,
    FF_PROBE_ERR_INVALID_ARGUMENT,         /* NULL or relative shared directory, or a NULL result */
    FF_PROBE_ERR_SHARED_DIR_NOT_FOUND,     /* the shared directory does not exist */
    FF_PROBE_ERR_SHARED_DIR_NOT_DIRECTORY, /* the shared directory path names something else */
    FF_PROBE_ERR_SHARED_DIR_ACCESS,        /* the shared directory cannot be examined (permissions) */
    FF_PROBE_ERR_SYSTEM,                   /* a system call failed; the detail names it */
    FF_PROBE_ERR_NO_MEMORY,                /* malloc failed */
    FF_PROBE_ERR_UCX,                      /* UCX could not list its components or resources */
    FF_PROBE_ERR_VERBS,                    /* libibverbs failed on a device it listed */
    FF_PROBE_STATUS_COUNT
} ff_probe_status_t;

/* "FF_PROBE_ERR_UCX" */
FF_PROBE_API const char *ff_probe_status_name(ff_probe_status_t status);
/* A sentence that says what is wrong and how to fix it. */
FF_PROBE_API const char *ff_probe_status_describe(ff_probe_status_t status);

#define FF_PROBE_NAME_MAX 64

/* UCX's device types, named as `ucx_info -d` prints them. */
typedef enum ff_probe_ucx_device_type {
    FF_PROBE_UCX_DEVICE_NETWORK = 0,
    FF_PROBE_UCX_DEVICE_INTRA_NODE,
    FF_PROBE_UCX_DEVICE_ACCELERATOR,
    FF_PROBE_UCX_DEVICE_LOOPBACK,
    FF_PROBE_UCX_DEVICE_UNKNOWN,
} ff_probe_ucx_device_type_t;

/* "network", "intra-node", "accelerator", "loopback", "unknown" */
FF_PROBE_API const char *ff_probe_ucx_device_type_name(ff_probe_ucx_device_type_t type);

typedef struct ff_probe_ucx_transport {
    char component[FF_PROBE_NAME_MAX];     /* "tcp" */
    char memory_domain[FF_PROBE_NAME_MAX]; /* "tcp", "mlx5_0" */
    char transport[FF_PROBE_NAME_MAX];     /* "tcp", "rc_verbs", "posix" */
    char device[FF_PROBE_NAME_MAX];        /* "eth0", "mlx5_0:1", "memory" */
    ff_probe_ucx_device_type_t device_type;
} ff_probe_ucx_transport_t;

typedef struct ff_probe_rdma_port {
    unsigned number;     /* 1-based, as libibverbs numbers ports */
    char state[16];      /* "active", "down", "init", "armed", "active-defer", "nop", "unknown" */
    char link_layer[16]; /* "infiniband", "ethernet", "unspecified" */
} ff_probe_rdma_port_t;

typedef struct ff_probe_rdma_device {
    char name[FF_PROBE_NAME_MAX]; /* "mlx5_0" */
    char node_guid[20];           /* "0002:c903:0042:a6f0", as ibv_devinfo prints it */
    char node_type[16];           /* "ca", "switch", "router", "rnic", "usnic", "usnic-udp", "unknown" */
    char transport[16];           /* "infiniband", "iwarp", "usnic", "usnic-udp", "unspecified", "unknown" */
    size_t port_count;
    ff_probe_rdma_port_t *ports;
} ff_probe_rdma_device_t;

typedef struct ff_probe_cpus {
    unsigned configured; /* sysconf(_SC_NPROCESSORS_CONF) */
    unsigned online;     /* sysconf(_SC_NPROCESSORS_ONLN) */
    unsigned usable;     /* CPUs in this process's affinity mask (sched_getaffinity) */
} ff_probe_cpus_t;

typedef struct ff_probe_shared_dir {
    char fs[32];       /* kernel name of the filesystem type: "tmpfs", "ext4", "overlay", ... */
    uint64_t fs_magic; /* statfs f_type; fs is "unknown" when this table does not know it */
    uint64_t total_bytes;
    uint64_t free_bytes;      /* free for root */
    uint64_t available_bytes; /* free for unprivileged users */
} ff_probe_shared_dir_t;

typedef struct ff_probe_result {
    char ucx_version[32]; /* "1.13.1" */
    size_t ucx_transport_count;
    ff_probe_ucx_transport_t *ucx_transports;
    size_t rdma_device_count;
    ff_probe_rdma_device_t *rdma_devices;
    ff_probe_cpus_t cpus;
    ff_probe_shared_dir_t shared_dir;
} ff_probe_result_t;

/*
 * Probes this host as the calling process sees it. shared_dir must be an absolute path to an existing
 * directory. On failure *out is left empty (nothing to free) and detail (when not NULL) says which step
 * failed and why; on success release *out with ff_probe_result_free.
 */
FF_PROBE_API ff_probe_status_t ff_probe_run(const char *shared_dir, ff_probe_result_t *out, char *detail,
                                            size_t detail_len);
/* Frees what ff_probe_run allocated and empties *result; safe on an empty or already freed result. */
FF_PROBE_API void ff_probe_result_free(ff_probe_result_t *result);

#ifdef __cplusplus
}
#endif

#endif /* FREEFLOW_PROBE_H */
