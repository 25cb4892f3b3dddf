#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "probe_internal.h"

static const char *node_type_name(enum ibv_node_type type)
{
    switch (type) {
    case IBV_NODE_CA: return "ca";
    case IBV_NODE_SWITCH: return "switch";
    case IBV_NODE_ROUTER: return "router";
    case IBV_NODE_RNIC: return "rnic";
    case IBV_NODE_USNIC: return "usnic";
    case IBV_NODE_USNIC_UDP: return "usnic-udp";
    case IBV_NODE_UNSPECIFIED: return "unspecified";
    case IBV_NODE_UNKNOWN: break;
    }
    return "unknown";
}

static const char *transport_name(enum ibv_transport_type type)
{
    switch (type) {
    case IBV_TRANSPORT_IB: return "infiniband";
    case IBV_TRANSPORT_IWARP: return "iwarp";
    case IBV_TRANSPORT_USNIC: return "usnic";
    case IBV_TRANSPORT_USNIC_UDP: return "usnic-udp";
    case IBV_TRANSPORT_UNSPECIFIED: return "unspecified";
    case IBV_TRANSPORT_UNKNOWN: break;
    }
    return "unknown";
}

static const char *port_state_name(enum ibv_port_state state)
{
    switch (state) {
    case IBV_PORT_NOP: return "nop";
    case IBV_PORT_DOWN: return "down";
    case IBV_PORT_INIT: return "init";
    case IBV_PORT_ARMED: return "armed";
    case IBV_PORT_ACTIVE: return "active";
    case IBV_PORT_ACTIVE_DEFER: return "active-defer";
    }
    return "unknown";
}

static const char *link_layer_name(uint8_t link_layer)
{
    switch (link_layer) {
    case IBV_LINK_LAYER_INFINIBAND: return "infiniband";
    case IBV_LINK_LAYER_ETHERNET: return "ethernet";
    }
    return "unspecified";
}

/* ibv_get_device_guid returns the GUID in network byte order; print it as ibv_devinfo does. */
static void format_guid(__be64 guid_network_order, char *out, size_t out_size)
{
    uint8_t bytes[8];
    memcpy(bytes, &guid_network_order, sizeof(bytes));
    snprintf(out, out_size, "%02x%02x:%02x%02x:%02x%02x:%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4],
             bytes[5], bytes[6], bytes[7]);
}

/* A device that cannot be opened is listed without ports: it offers no usable (active) port. */
static ff_probe_status_t read_ports(struct ibv_device *device, ff_probe_rdma_device_t *out, char *detail,
                                    size_t detail_len)
{
    struct ibv_context *context = ibv_open_device(device);
    if (context == NULL) return FF_PROBE_OK;
    struct ibv_device_attr attr;
    ff_probe_status_t status = FF_PROBE_OK;
    if (ibv_query_device(context, &attr) == 0 && attr.phys_port_cnt > 0) {
        out->ports = calloc(attr.phys_port_cnt, sizeof(*out->ports));
        if (out->ports == NULL) {
            status = ff_probe_fail(FF_PROBE_ERR_NO_MEMORY, detail, detail_len, "no memory for %u ports of %s",
                                   attr.phys_port_cnt, out->name);
        } else {
            out->port_count = attr.phys_port_cnt;
        }
    }
    for (size_t i = 0; i < out->port_count; i++) {
        ff_probe_rdma_port_t *port = &out->ports[i];
        struct ibv_port_attr port_attr;
        port->number = (unsigned) (i + 1);
        if (ibv_query_port(context, (uint8_t) port->number, &port_attr) == 0) {
            ff_probe_copy_name(port->state, sizeof(port->state), port_state_name(port_attr.state));
            ff_probe_copy_name(port->link_layer, sizeof(port->link_layer), link_layer_name(port_attr.link_layer));
        } else {
            ff_probe_copy_name(port->state, sizeof(port->state), "unknown");
            ff_probe_copy_name(port->link_layer, sizeof(port->link_layer), "unspecified");
        }
    }
    ibv_close_device(context);
    return status;
}

ff_probe_status_t ff_probe_read_rdma(ff_probe_result_t *result, char *detail, size_t detail_len)
{
    int device_count = 0;
    struct ibv_device **devices = ibv_get_device_list(&device_count);
    if (devices == NULL) {
        /* ENOSYS: the kernel has no RDMA support, so the host has no RDMA device. */
        if (errno == ENOSYS) return FF_PROBE_OK;
        return ff_probe_fail(FF_PROBE_ERR_VERBS, detail, detail_len, "ibv_get_device_list failed: %s", strerror(errno));
    }
    ff_probe_status_t status = FF_PROBE_OK;
    if (device_count > 0) {
        result->rdma_devices = calloc((size_t) device_count, sizeof(*result->rdma_devices));
        if (result->rdma_devices == NULL) {
            status = ff_probe_fail(FF_PROBE_ERR_NO_MEMORY, detail, detail_len, "no memory for %d RDMA devices",
                                   device_count);
        }
    }
    for (int i = 0; i < device_count && status == FF_PROBE_OK; i++) {
        ff_probe_rdma_device_t *out = &result->rdma_devices[i];
        result->rdma_device_count = (size_t) i + 1;
        ff_probe_copy_name(out->name, sizeof(out->name), ibv_get_device_name(devices[i]));
        format_guid(ibv_get_device_guid(devices[i]), out->node_guid, sizeof(out->node_guid));
        ff_probe_copy_name(out->node_type, sizeof(out->node_type), node_type_name(devices[i]->node_type));
        ff_probe_copy_name(out->transport, sizeof(out->transport), transport_name(devices[i]->transport_type));
        status = read_ports(devices[i], out, detail, detail_len);
    }
    ibv_free_device_list(devices);
    if (status != FF_PROBE_OK) {
        ff_probe_free_rdma_devices(result->rdma_devices, result->rdma_device_count);
        result->rdma_devices = NULL;
        result->rdma_device_count = 0;
    }
    return status;
}

void ff_probe_free_rdma_devices(ff_probe_rdma_device_t *devices, size_t count)
{
    if (devices == NULL) return;
    for (size_t i = 0; i < count; i++) free(devices[i].ports);
    free(devices);
}
