#include "btl_freeflow_endpoint.h"

#include "opal/util/output.h"

#include <stdio.h>
#include <unistd.h>

static void endpoint_construct(mca_btl_freeflow_endpoint_t *endpoint)
{
    OBJ_CONSTRUCT(&endpoint->pending_item, opal_list_item_t);
    OBJ_CONSTRUCT(&endpoint->lock, opal_mutex_t);
    OBJ_CONSTRUCT(&endpoint->pending, opal_list_t);
    endpoint->proc = NULL;
    endpoint->peer_segment = NULL;
    endpoint->verdict_published = false;
    endpoint->ring_ready = false;
    endpoint->max_record = UINT32_MAX;
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
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    uint32_t index;
    /* The ring lives in the peer's segment, which we attached (and so verified) in add_procs. */
    ff_status_t status = ff_segment_ring_claim(endpoint->peer_segment, c->my_id, &index);
    if (FF_OK == status) {
        status = ff_ring_tx_open(&endpoint->tx, endpoint->peer_segment, index, c->my_id);
    }
    if (FF_OK != status) {
        /* Not retryable (the peer's segment has no ring left for us): without a ring every send to this
         * peer would wait forever, so fail the job with the reason instead. */
        char message[512];
        snprintf(message, sizeof(message),
                 "freeflow: %s cannot open a ring to %s: %s (%s). Fix: raise btl_freeflow_max_peers.",
                 OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(endpoint->proc->proc_name), ff_status_name(status),
                 ff_status_describe(status));
        mca_btl_freeflow_fatal(endpoint->proc, message);
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s claimed ring %u in the segment of %s",
           OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), index, OPAL_NAME_PRINT(endpoint->proc->proc_name));
    /* relaxed: prepare_src reads it without the lock; a stale UINT32_MAX costs one refused reservation */
    atomic_store_explicit(MCA_BTL_FREEFLOW_ATOMIC(uint32_t, &endpoint->max_record), endpoint->tx.max_payload,
                          memory_order_relaxed);
    endpoint->ring_ready = true;
    return OPAL_SUCCESS;
}

/* Peers' segments are attached once, by the pair decision, and closed at finalize. */
void mca_btl_freeflow_keep_peer(uint64_t owner_id, ff_segment_t *segment)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    opal_hash_table_set_value_uint64(&c->attached, owner_id, segment);
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s attached %s", OPAL_NAME_PRINT(OPAL_PROC_MY_NAME),
           ff_segment_file(segment));
}

void mca_btl_freeflow_fatal_on(mca_btl_freeflow_module_t *module, opal_proc_t *proc, const char *message)
{
    /* printed once: when several pairs break together, the first reason is the one that matters */
    static bool printed = false;
    if (!printed) {
        printed = true;
        mca_btl_freeflow_print_fatal(message);
    }
    if (module->error_cb) {
        /* ob1's handler aborts the job */
        module->error_cb(&module->super, MCA_BTL_ERROR_FLAGS_FATAL, proc, (char *) message);
    }
    /* no handler registered (or it returned): never continue with a pair whose directions disagree */
    _exit(1);
}

void mca_btl_freeflow_fatal(opal_proc_t *proc, const char *message)
{
    mca_btl_freeflow_fatal_on(&mca_btl_freeflow_module, proc, message);
}

void mca_btl_freeflow_detach_all(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    uint64_t key;
    void *value, *node = NULL;
    int rc = opal_hash_table_get_first_key_uint64(&c->attached, &key, &value, &node);
    while (OPAL_SUCCESS == rc) {
        ff_segment_close((ff_segment_t *) value);
        rc = opal_hash_table_get_next_key_uint64(&c->attached, &key, &value, node, &node);
    }
    opal_hash_table_remove_all(&c->attached);
}
