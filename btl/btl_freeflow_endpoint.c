#include "btl_freeflow_endpoint.h"

static void endpoint_construct(mca_btl_freeflow_endpoint_t *endpoint)
{
    OBJ_CONSTRUCT(&endpoint->pending_item, opal_list_item_t);
    OBJ_CONSTRUCT(&endpoint->lock, opal_mutex_t);
    OBJ_CONSTRUCT(&endpoint->pending, opal_list_t);
    endpoint->proc = NULL;
    endpoint->peer_segment = NULL;
    endpoint->ring_ready = false;
    endpoint->on_pending_list = false;
    endpoint->sent_fragments = 0;
    endpoint->sent_bytes = 0;
}

static void endpoint_destruct(mca_btl_freeflow_endpoint_t *endpoint)
{
    OBJ_DESTRUCT(&endpoint->pending);
    OBJ_DESTRUCT(&endpoint->lock);
    OBJ_DESTRUCT(&endpoint->pending_item);
}

OBJ_CLASS_INSTANCE(mca_btl_freeflow_endpoint_t, opal_list_item_t, endpoint_construct, endpoint_destruct);

int mca_btl_freeflow_endpoint_open_ring(mca_btl_freeflow_endpoint_t *endpoint)
{
    mca_btl_freeflow_component_t *component = &mca_btl_freeflow_component;
    uint32_t index;

    /* Ring allocation touches our segment's allocator, shared by all endpoints. */
    OPAL_THREAD_LOCK(&component->lock);
    ff_status_t status = ff_segment_ring_alloc(component->segment, endpoint->peer_id, &index);
    OPAL_THREAD_UNLOCK(&component->lock);
    if (FF_OK == status) {
        status = ff_ring_tx_open(&endpoint->tx, component->segment, index);
    }
    if (FF_OK == status) {
        status = ff_segment_announce(endpoint->peer_segment, component->my_id, index);
    }
    if (FF_OK != status) {
        opal_output(0, "freeflow: cannot open a ring to %s: %s (%s)", OPAL_NAME_PRINT(endpoint->proc->proc_name),
                    ff_status_name(status), ff_status_describe(status));
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: ring %u of %s now carries data to %s", index,
           OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(endpoint->proc->proc_name));
    endpoint->ring_ready = true;
    return OPAL_SUCCESS;
}
