#include "btl_freeflow_frag.h"

static void frag_construct(mca_btl_freeflow_frag_t *frag)
{
    frag->base.des_segments = &frag->segment;
    frag->base.des_segment_count = 1;
    frag->reservation = NULL;
}

OBJ_CLASS_INSTANCE(mca_btl_freeflow_frag_t, mca_btl_base_descriptor_t, frag_construct, NULL);

static int frag_init(opal_free_list_item_t *item, void *list)
{
    /* set once here rather than on every get */
    ((mca_btl_freeflow_frag_t *) item)->list = (opal_free_list_t *) list;
    return OPAL_SUCCESS;
}

int mca_btl_freeflow_frag_lists_init(void)
{
    mca_btl_freeflow_component_t *component = &mca_btl_freeflow_component;
    const mca_btl_base_module_t *btl = &mca_btl_freeflow_module.super;
    const size_t buffer_size =
        btl->btl_max_send_size > btl->btl_eager_limit ? btl->btl_max_send_size : btl->btl_eager_limit;

    OBJ_CONSTRUCT(&component->frags, opal_free_list_t);
    OBJ_CONSTRUCT(&component->buffered_frags, opal_free_list_t);
    /* Ring descriptors are only bookkeeping: the list may grow as far as ob1 keeps fragments in flight. */
    int rc = opal_free_list_init(&component->frags, sizeof(mca_btl_freeflow_frag_t), opal_cache_line_size,
                                 OBJ_CLASS(mca_btl_freeflow_frag_t), 0, 0, 64, -1, 64, NULL, 0, NULL, frag_init,
                                 &component->frags);
    if (OPAL_SUCCESS != rc) {
        return rc;
    }
    /* Buffered descriptors hold data while a ring is full. Bounded: when they run out, alloc fails and
     * ob1 retries once a buffered descriptor completes. */
    return opal_free_list_init(&component->buffered_frags, sizeof(mca_btl_freeflow_frag_t), opal_cache_line_size,
                               OBJ_CLASS(mca_btl_freeflow_frag_t), buffer_size, opal_cache_line_size, 8, 256, 32, NULL,
                               0, NULL, frag_init, &component->buffered_frags);
}

void mca_btl_freeflow_frag_lists_fini(void)
{
    OBJ_DESTRUCT(&mca_btl_freeflow_component.frags);
    OBJ_DESTRUCT(&mca_btl_freeflow_component.buffered_frags);
}
