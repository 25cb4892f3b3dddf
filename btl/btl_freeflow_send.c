/*
 * Sending: data is written once, straight into a reservation in our ring to the peer, and published by
 * the commit in send (or sendi). When the ring is full, prepare_src and sendi fail (ob1 retries from its
 * own progress), and alloc falls back to a buffered descriptor that progress moves into the ring later;
 * once an endpoint has buffered descriptors, everything after them queues too, so order is kept.
 */
#include "btl_freeflow.h"

#include <stdio.h>
#include "btl_freeflow_endpoint.h"
#include "btl_freeflow_frag.h"
#include "btl_freeflow_idle.h"

#include "opal/datatype/opal_convertor.h"

/* Bulk fragments from this size on start their data on a cache-line boundary in the ring. */
#define BULK_BYTES 4096u

/* The consumer's tail word in the peer's segment is impossible (overwritten): the pair cannot go on.
 * Reached only when a reservation failed, never on the fast path. */
static void tx_broken(mca_btl_freeflow_endpoint_t *endpoint)
{
    char message[512];
    snprintf(message, sizeof(message),
             "freeflow: %s: the ring to %s in its segment %s is corrupt (its consumer position is impossible): %s. "
             "Aborting.",
             OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(endpoint->proc->proc_name),
             ff_segment_file(endpoint->peer_segment), ff_status_describe(FF_ERR_CORRUPT));
    mca_btl_freeflow_fatal(endpoint->proc, message);
}

/* NULL when the ring has no room or buffered descriptors are queued ahead. `header` bytes of the caller
 * precede the data; bulk data is placed in the same phase within a cache line as its source (`source`,
 * NULL when unknown: then cache-line aligned). Source and ring copy then move whole lines in step, and
 * so does the receiver's copy out when its buffer has the sender's alignment, as buffers of one
 * program usually do. */
static inline void *reserve(mca_btl_freeflow_endpoint_t *endpoint, size_t len, size_t header, const void *source)
{
    /* ff_ring_reserve_placed puts byte `data_offset` on a line boundary: shift it back by the phase */
    const uint32_t phase = (uint32_t) ((uintptr_t) source & (FF_RING_DATA_ALIGN - 1));
    const uint32_t data_offset = (uint32_t) (header + FF_RING_DATA_ALIGN - phase) & (FF_RING_DATA_ALIGN - 1);
    void *payload = NULL;
    OPAL_THREAD_LOCK(&endpoint->lock);
    if (OPAL_UNLIKELY(!endpoint->ring_ready) && OPAL_SUCCESS != mca_btl_freeflow_endpoint_open_ring(endpoint)) {
        goto out;
    }
    if (OPAL_LIKELY(opal_list_is_empty(&endpoint->pending) && len <= endpoint->tx.max_payload)) {
        if (OPAL_UNLIKELY(opal_using_threads()) && len < BULK_BYTES) {
            /* With threads, zeroing ahead (it moves the ring's private state, which this lock guards)
             * is done here, under the lock reserve holds anyway, not after the commit under a second
             * round trip of it (zero_ahead_after_commit). It stores only past every reservation, so
             * reservations of other threads not yet committed are untouched. */
            ff_ring_zero_ahead(&endpoint->tx);
        }
        payload = ff_ring_reserve_placed(&endpoint->tx, (uint32_t) len, len - header >= BULK_BYTES, data_offset);
        if (OPAL_UNLIKELY(NULL == payload && endpoint->tx.broken)) {
            OPAL_THREAD_UNLOCK(&endpoint->lock);
            tx_broken(endpoint);
            return NULL;
        }
    }
out:
    OPAL_THREAD_UNLOCK(&endpoint->lock);
    return payload;
}

/* After a commit: the lines the next small records will use are zeroed now, off their critical path
 * (freeflow.h, "Zeroing ahead"). Only when this process has one thread: then nobody else moves the ring's
 * private state and no lock is needed. With threads, reserve zeroes ahead under the lock it takes anyway,
 * before the next small reservation. */
static inline void zero_ahead_after_commit(mca_btl_freeflow_endpoint_t *endpoint)
{
    if (OPAL_LIKELY(!opal_using_threads())) {
        ff_ring_zero_ahead(&endpoint->tx);
    }
}

static inline void count_sent(mca_btl_freeflow_endpoint_t *endpoint, size_t bytes)
{
    /* statistics for the report: exact when single-threaded, atomic otherwise */
    if (OPAL_UNLIKELY(opal_using_threads())) {
        /* relaxed: counts only, read at finalize (btl_freeflow.h, "Atomics": plain fields, _Atomic view) */
        atomic_fetch_add_explicit(MCA_BTL_FREEFLOW_ATOMIC(uint64_t, &endpoint->sent_fragments), 1,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(MCA_BTL_FREEFLOW_ATOMIC(uint64_t, &endpoint->sent_bytes), bytes,
                                  memory_order_relaxed);
    } else {
        endpoint->sent_fragments++;
        endpoint->sent_bytes += bytes;
    }
}

/* A reserved record becomes the receiver's: every send path commits through here, so the wake-up of a
 * sleeping receiver (btl_freeflow_idle.h) and the report's counts cannot be missed by one of them. */
static inline void publish(mca_btl_freeflow_endpoint_t *endpoint, void *record, uint32_t reserved_len, uint32_t len,
                           mca_btl_base_tag_t tag)
{
    ff_ring_commit(&endpoint->tx, record, reserved_len, len, tag);
    mca_btl_freeflow_wake_receiver(endpoint);
    count_sent(endpoint, len);
}

/* Where the bulk data to pack starts, when it is contiguous and large enough to be placed; else NULL. */
static inline const void *source_of(struct opal_convertor_t *convertor, size_t size)
{
    if (size < BULK_BYTES || opal_convertor_need_buffers(convertor)) {
        return NULL;
    }
    void *source;
    opal_convertor_get_current_pointer(convertor, &source);
    return source;
}

/* Copies `size` bytes of the convertor's data to `dest`; returns the bytes written. */
static inline size_t pack(struct opal_convertor_t *convertor, void *dest, size_t size)
{
    if (OPAL_LIKELY(!opal_convertor_need_buffers(convertor))) {
        /* contiguous: ob1 positions the convertor before each fragment, so its pointer is our source */
        void *source;
        opal_convertor_get_current_pointer(convertor, &source);
        if (size >= BULK_BYTES) {
            ff_copy(dest, source, size);
        } else {
            memcpy(dest, source, size);
        }
        return size;
    }
    struct iovec iov = {.iov_base = dest, .iov_len = size};
    uint32_t iov_count = 1;
    size_t packed = size;
    if (opal_convertor_pack(convertor, &iov, &iov_count, &packed) < 0) {
        return (size_t) -1;
    }
    return packed;
}

static inline void queue_completion(mca_btl_freeflow_frag_t *frag)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    OPAL_THREAD_LOCK(&c->completed_lock);
    opal_list_append(&c->completed, (opal_list_item_t *) frag);
    OPAL_THREAD_UNLOCK(&c->completed_lock);
    mca_btl_freeflow_thread_add(&c->completed_count, 1);
}

mca_btl_base_descriptor_t *mca_btl_freeflow_alloc(struct mca_btl_base_module_t *btl,
                                                  struct mca_btl_base_endpoint_t *endpoint, uint8_t order, size_t size,
                                                  uint32_t flags)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    (void) btl;
    mca_btl_freeflow_frag_t *frag = mca_btl_freeflow_frag_get(&c->frags, endpoint);
    if (OPAL_UNLIKELY(NULL == frag)) {
        return NULL;
    }
    void *payload = reserve(endpoint, size, 0, NULL);
    if (OPAL_LIKELY(NULL != payload)) {
        frag->reservation = payload;
        frag->reserved_len = (uint32_t) size;
        frag->segment.seg_addr.pval = payload;
    } else {
        /* The ring is full (or others are queued): hold the data aside until progress finds room. */
        mca_btl_freeflow_frag_return(frag);
        if (size > c->buffered_frags.fl_payload_buffer_size) {
            return NULL;
        }
        frag = mca_btl_freeflow_frag_get(&c->buffered_frags, endpoint);
        if (OPAL_UNLIKELY(NULL == frag)) {
            return NULL;
        }
        frag->segment.seg_addr.pval = frag->base.super.ptr;
    }
    frag->segment.seg_len = size;
    frag->base.order = order;
    frag->base.des_flags = flags;
    return &frag->base;
}

int mca_btl_freeflow_free(struct mca_btl_base_module_t *btl, mca_btl_base_descriptor_t *descriptor)
{
    mca_btl_freeflow_frag_t *frag = (mca_btl_freeflow_frag_t *) descriptor;
    (void) btl;
    if (frag->reservation) {
        /* the peer skips it; the reservation must not stay open or it would stall the ring */
        ff_ring_cancel(&frag->endpoint->tx, frag->reservation, frag->reserved_len);
    }
    mca_btl_freeflow_frag_return(frag);
    return OPAL_SUCCESS;
}

mca_btl_base_descriptor_t *mca_btl_freeflow_prepare_src(struct mca_btl_base_module_t *btl,
                                                        struct mca_btl_base_endpoint_t *endpoint,
                                                        struct opal_convertor_t *convertor, uint8_t order,
                                                        size_t reserve_bytes, size_t *size, uint32_t flags)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    (void) btl;
    /* A fragment must fit one record of the peer's ring (endpoint->max_record); ob1 sends the rest in
     * later fragments. relaxed: set once under the endpoint lock, see its declaration. */
    const size_t max_record =
        atomic_load_explicit(MCA_BTL_FREEFLOW_ATOMIC(uint32_t, &endpoint->max_record), memory_order_relaxed);
    if (OPAL_UNLIKELY(reserve_bytes + *size > max_record) && max_record > reserve_bytes) {
        *size = max_record - reserve_bytes;
    }
    const size_t total = reserve_bytes + *size;
    /* No buffered fallback here: ob1 keeps the request and retries from its progress, so the data is
     * copied once, into the ring, when room appears. */
    uint8_t *payload = reserve(endpoint, total, reserve_bytes, source_of(convertor, *size));
    if (OPAL_UNLIKELY(NULL == payload)) {
        return NULL;
    }
    mca_btl_freeflow_frag_t *frag = mca_btl_freeflow_frag_get(&c->frags, endpoint);
    if (OPAL_UNLIKELY(NULL == frag)) {
        ff_ring_cancel(&endpoint->tx, payload, (uint32_t) total);
        return NULL;
    }
    if (*size) {
        size_t packed = pack(convertor, payload + reserve_bytes, *size);
        if (OPAL_UNLIKELY((size_t) -1 == packed)) {
            ff_ring_cancel(&endpoint->tx, payload, (uint32_t) total);
            mca_btl_freeflow_frag_return(frag);
            return NULL;
        }
        *size = packed;
    }
    frag->reservation = payload;
    frag->reserved_len = (uint32_t) total;
    frag->segment.seg_addr.pval = payload;
    frag->segment.seg_len = reserve_bytes + *size;
    frag->base.order = order;
    frag->base.des_flags = flags;
    return &frag->base;
}

int mca_btl_freeflow_send(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                          struct mca_btl_base_descriptor_t *descriptor, mca_btl_base_tag_t tag)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    mca_btl_freeflow_frag_t *frag = (mca_btl_freeflow_frag_t *) descriptor;
    (void) btl;
    /* ob1 relies on a completion callback for every fragment it pipelines (the same workaround as
     * vader's for open-mpi/ompi#3845), so completion is always reported, from the next progress pass. */
    frag->base.des_flags |= MCA_BTL_DES_SEND_ALWAYS_CALLBACK;
    frag->tag = tag;
    if (OPAL_LIKELY(NULL != frag->reservation)) {
        publish(endpoint, frag->reservation, frag->reserved_len, (uint32_t) frag->segment.seg_len, tag);
        if (frag->reserved_len < BULK_BYTES) {
            zero_ahead_after_commit(endpoint); /* bulk streams zero only the header after each fragment */
        }
        queue_completion(frag);
        return OPAL_SUCCESS;
    }
    OPAL_THREAD_LOCK(&endpoint->lock);
    opal_list_append(&endpoint->pending, (opal_list_item_t *) frag);
    OPAL_THREAD_UNLOCK(&endpoint->lock);
    /* Lock order is pending_lock -> endpoint lock (see flush): never take pending_lock while holding
     * the endpoint lock. If flush took the endpoint off the list after our append, it saw the descriptor
     * and kept it there; otherwise on_pending_list is false now and we put it back. */
    OPAL_THREAD_LOCK(&c->pending_lock);
    if (!endpoint->on_pending_list) {
        endpoint->on_pending_list = true;
        opal_list_append(&c->pending_endpoints, &endpoint->pending_item);
        mca_btl_freeflow_thread_add(&c->pending_count, 1);
    }
    OPAL_THREAD_UNLOCK(&c->pending_lock);
    return OPAL_SUCCESS;
}

int mca_btl_freeflow_sendi(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                           struct opal_convertor_t *convertor, void *header, size_t header_size, size_t payload_size,
                           uint8_t order, uint32_t flags, mca_btl_base_tag_t tag,
                           mca_btl_base_descriptor_t **descriptor)
{
    const size_t total = header_size + payload_size;
    (void) btl;
    (void) order;
    (void) flags;
    if (descriptor) {
        *descriptor = NULL;
    }
    uint8_t *payload = reserve(endpoint, total, header_size, source_of(convertor, payload_size));
    if (OPAL_UNLIKELY(NULL == payload)) {
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    memcpy(payload, header, header_size);
    size_t packed = payload_size ? pack(convertor, payload + header_size, payload_size) : 0;
    if (OPAL_UNLIKELY(packed != payload_size)) {
        ff_ring_cancel(&endpoint->tx, payload, (uint32_t) total);
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    publish(endpoint, payload, (uint32_t) total, (uint32_t) total, tag);
    zero_ahead_after_commit(endpoint);
    return OPAL_SUCCESS;
}

/* Moves buffered descriptors of one endpoint into its ring while there is room (pending_lock held).
 * Takes the endpoint off the pending list once nothing is left. */
static int flush_endpoint(mca_btl_freeflow_endpoint_t *endpoint, opal_list_t *done)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    int moved = 0;
    OPAL_THREAD_LOCK(&endpoint->lock);
    if (endpoint->ring_ready || OPAL_SUCCESS == mca_btl_freeflow_endpoint_open_ring(endpoint)) {
        while (!opal_list_is_empty(&endpoint->pending)) {
            mca_btl_freeflow_frag_t *frag = (mca_btl_freeflow_frag_t *) opal_list_get_first(&endpoint->pending);
            const uint32_t len = (uint32_t) frag->segment.seg_len;
            void *payload = ff_ring_reserve(&endpoint->tx, len);
            if (NULL == payload) {
                if (OPAL_UNLIKELY(endpoint->tx.broken)) {
                    OPAL_THREAD_UNLOCK(&endpoint->lock);
                    tx_broken(endpoint); /* aborts the job */
                    OPAL_THREAD_LOCK(&endpoint->lock);
                }
                break;
            }
            ff_copy(payload, frag->segment.seg_addr.pval, len);
            publish(endpoint, payload, len, len, frag->tag);
            opal_list_remove_first(&endpoint->pending);
            opal_list_append(done, (opal_list_item_t *) frag);
            ++moved;
        }
    }
    if (opal_list_is_empty(&endpoint->pending)) {
        opal_list_remove_item(&c->pending_endpoints, &endpoint->pending_item);
        endpoint->on_pending_list = false;
        mca_btl_freeflow_thread_add(&c->pending_count, -1);
    }
    OPAL_THREAD_UNLOCK(&endpoint->lock);
    return moved;
}

int mca_btl_freeflow_flush_pending(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    if (OPAL_THREAD_TRYLOCK(&c->pending_lock)) {
        return 0; /* another thread is flushing */
    }
    opal_list_t done;
    OBJ_CONSTRUCT(&done, opal_list_t);
    int count = 0;
    opal_list_item_t *item = opal_list_get_first(&c->pending_endpoints);
    while (item != opal_list_get_end(&c->pending_endpoints)) {
        opal_list_item_t *next = opal_list_get_next(item);
        mca_btl_freeflow_endpoint_t *endpoint =
            (mca_btl_freeflow_endpoint_t *) ((char *) item - offsetof(mca_btl_freeflow_endpoint_t, pending_item));
        count += flush_endpoint(endpoint, &done);
        item = next;
    }
    OPAL_THREAD_UNLOCK(&c->pending_lock);
    /* completions run without locks: callbacks may send */
    opal_list_item_t *done_item;
    while (NULL != (done_item = opal_list_remove_first(&done))) {
        mca_btl_freeflow_frag_complete((mca_btl_freeflow_frag_t *) done_item);
    }
    OBJ_DESTRUCT(&done);
    return count;
}

int mca_btl_freeflow_run_completions(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    opal_list_t batch;
    OBJ_CONSTRUCT(&batch, opal_list_t);
    OPAL_THREAD_LOCK(&c->completed_lock);
    opal_list_join(&batch, opal_list_get_end(&batch), &c->completed);
    OPAL_THREAD_UNLOCK(&c->completed_lock);
    int count = 0;
    opal_list_item_t *item;
    while (NULL != (item = opal_list_remove_first(&batch))) {
        mca_btl_freeflow_thread_add(&c->completed_count, -1);
        mca_btl_freeflow_frag_complete((mca_btl_freeflow_frag_t *) item);
        ++count;
    }
    OBJ_DESTRUCT(&batch);
    return count;
}
