/* Descriptors. A descriptor's data lives either in a ring reservation (the common case: written once,
 * read in place by the peer) or, when the ring is full, in the descriptor's own buffer until progress
 * copies it into the ring. */
#ifndef MCA_BTL_FREEFLOW_FRAG_H
#define MCA_BTL_FREEFLOW_FRAG_H

#include "btl_freeflow.h"
#include "btl_freeflow_endpoint.h"

typedef struct mca_btl_freeflow_frag {
    mca_btl_base_descriptor_t base;
    mca_btl_base_segment_t segment;
    mca_btl_freeflow_endpoint_t *endpoint;
    void *reservation; /* ring payload, or NULL for a buffered descriptor */
    uint32_t reserved_len;
    mca_btl_base_tag_t tag;
    opal_free_list_t *list; /* the free list it returns to */
} mca_btl_freeflow_frag_t;
OBJ_CLASS_DECLARATION(mca_btl_freeflow_frag_t);

/* A descriptor of any module of the component, fresh from its free list: one segment, no callback.
 * Inline: the shm send path runs it for every fragment. */
static inline void mca_btl_freeflow_descriptor_reset(mca_btl_base_descriptor_t *descriptor,
                                                     mca_btl_base_segment_t *segment)
{
    descriptor->des_segments = segment;
    descriptor->des_segment_count = 1;
    descriptor->des_cbfunc = NULL;
    descriptor->des_cbdata = NULL;
    descriptor->des_context = NULL;
}

static inline mca_btl_freeflow_frag_t *mca_btl_freeflow_frag_get(opal_free_list_t *list,
                                                                 mca_btl_freeflow_endpoint_t *endpoint)
{
    mca_btl_freeflow_frag_t *frag = (mca_btl_freeflow_frag_t *) opal_free_list_get(list);
    if (OPAL_LIKELY(NULL != frag)) {
        frag->endpoint = endpoint;
        frag->reservation = NULL;
        mca_btl_freeflow_descriptor_reset(&frag->base, &frag->segment);
    }
    return frag;
}

static inline void mca_btl_freeflow_frag_return(mca_btl_freeflow_frag_t *frag)
{
    opal_free_list_return(frag->list, (opal_free_list_item_t *) frag);
}

/* Runs the completion callback ob1 asked for and gives the descriptor back if the BTL owns it. */
static inline void mca_btl_freeflow_frag_complete(mca_btl_freeflow_frag_t *frag)
{
    /* read the flags first: the callback may free the descriptor */
    const uint32_t flags = frag->base.des_flags;
    if (flags & MCA_BTL_DES_SEND_ALWAYS_CALLBACK) {
        frag->base.des_cbfunc(&mca_btl_freeflow_module.super, frag->endpoint, &frag->base, OPAL_SUCCESS);
    }
    if (flags & MCA_BTL_DES_FLAGS_BTL_OWNERSHIP) {
        mca_btl_freeflow_frag_return(frag);
    }
}

int mca_btl_freeflow_frag_lists_init(void);
void mca_btl_freeflow_frag_lists_fini(void);

#endif
