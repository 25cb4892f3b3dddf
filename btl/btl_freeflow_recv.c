/*
 * Receiving: every ring a peer claimed in our segment is polled in place; ob1's callback reads the
 * data straight out of the ring, and only then is the record released to the producer.
 */
#include "btl_freeflow.h"
#include "btl_freeflow_idle.h"
#include "btl_freeflow_rdma.h"

#include "opal/util/output.h"
#include "opal/util/proc.h"

#include <stdio.h>

/* A producer's ring holds a record header no producer writes: another process overwrote our shared
 * memory. Nothing from it can be delivered safely; the job stops with the peer and the ring named. */
static void ring_broken(mca_btl_freeflow_inbound_t *inbound)
{
    inbound->dead = true;
    char message[512];
    snprintf(message, sizeof(message),
             "freeflow: %s: the ring from %llx:%llu in our segment %s is corrupt (header word 0x%016llx at "
             "offset %llu): %s. Aborting.",
             OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned long long) (inbound->producer >> 32),
             (unsigned long long) (inbound->producer & 0xffffffffu),
             ff_segment_file(mca_btl_freeflow_component.segment), (unsigned long long) inbound->rx.bad_word,
             (unsigned long long) inbound->rx.bad_offset, ff_status_describe(FF_ERR_CORRUPT));
    mca_btl_freeflow_fatal(NULL, message);
}

/* Which inbound rings each pass polls (freeflow.h, "Poll schedule"): rings with recent traffic on every
 * pass, silent ones round-robin, so a pass does not grow with idle peers. Its state is private and
 * changes during a pass: one thread polls at a time (a try-lock: a thread that finds it taken has
 * nothing to do that the holder is not already doing). Indices are those of component.inbound. */
static ff_poll_schedule_t schedule;
static opal_mutex_t poll_lock = OPAL_MUTEX_STATIC_INIT;
static bool polling; /* a pass is running (under poll_lock) */

/* Takes up to poll_batch records from one ring; returns how many. */
static unsigned int drain_ring(mca_btl_freeflow_inbound_t *inbound, unsigned int batch)
{
    ff_ring_record_t record;
    unsigned int taken = 0;
    while (taken < batch && ff_ring_peek(&inbound->rx, &record)) {
        if (OPAL_UNLIKELY(MCA_BTL_FREEFLOW_TAG_RDMA_REQUEST == record.tag ||
                          MCA_BTL_FREEFLOW_TAG_RDMA_RESPONSE == record.tag)) {
            /* one-sided operations: the ring's producer, not the record, says who asks */
            mca_btl_freeflow_rdma_receive(inbound->producer, record.tag, record.data, record.len);
            ff_ring_consume(&inbound->rx);
            ++taken;
            continue;
        }
        mca_btl_base_segment_t segment = {.seg_addr.pval = record.data, .seg_len = record.len};
        mca_btl_base_descriptor_t descriptor = {.des_segments = &segment, .des_segment_count = 1};
        const mca_btl_active_message_callback_t *reg = mca_btl_base_active_message_trigger + record.tag;
        if (OPAL_UNLIKELY(NULL == reg->cbfunc)) {
            /* no layer registered this tag: no producer sends it, the record was forged */
            (void) ff_ring_rx_break(&inbound->rx, inbound->rx.pos & (inbound->rx.size - 1),
                                    ff_ring_header_word(FF_RECORD_DATA, record.tag, record.len));
            break;
        }
        reg->cbfunc(&mca_btl_freeflow_module.super, record.tag, &descriptor, reg->cbdata);
        ff_ring_consume(&inbound->rx);
        ++taken;
    }
    if (OPAL_UNLIKELY(inbound->rx.broken) && !inbound->dead) {
        ring_broken(inbound); /* one private load per ring and pass, after the batch */
    }
    return taken;
}

int mca_btl_freeflow_poll_inbound(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    if (OPAL_THREAD_TRYLOCK(&poll_lock)) {
        return 0; /* another thread is polling */
    }
    if (OPAL_UNLIKELY(polling)) {
        /* a callback of this pass progressed again (the lock is a no-op without threads): the schedule
         * is mid-pass, and the outer pass polls on when the callback returns */
        OPAL_THREAD_UNLOCK(&poll_lock);
        return 0;
    }
    polling = true;
    const unsigned int batch = c->poll_batch;
    int handled = 0;
    ff_poll_pass_t pass;
    uint32_t ring;
    ff_poll_pass_begin(&schedule, &pass);
    while (ff_poll_pass_next(&schedule, &pass, &ring)) {
        mca_btl_freeflow_inbound_t *inbound = &c->inbound[ring];
        unsigned int taken = OPAL_UNLIKELY(inbound->dead) ? 0 : drain_ring(inbound, batch);
        ff_poll_pass_report(&schedule, &pass, taken != 0);
        handled += (int) taken;
    }
    polling = false;
    OPAL_THREAD_UNLOCK(&poll_lock);
    return handled;
}

bool mca_btl_freeflow_inbound_pending(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    /* relaxed: called after ff_doorbell_arm's seq_cst fence, which orders this load after the flag store;
     * a claim the fence does not make visible comes with a producer that sees the flag and rings */
    if (atomic_load_explicit(c->rings_claimed, memory_order_relaxed) != c->ring_cursor) {
        return true;
    }
    if (OPAL_THREAD_TRYLOCK(&poll_lock)) {
        return true; /* another thread is polling: let it, do not sleep */
    }
    if (OPAL_UNLIKELY(polling)) {
        /* progress called from a callback of a pass (the lock is a no-op without threads): never sleep
         * there, and leave the ring positions of the pass alone */
        OPAL_THREAD_UNLOCK(&poll_lock);
        return true;
    }
    bool pending = false;
    ff_ring_record_t record;
    /* every ring, not the poll schedule's selection: the doorbell's guarantee needs each ring looked at */
    const int32_t rings = atomic_load_explicit(&c->inbound_count, memory_order_acquire);
    for (int32_t i = 0; i < rings && !pending; ++i) {
        pending = !c->inbound[i].dead && ff_ring_peek(&c->inbound[i].rx, &record);
    }
    OPAL_THREAD_UNLOCK(&poll_lock);
    return pending;
}

void mca_btl_freeflow_poll_fini(void)
{
    ff_poll_schedule_fini(&schedule);
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
        /* relaxed: only this function writes it, under the component lock we hold */
        const int32_t index = atomic_load_explicit(&c->inbound_count, memory_order_relaxed);
        ff_status_t status = ff_ring_rx_open(&c->inbound[index].rx, c->segment, ring);
        c->inbound[index].producer = producer;
        c->inbound[index].dead = false;
        if (FF_OK != status) {
            /* the slot's control block was overwritten (next_ring saw it claimed) */
            char message[512];
            snprintf(message, sizeof(message), "freeflow: %s: ring %u in our segment %s is corrupt: %s (%s). Aborting.",
                     OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), ring, ff_segment_file(c->segment), ff_status_name(status),
                     ff_status_describe(status));
            OPAL_THREAD_UNLOCK(&c->lock);
            mca_btl_freeflow_fatal(NULL, message);
            return;
        }
        /* release: progress threads that see the new count see the ring set up */
        atomic_store_explicit(&c->inbound_count, index + 1, memory_order_release);
        /* The pass lock orders the ring's set-up above before any pass that polls it. Blocking: a
         * progress pass holds it only briefly. The schedule has inbound_capacity slots, so this cannot
         * be full while inbound[] has room. */
        OPAL_THREAD_LOCK(&poll_lock);
        status = 0 == schedule.capacity ? ff_poll_schedule_init(&schedule, c->inbound_capacity,
                                                                c->poll_idle_rings_per_pass, c->poll_idle_after)
                                        : FF_OK;
        if (FF_OK == status) {
            status = ff_poll_schedule_add(&schedule);
        }
        OPAL_THREAD_UNLOCK(&poll_lock);
        if (FF_OK != status) {
            char message[256];
            snprintf(message, sizeof(message), "freeflow: %s: cannot poll ring %u of our segment: %s. Aborting.",
                     OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), ring, ff_status_describe(status));
            OPAL_THREAD_UNLOCK(&c->lock);
            mca_btl_freeflow_fatal(NULL, message);
            return;
        }
        FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s now polls ring %u, from %llx:%llu",
               OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), ring, (unsigned long long) (producer >> 32),
               (unsigned long long) (producer & 0xffffffffu));
    }
    OPAL_THREAD_UNLOCK(&c->lock);
}
