/* The logic the stream modules (sock: path h, router: path r) share; see btl_freeflow_stream.h. */
#include "btl_freeflow_stream.h"
#include "btl_freeflow_frag.h"

#include "opal/class/opal_bitmap.h"
#include "opal/datatype/opal_convertor.h"
#include "opal/mca/pmix/pmix.h"
#include "opal/util/output.h"

#include <limits.h>
#include <stdlib.h>

static void stream_endpoint_construct(mca_btl_freeflow_stream_endpoint_t *endpoint)
{
    endpoint->proc = NULL;
    endpoint->peer_id = 0;
    endpoint->peer_host = 0;
    endpoint->sent_fragments = 0;
    endpoint->sent_bytes = 0;
}
OBJ_CLASS_INSTANCE(mca_btl_freeflow_stream_endpoint_t, opal_list_item_t, stream_endpoint_construct, NULL);

static void stream_frag_construct(mca_btl_freeflow_stream_frag_t *frag)
{
    frag->base.des_segments = &frag->segment;
    frag->base.des_segment_count = 1;
}
OBJ_CLASS_INSTANCE(mca_btl_freeflow_stream_frag_t, mca_btl_base_descriptor_t, stream_frag_construct, NULL);

static mca_btl_freeflow_stream_t *stream_of(struct mca_btl_base_module_t *btl)
{
    return ((mca_btl_freeflow_module_t *) btl)->stream;
}

int mca_btl_freeflow_stream_init(mca_btl_freeflow_stream_t *stream, opal_class_t *frag_class, size_t frag_size,
                                 size_t eager_limit, size_t max_send_size)
{
    OBJ_CONSTRUCT(&stream->endpoints, opal_list_t);
    OBJ_CONSTRUCT(&stream->completed, opal_list_t);
    OBJ_CONSTRUCT(&stream->frags, opal_free_list_t);
    stream->max_send_size = max_send_size;
    int rc = opal_free_list_init(&stream->frags, frag_size, opal_cache_line_size, frag_class, max_send_size,
                                 opal_cache_line_size, 8, -1, 8, NULL, 0, NULL, NULL, NULL);
    if (OPAL_SUCCESS != rc) {
        return rc;
    }
    mca_btl_base_module_t *btl = &stream->module->super;
    btl->btl_exclusivity = mca_btl_freeflow_module.super.btl_exclusivity;
    btl->btl_eager_limit = eager_limit;
    btl->btl_rndv_eager_limit = eager_limit;
    btl->btl_max_send_size = max_send_size;
    /* ob1 skips registered RDMA for sizes above this when leave_pinned is off: registration in a stream
     * module is a table entry at most, so never skip it */
    btl->btl_min_rdma_pipeline_size = INT_MAX;
    btl->btl_latency = 10;
    btl->btl_bandwidth = 4000; /* MB/s; only relative to other BTLs */
    btl->btl_flags = MCA_BTL_FLAGS_SEND;
    return OPAL_SUCCESS;
}

void mca_btl_freeflow_stream_fini(mca_btl_freeflow_stream_t *stream)
{
    OPAL_LIST_DESTRUCT(&stream->endpoints);
    OBJ_DESTRUCT(&stream->completed);
    OBJ_DESTRUCT(&stream->frags);
}

mca_btl_freeflow_stream_endpoint_t *mca_btl_freeflow_stream_find_endpoint(mca_btl_freeflow_stream_t *stream,
                                                                          uint64_t peer_id)
{
    mca_btl_freeflow_stream_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &stream->endpoints, mca_btl_freeflow_stream_endpoint_t)
    {
        if (endpoint->peer_id == peer_id) {
            return endpoint;
        }
    }
    return NULL;
}

const char *mca_btl_freeflow_stream_decline_reason(const opal_proc_t *proc, ff_pair_route_t route)
{
    static _Thread_local char reason[48];
    return route == mca_btl_freeflow_pair_route(proc, reason, sizeof(reason)) ? NULL : reason;
}

/* The pair's endpoint when `proc` can use the module (made on first sight); NULL when it cannot (the shm
 * module records why: decide()). */
static mca_btl_freeflow_stream_endpoint_t *endpoint_for(mca_btl_freeflow_stream_t *stream, opal_proc_t *proc, int *rc)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    const uint64_t peer_id = mca_btl_freeflow_peer_id(proc->proc_name);
    mca_btl_freeflow_stream_endpoint_t *endpoint = mca_btl_freeflow_stream_find_endpoint(stream, peer_id);
    if (NULL != endpoint) {
        return endpoint;
    }
    mca_btl_freeflow_modex_t *modex = NULL;
    size_t size = 0;
    int modex_rc;
    OPAL_MODEX_RECV(modex_rc, &c->super.btl_version, &proc->proc_name, (void **) &modex, &size);
    (void) modex_rc; /* no modex: not usable, below */
    const bool usable = NULL != modex && size == sizeof(*modex) && MCA_BTL_FREEFLOW_MODEX_VERSION == modex->version &&
                        modex->owner_id == peer_id && ff_job_key_equal(&modex->key, &c->key) &&
                        NULL == mca_btl_freeflow_stream_decline_reason(proc, stream->route);
    free(modex);
    if (!usable) {
        return NULL;
    }
    endpoint = (mca_btl_freeflow_stream_endpoint_t *) opal_obj_new(stream->endpoint_class);
    if (NULL == endpoint) {
        *rc = OPAL_ERR_OUT_OF_RESOURCE;
        return NULL;
    }
    endpoint->proc = proc;
    endpoint->peer_id = peer_id;
    endpoint->peer_host = (uint32_t) ff_path_table_host_of(c->paths, proc->proc_name.vpid);
    opal_list_append(&stream->endpoints, &endpoint->super);
    FF_LOG(FF_VERBOSE_DECISIONS, "freeflow: %s -> %s: %s", OPAL_NAME_PRINT(OPAL_PROC_MY_NAME),
           OPAL_NAME_PRINT(proc->proc_name), stream->decision);
    return endpoint;
}

int mca_btl_freeflow_stream_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                                      struct mca_btl_base_endpoint_t **peers, struct opal_bitmap_t *reachable)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    mca_btl_freeflow_stream_t *stream = stream_of(btl);
    const opal_proc_t *self = opal_proc_local_get();
    int rc = OPAL_SUCCESS;
    OPAL_THREAD_LOCK(&c->lock);
    for (size_t i = 0; i < nprocs && OPAL_SUCCESS == rc; ++i) {
        mca_btl_freeflow_stream_endpoint_t *endpoint = procs[i] == self ? NULL : endpoint_for(stream, procs[i], &rc);
        peers[i] = (struct mca_btl_base_endpoint_t *) (void *) endpoint;
        if (NULL != endpoint && NULL != reachable) {
            rc = opal_bitmap_set_bit(reachable, (int) i);
        }
    }
    OPAL_THREAD_UNLOCK(&c->lock);
    return rc;
}

mca_btl_freeflow_stream_frag_t *mca_btl_freeflow_stream_frag_get(mca_btl_freeflow_stream_t *stream,
                                                                 mca_btl_freeflow_stream_endpoint_t *endpoint)
{
    /* des_segments is laid out as segment, inplace (adjacent members) */
    _Static_assert(offsetof(mca_btl_freeflow_stream_frag_t, inplace) ==
                       offsetof(mca_btl_freeflow_stream_frag_t, segment) + sizeof(mca_btl_base_segment_t),
                   "segments must be adjacent");
    mca_btl_freeflow_stream_frag_t *frag = (mca_btl_freeflow_stream_frag_t *) opal_free_list_get(&stream->frags);
    if (OPAL_LIKELY(NULL != frag)) {
        frag->endpoint = endpoint;
        mca_btl_freeflow_descriptor_reset(&frag->base, &frag->segment);
        frag->segment.seg_addr.pval = frag->base.super.ptr;
        frag->segment.seg_len = 0;
        frag->inplace.seg_len = 0;
    }
    return frag;
}

mca_btl_base_descriptor_t *mca_btl_freeflow_stream_alloc(struct mca_btl_base_module_t *btl,
                                                         struct mca_btl_base_endpoint_t *endpoint, uint8_t order,
                                                         size_t size, uint32_t flags)
{
    mca_btl_freeflow_stream_t *stream = stream_of(btl);
    if (size > stream->max_send_size) {
        return NULL;
    }
    mca_btl_freeflow_stream_frag_t *frag =
        mca_btl_freeflow_stream_frag_get(stream, (mca_btl_freeflow_stream_endpoint_t *) (void *) endpoint);
    if (NULL == frag) {
        return NULL;
    }
    frag->segment.seg_len = size;
    frag->base.des_flags = flags;
    frag->base.order = order;
    return &frag->base;
}

int mca_btl_freeflow_stream_free(struct mca_btl_base_module_t *btl, mca_btl_base_descriptor_t *descriptor)
{
    opal_free_list_return(&stream_of(btl)->frags, (opal_free_list_item_t *) descriptor);
    return OPAL_SUCCESS;
}

mca_btl_base_descriptor_t *mca_btl_freeflow_stream_prepare_src(struct mca_btl_base_module_t *btl,
                                                               struct mca_btl_base_endpoint_t *endpoint,
                                                               struct opal_convertor_t *convertor, uint8_t order,
                                                               size_t reserve, size_t *size, uint32_t flags)
{
    mca_btl_freeflow_stream_t *stream = stream_of(btl);
    if (reserve >= stream->max_send_size) {
        return NULL;
    }
    mca_btl_freeflow_stream_frag_t *frag =
        mca_btl_freeflow_stream_frag_get(stream, (mca_btl_freeflow_stream_endpoint_t *) (void *) endpoint);
    if (NULL == frag) {
        return NULL;
    }
    const size_t room = stream->max_send_size - reserve;
    size_t want = *size < room ? *size : room;
    struct iovec iov = {.iov_base = NULL, .iov_len = want};
    uint32_t iov_count = 1;
    /* contiguous data: the convertor hands out a pointer into the user's buffer and advances; the module's
     * send reads from there (no copy here). Otherwise it packs behind ob1's header in our buffer. */
    const bool in_place = want > 0 && !opal_convertor_need_buffers(convertor);
    if (!in_place) {
        iov.iov_base = (unsigned char *) frag->base.super.ptr + reserve;
    }
    if (want > 0 && opal_convertor_pack(convertor, &iov, &iov_count, &want) < 0) {
        opal_free_list_return(&stream->frags, (opal_free_list_item_t *) frag);
        return NULL;
    }
    if (in_place) {
        frag->inplace.seg_addr.pval = iov.iov_base;
        frag->inplace.seg_len = want;
        frag->base.des_segment_count = 2;
    }
    *size = want;
    frag->segment.seg_len = reserve + (in_place ? 0 : want);
    frag->base.des_flags = flags;
    frag->base.order = order;
    return &frag->base;
}

int mca_btl_freeflow_stream_run_completions(mca_btl_freeflow_stream_t *stream)
{
    int count = 0;
    opal_list_item_t *item;
    while (NULL != (item = opal_list_remove_first(&stream->completed))) {
        mca_btl_freeflow_stream_frag_t *frag = (mca_btl_freeflow_stream_frag_t *) item;
        /* read the flags first: the callback may free the descriptor */
        const uint32_t flags = frag->base.des_flags;
        if (flags & MCA_BTL_DES_SEND_ALWAYS_CALLBACK) {
            frag->base.des_cbfunc(&stream->module->super, (struct mca_btl_base_endpoint_t *) (void *) frag->endpoint,
                                  &frag->base, OPAL_SUCCESS);
        }
        if (flags & MCA_BTL_DES_FLAGS_BTL_OWNERSHIP) {
            opal_free_list_return(&stream->frags, (opal_free_list_item_t *) frag);
        }
        ++count;
    }
    return count;
}
