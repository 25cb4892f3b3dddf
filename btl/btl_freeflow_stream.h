/*
 * What the two stream modules share: sock (path h, btl_freeflow_sock.c) and router (path r,
 * btl_freeflow_router.c) carry a pair's fragments in send order through something that is not the peer's
 * memory (a socket, the agent's up ring). Their endpoints, descriptors, add_procs, alloc / prepare_src / free
 * and completion callbacks are the same logic; only how bytes leave and arrive differs, and stays in the
 * module. The shared-memory module keeps its own descriptors (btl_freeflow_frag.h): nothing here is on its
 * hot path.
 */
#ifndef MCA_BTL_FREEFLOW_STREAM_H
#define MCA_BTL_FREEFLOW_STREAM_H

#include "btl_freeflow.h"

#include "opal/util/proc.h"

/* A peer a stream module carries. Modules that keep more per peer derive from it (first member). */
typedef struct mca_btl_freeflow_stream_endpoint {
    opal_list_item_t super; /* on the module's stream.endpoints */
    opal_proc_t *proc;
    uint64_t peer_id;
    uint32_t peer_host;
    /* what this rank sent the peer through ob1 (the report), one fragment per send */
    uint64_t sent_fragments;
    uint64_t sent_bytes;
} mca_btl_freeflow_stream_endpoint_t;
OBJ_CLASS_DECLARATION(mca_btl_freeflow_stream_endpoint_t);

/* A descriptor. Modules that keep more per descriptor derive from it (first member). */
typedef struct mca_btl_freeflow_stream_frag {
    mca_btl_base_descriptor_t base;
    /* [0]: in our buffer (ob1's header, packed data); [1]: contiguous user memory, read in place at send
     * (its owner keeps it valid until completion) */
    mca_btl_base_segment_t segment;
    mca_btl_base_segment_t inplace;
    mca_btl_freeflow_stream_endpoint_t *endpoint;
} mca_btl_freeflow_stream_frag_t;
OBJ_CLASS_DECLARATION(mca_btl_freeflow_stream_frag_t);

/* One stream module's state; its mca_btl_freeflow_module_t points here (`stream`). */
typedef struct mca_btl_freeflow_stream {
    mca_btl_freeflow_module_t *module;
    ff_pair_route_t route;        /* the pair route this module carries */
    opal_class_t *endpoint_class; /* mca_btl_freeflow_stream_endpoint_t or a class derived from it */
    const char *decision;         /* why a pair uses the module, for the verbose log */
    size_t max_send_size;         /* of a descriptor's own buffer */
    opal_list_t endpoints;
    opal_list_t completed; /* frags whose bytes are out; callbacks run from progress */
    opal_free_list_t frags;
} mca_btl_freeflow_stream_t;

/* Makes the lists and the descriptor free list (frag_class derives from mca_btl_freeflow_stream_frag_t)
 * and sets the module's ob1-facing sizes and flags common to stream modules; the caller adds its own. */
int mca_btl_freeflow_stream_init(mca_btl_freeflow_stream_t *stream, opal_class_t *frag_class, size_t frag_size,
                                 size_t eager_limit, size_t max_send_size);
void mca_btl_freeflow_stream_fini(mca_btl_freeflow_stream_t *stream);

mca_btl_freeflow_stream_endpoint_t *mca_btl_freeflow_stream_find_endpoint(mca_btl_freeflow_stream_t *stream,
                                                                          uint64_t peer_id);
/* NULL when the pair can use the module; else the reason it cannot (docs/btl-report.md): the core's pair
 * policy. The returned text is read by the caller at once. */
const char *mca_btl_freeflow_stream_decline_reason(const opal_proc_t *proc, ff_pair_route_t route);

/* A descriptor with an empty buffer segment and no in-place segment; NULL when the list is exhausted. */
mca_btl_freeflow_stream_frag_t *mca_btl_freeflow_stream_frag_get(mca_btl_freeflow_stream_t *stream,
                                                                 mca_btl_freeflow_stream_endpoint_t *endpoint);
/* Runs the completion callbacks of stream->completed and returns the descriptors the BTL owns. */
int mca_btl_freeflow_stream_run_completions(mca_btl_freeflow_stream_t *stream);

/* ob1's module operations for stream modules (the module's `stream` says which). */
int mca_btl_freeflow_stream_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                                      struct mca_btl_base_endpoint_t **peers, struct opal_bitmap_t *reachable);
mca_btl_base_descriptor_t *mca_btl_freeflow_stream_alloc(struct mca_btl_base_module_t *btl,
                                                         struct mca_btl_base_endpoint_t *endpoint, uint8_t order,
                                                         size_t size, uint32_t flags);
int mca_btl_freeflow_stream_free(struct mca_btl_base_module_t *btl, mca_btl_base_descriptor_t *descriptor);
mca_btl_base_descriptor_t *mca_btl_freeflow_stream_prepare_src(struct mca_btl_base_module_t *btl,
                                                               struct mca_btl_base_endpoint_t *endpoint,
                                                               struct opal_convertor_t *convertor, uint8_t order,
                                                               size_t reserve, size_t *size, uint32_t flags);

#endif
