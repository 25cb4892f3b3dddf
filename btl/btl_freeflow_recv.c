/*
 * Receiving: every ring a peer claimed in our segment is polled in place; ob1's callback reads the
 * data straight out of the ring, and only then is the record released to the producer.
 */
#include "btl_freeflow.h"

#include "opal/util/output.h"
#include "opal/util/proc.h"


int mca_btl_freeflow_poll_inbound(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    /* acquire: pairs with the release in accept_rings, so the ring at index < count is set up */
    const int32_t rings = __atomic_load_n(&c->inbound_count, __ATOMIC_ACQUIRE);
    const unsigned int batch = c->poll_batch;
    int handled = 0;

    for (int32_t i = 0; i < rings; ++i) {
        mca_btl_freeflow_inbound_t *inbound = &c->inbound[i];
        if (OPAL_THREAD_TRYLOCK(&inbound->lock)) {
            continue; /* another thread is consuming this ring */
        }
        ff_ring_record_t record;
        unsigned int taken = 0;
        while (taken < batch && ff_ring_peek(&inbound->rx, &record)) {
            mca_btl_base_segment_t segment = {.seg_addr.pval = record.data, .seg_len = record.len};
            mca_btl_base_descriptor_t descriptor = {.des_segments = &segment, .des_segment_count = 1};
            const mca_btl_active_message_callback_t *reg = mca_btl_base_active_message_trigger + record.tag;
            reg->cbfunc(&mca_btl_freeflow_module.super, record.tag, &descriptor, reg->cbdata);
            ff_ring_consume(&inbound->rx);
            ++taken;
        }
        OPAL_THREAD_UNLOCK(&inbound->lock);
        handled += (int) taken;
    }
    return handled;
}

void mca_btl_freeflow_accept_rings(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    uint64_t producer;
    uint32_t ring;
    if (OPAL_THREAD_TRYLOCK(&c->lock)) {
        return;
    }
    while (ff_segment_next_ring(c->segment, &c->ring_cursor, &producer, &ring)) {
        const int32_t index = c->inbound_count;
        /* cannot fail: the ring is in our own segment and next_ring saw it claimed */
        (void) ff_ring_rx_open(&c->inbound[index].rx, c->segment, ring);
        /* release: progress threads that see the new count see the ring set up */
        __atomic_store_n(&c->inbound_count, index + 1, __ATOMIC_RELEASE);
        FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s now polls ring %u, from %llx:%llu", OPAL_NAME_PRINT(OPAL_PROC_MY_NAME),
               ring, (unsigned long long) (producer >> 32), (unsigned long long) (producer & 0xffffffffu));
    }
    OPAL_THREAD_UNLOCK(&c->lock);
}
