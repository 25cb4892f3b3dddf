#include <stdlib.h>

#include <ucp/api/ucp.h>
#include <uct/api/uct.h>

#include "probe_internal.h"

typedef struct transport_list {
    ff_probe_ucx_transport_t *items;
    size_t count;
    size_t capacity;
} transport_list_t;

static ff_probe_ucx_device_type_t device_type_of(uct_device_type_t type)
{
    switch (type) {
    case UCT_DEVICE_TYPE_NET: return FF_PROBE_UCX_DEVICE_NETWORK;
    case UCT_DEVICE_TYPE_SHM: return FF_PROBE_UCX_DEVICE_INTRA_NODE;
    case UCT_DEVICE_TYPE_ACC: return FF_PROBE_UCX_DEVICE_ACCELERATOR;
    case UCT_DEVICE_TYPE_SELF: return FF_PROBE_UCX_DEVICE_LOOPBACK;
    case UCT_DEVICE_TYPE_LAST: break;
    }
    return FF_PROBE_UCX_DEVICE_UNKNOWN;
}

static ff_probe_ucx_transport_t *append_transport(transport_list_t *list)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 16 : list->capacity * 2;
        ff_probe_ucx_transport_t *items = realloc(list->items, capacity * sizeof(*items));
        if (items == NULL) return NULL;
        list->items = items;
        list->capacity = capacity;
    }
    return &list->items[list->count++];
}

/* A memory domain that cannot be opened or listed offers no transport: UCX itself skips such domains
 * when it selects transports, so the probe reports exactly what UCX could use. */
static ff_probe_status_t add_md_transports(uct_component_h component, const char *component_name, const char *md_name,
                                           transport_list_t *list, char *detail, size_t detail_len)
{
    uct_md_config_t *config;
    if (uct_md_config_read(component, NULL, NULL, &config) != UCS_OK) return FF_PROBE_OK;
    uct_md_h md;
    ucs_status_t opened = uct_md_open(component, md_name, config, &md);
    uct_config_release(config);
    if (opened != UCS_OK) return FF_PROBE_OK;

    uct_tl_resource_desc_t *resources;
    unsigned resource_count;
    ff_probe_status_t status = FF_PROBE_OK;
    if (uct_md_query_tl_resources(md, &resources, &resource_count) == UCS_OK) {
        for (unsigned i = 0; i < resource_count && status == FF_PROBE_OK; i++) {
            ff_probe_ucx_transport_t *transport = append_transport(list);
            if (transport == NULL) {
                status = ff_probe_fail(FF_PROBE_ERR_NO_MEMORY, detail, detail_len, "no memory for UCX transport %zu",
                                       list->count + 1);
                break;
            }
            ff_probe_copy_name(transport->component, sizeof(transport->component), component_name);
            ff_probe_copy_name(transport->memory_domain, sizeof(transport->memory_domain), md_name);
            ff_probe_copy_name(transport->transport, sizeof(transport->transport), resources[i].tl_name);
            ff_probe_copy_name(transport->device, sizeof(transport->device), resources[i].dev_name);
            transport->device_type = device_type_of(resources[i].dev_type);
        }
        uct_release_tl_resource_list(resources);
    }
    uct_md_close(md);
    return status;
}

static ff_probe_status_t add_component_transports(uct_component_h component, transport_list_t *list, char *detail,
                                                  size_t detail_len)
{
    uct_component_attr_t attr = {.field_mask =
                                     UCT_COMPONENT_ATTR_FIELD_NAME | UCT_COMPONENT_ATTR_FIELD_MD_RESOURCE_COUNT};
    ucs_status_t ucs = uct_component_query(component, &attr);
    if (ucs != UCS_OK) {
        return ff_probe_fail(FF_PROBE_ERR_UCX, detail, detail_len, "uct_component_query failed: %s",
                             ucs_status_string(ucs));
    }
    if (attr.md_resource_count == 0) return FF_PROBE_OK;

    uct_md_resource_desc_t *mds = calloc(attr.md_resource_count, sizeof(*mds));
    if (mds == NULL) {
        return ff_probe_fail(FF_PROBE_ERR_NO_MEMORY, detail, detail_len, "no memory for %u UCX memory domains",
                             attr.md_resource_count);
    }
    attr.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCES;
    attr.md_resources = mds;
    ucs = uct_component_query(component, &attr);
    ff_probe_status_t status = FF_PROBE_OK;
    if (ucs != UCS_OK) {
        status = ff_probe_fail(FF_PROBE_ERR_UCX, detail, detail_len,
                               "uct_component_query(%s, memory domains) failed: %s", attr.name, ucs_status_string(ucs));
    }
    for (unsigned i = 0; i < attr.md_resource_count && status == FF_PROBE_OK; i++) {
        status = add_md_transports(component, attr.name, mds[i].md_name, list, detail, detail_len);
    }
    free(mds);
    return status;
}

ff_probe_status_t ff_probe_read_ucx(ff_probe_result_t *result, char *detail, size_t detail_len)
{
    ff_probe_copy_name(result->ucx_version, sizeof(result->ucx_version), ucp_get_version_string());

    uct_component_h *components;
    unsigned component_count;
    ucs_status_t ucs = uct_query_components(&components, &component_count);
    if (ucs != UCS_OK) {
        return ff_probe_fail(FF_PROBE_ERR_UCX, detail, detail_len, "uct_query_components failed: %s",
                             ucs_status_string(ucs));
    }
    transport_list_t list = {0};
    ff_probe_status_t status = FF_PROBE_OK;
    for (unsigned i = 0; i < component_count && status == FF_PROBE_OK; i++) {
        status = add_component_transports(components[i], &list, detail, detail_len);
    }
    uct_release_component_list(components);
    if (status != FF_PROBE_OK) {
        free(list.items);
        return status;
    }
    result->ucx_transports = list.items;
    result->ucx_transport_count = list.count;
    return FF_PROBE_OK;
}
