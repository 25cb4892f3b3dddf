/* A peer reachable through shared memory. */
#ifndef MCA_BTL_FREEFLOW_ENDPOINT_H
#define MCA_BTL_FREEFLOW_ENDPOINT_H

#include "btl_freeflow.h"

#include "opal/util/proc.h"

struct mca_btl_base_endpoint_t {
    opal_list_item_t super;        /* on component.endpoints */
    opal_list_item_t pending_item; /* on component.pending_endpoints while `pending` is not empty */
    opal_proc_t *proc;
    uint64_t peer_id;
    ff_segment_t *peer_segment; /* attached; owned by component.attached */
    bool verdict_published;     /* we wrote the pair's verdict file: remove it at finalize if still there */

    /* Producer side. The ring is made on the first send (lazily, so a rank only spends shared memory
     * on peers it talks to). `lock` serialises reservations on the ring and the pending queue. */
    opal_mutex_t lock;
    bool ring_ready;
    ff_ring_tx_t tx;
    /* Largest record (ob1's header + data) prepare_src builds: the peer's ring record limit, which its own
     * btl_freeflow_ring_size may make smaller than our fragments. Set once, when the ring is opened;
     * UINT32_MAX before (the first reservation opens the ring and refuses a record too large for it). */
    uint32_t max_record;
    opal_list_t pending; /* buffered descriptors, in send order, waiting for ring room */
    bool on_pending_list;

    /* what the report says this pair carried */
    uint64_t sent_fragments;
    uint64_t sent_bytes;
};
typedef struct mca_btl_base_endpoint_t mca_btl_base_endpoint_t;
typedef mca_btl_base_endpoint_t mca_btl_freeflow_endpoint_t;
OBJ_CLASS_DECLARATION(mca_btl_freeflow_endpoint_t);

/* Claims our ring in the peer's segment (endpoint lock held). */
int mca_btl_freeflow_endpoint_open_ring(mca_btl_freeflow_endpoint_t *endpoint);

#endif
