/*
 * Path `r` (the FreeFlow router, issue 8): a third module of the freeflow component that carries pairs of
 * ranks on different hosts through the hosts' ffagents. The rank writes fragments into the up ring of
 * memory it shares with its agent (ff_route_*); the agent sends them with UCX to the agent of the peer's
 * host, which writes them into the peer's down ring; the peer's progress hands them to ob1 in place.
 * docs/agent.md ("The `r` plane") has the copies per hop and the measurements.
 *
 * Decision (symmetric, as for `h`): a pair uses `r` iff the path table plans `r` in both directions and
 * both ranks published "router open" in the modex. The route is opened at init, before the modex is
 * published, so a peer that says so can receive when we send.
 *
 * Failures are fatal MPI errors through ob1's error callback, never hangs: the agent closing the route
 * (it died, removed the job, or lost its link to the peer host's agent) or a ring holding what no agent
 * writes. The message names the agent.
 */
#include "btl_freeflow.h"

#include "opal/class/opal_bitmap.h"
#include "opal/datatype/opal_convertor.h"
#include "opal/mca/btl/base/base.h"
#include "opal/mca/pmix/pmix.h"
#include "opal/util/output.h"
#include "opal/util/proc.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ob1 pipelines large messages in max_send_size pieces; each is one UCX message between the agents
 * (rendezvous: received straight into the peer's ring). The largest piece the ring takes; defaults and
 * the yield policy are MCA parameters (mca_btl_freeflow_router_register_params). */
#define ROUTER_MAX_SEND_LIMIT (1u << 20)
/* ff_route_check is one recv: look for the agent's end every this many progress passes */
#define CHECK_EVERY 256u
/* messages taken from the down ring per progress pass: bounded so sends get their turn */
#define RECV_BATCH       32
#define FINALIZE_DRAIN_S 30

typedef struct router_endpoint {
    opal_list_item_t super; /* on router.endpoints */
    opal_proc_t *proc;
    uint64_t peer_id;
    uint32_t peer_host;
    uint64_t sent_fragments;
    uint64_t sent_bytes;
} router_endpoint_t;
static OBJ_CLASS_INSTANCE(router_endpoint_t, opal_list_item_t, NULL, NULL);

typedef struct router_frag {
    mca_btl_base_descriptor_t base;
    /* [0]: in our buffer (ob1's header, packed data); [1]: contiguous user data, copied into the ring
     * straight from the user's buffer at send */
    mca_btl_base_segment_t segment;
    mca_btl_base_segment_t inplace;
    router_endpoint_t *endpoint;
    uint8_t tag;
} router_frag_t;
static void router_frag_construct(router_frag_t *frag)
{
    frag->base.des_segments = &frag->segment;
    frag->base.des_segment_count = 1;
}
static OBJ_CLASS_INSTANCE(router_frag_t, mca_btl_base_descriptor_t, router_frag_construct, NULL);

/* MCA parameters (btl_freeflow_router_*), registered by mca_btl_freeflow_router_register_params. */
static struct {
    unsigned int eager_limit;
    unsigned int max_send_size;
    unsigned int yield_after;
} param = {
    .eager_limit = 64u * 1024u,
    .max_send_size = 256u * 1024u,
    .yield_after = 64u,
};

static struct {
    ff_agent_conn_t *agent;
    ff_route_t *route;
    bool open; /* route opened at init: our modex says so */
    bool module_live;
    opal_list_t endpoints;
    opal_list_t pending;   /* frags waiting for room in the up ring, in send order */
    opal_list_t completed; /* frags in the ring; callbacks run from progress */
    opal_free_list_t frags;
    unsigned int passes;
    opal_recursive_mutex_t lock;
    bool in_progress;
} router;

static int router_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                            struct mca_btl_base_endpoint_t **peers, struct opal_bitmap_t *reachable);
static int router_del_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                            struct mca_btl_base_endpoint_t **peers);
static int router_finalize(struct mca_btl_base_module_t *btl);
static mca_btl_base_descriptor_t *router_alloc(struct mca_btl_base_module_t *btl,
                                               struct mca_btl_base_endpoint_t *endpoint, uint8_t order, size_t size,
                                               uint32_t flags);
static int router_free(struct mca_btl_base_module_t *btl, mca_btl_base_descriptor_t *descriptor);
static mca_btl_base_descriptor_t *router_prepare_src(struct mca_btl_base_module_t *btl,
                                                     struct mca_btl_base_endpoint_t *endpoint,
                                                     struct opal_convertor_t *convertor, uint8_t order, size_t reserve,
                                                     size_t *size, uint32_t flags);
static int router_send(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                       struct mca_btl_base_descriptor_t *descriptor, mca_btl_base_tag_t tag);
static int router_sendi(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                        struct opal_convertor_t *convertor, void *header, size_t header_size, size_t payload_size,
                        uint8_t order, uint32_t flags, mca_btl_base_tag_t tag, mca_btl_base_descriptor_t **descriptor);

mca_btl_freeflow_module_t mca_btl_freeflow_router_module = {
    .super =
        {
            .btl_component = &mca_btl_freeflow_component.super,
            .btl_add_procs = router_add_procs,
            .btl_del_procs = router_del_procs,
            .btl_finalize = router_finalize,
            .btl_alloc = router_alloc,
            .btl_free = router_free,
            .btl_prepare_src = router_prepare_src,
            .btl_send = router_send,
            .btl_sendi = router_sendi,
            .btl_dump = mca_btl_base_dump,
            .btl_register_error = mca_btl_freeflow_register_error,
        },
};

static void router_fatal(opal_proc_t *proc, const char *message)
{
    mca_btl_freeflow_fatal_on(&mca_btl_freeflow_router_module, proc, message);
}

static void agent_gone(ff_status_t status)
{
    char message[768];
    snprintf(message, sizeof(message), "freeflow: %s: %s (%s); pairs on the router path (r) cannot continue. Aborting.",
             OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), ff_route_error(router.route), ff_status_name(status));
    router_fatal(NULL, message);
}

void mca_btl_freeflow_router_register_params(const mca_base_component_t *version)
{
    (void) mca_base_component_var_register(version, "router_eager_limit",
                                           "Path r (the router through the hosts' ffagents): largest message sent "
                                           "eagerly, in one record with ob1's header (bytes); larger ones use ob1's "
                                           "rendezvous and send pipeline.",
                                           MCA_BASE_VAR_TYPE_UNSIGNED_INT, NULL, 0, MCA_BASE_VAR_FLAG_SETTABLE,
                                           OPAL_INFO_LVL_5, MCA_BASE_VAR_SCOPE_READONLY, &param.eager_limit);
    (void) mca_base_component_var_register(version, "router_max_send_size",
                                           "Path r: largest fragment (bytes, at most 1048560: the up ring's record "
                                           "limit): ob1 pipelines large messages in pieces of this size, each one "
                                           "UCX message between the agents (rendezvous beyond UCX's threshold).",
                                           MCA_BASE_VAR_TYPE_UNSIGNED_INT, NULL, 0, MCA_BASE_VAR_FLAG_SETTABLE,
                                           OPAL_INFO_LVL_5, MCA_BASE_VAR_SCOPE_READONLY, &param.max_send_size);
    (void) mca_base_component_var_register(version, "router_yield_after",
                                           "Path r: progress passes in a row with nothing moved after which this "
                                           "rank calls sched_yield() on every further empty pass, so the host's "
                                           "ffagent, which shares the CPUs, runs at once when it has work (a doorbell "
                                           "from this rank, data from another host) instead of waiting for the "
                                           "scheduler to preempt a rank that never sleeps. 0: never yield (spin).",
                                           MCA_BASE_VAR_TYPE_UNSIGNED_INT, NULL, 0, MCA_BASE_VAR_FLAG_SETTABLE,
                                           OPAL_INFO_LVL_5, MCA_BASE_VAR_SCOPE_READONLY, &param.yield_after);
}

bool mca_btl_freeflow_router_wanted(void)
{
    const mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    if (!c->paths_apply_to_me) {
        return false;
    }
    const uint32_t me = OPAL_PROC_MY_NAME.vpid, n = ff_path_table_num_ranks(c->paths);
    for (uint32_t peer = 0; peer < n; ++peer) {
        if (FF_PATH_ROUTER == ff_path_table_path(c->paths, me, peer)) {
            return true;
        }
    }
    return false;
}

bool mca_btl_freeflow_router_init(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    ff_agent_refusal_t why = FF_AGENT_OK;
    ff_status_t status = mca_btl_freeflow_agent_acquire(&router.agent, &why);
    if (FF_OK == status) {
        status = ff_route_open(router.agent, &router.route, &why);
        if (FF_OK != status) {
            mca_btl_freeflow_agent_release(router.agent);
            router.agent = NULL;
        }
    }
    if (FF_OK != status) {
        /* Declining is safe: our modex says "no router", so the peers decline too. */
        MCA_BTL_FREEFLOW_SHOW_HELP("agent-unreachable-router", c->dir, ff_status_name(status),
                                   FF_AGENT_OK != why ? ": " : "", FF_AGENT_OK != why ? ff_agent_refusal_describe(why) : "");
        router.agent = NULL;
        router.route = NULL;
        return false;
    }
    const unsigned int max_limit =
        ROUTER_MAX_SEND_LIMIT < ff_route_max_message() ? ROUTER_MAX_SEND_LIMIT : ff_route_max_message();
    if (param.max_send_size > max_limit || param.eager_limit < 1024u || param.eager_limit > param.max_send_size) {
        MCA_BTL_FREEFLOW_SHOW_HELP("router-limits-out-of-range", param.eager_limit, param.max_send_size, max_limit);
        param.eager_limit = 64u * 1024u;
        param.max_send_size = 256u * 1024u;
    }
    ff_route_set_yield(router.route, param.yield_after);
    OBJ_CONSTRUCT(&router.lock, opal_recursive_mutex_t);
    OBJ_CONSTRUCT(&router.endpoints, opal_list_t);
    OBJ_CONSTRUCT(&router.pending, opal_list_t);
    OBJ_CONSTRUCT(&router.completed, opal_list_t);
    OBJ_CONSTRUCT(&router.frags, opal_free_list_t);
    if (OPAL_SUCCESS != opal_free_list_init(&router.frags, sizeof(router_frag_t), opal_cache_line_size,
                                            OBJ_CLASS(router_frag_t), param.max_send_size, opal_cache_line_size, 8, -1,
                                            8, NULL, 0, NULL, NULL, NULL)) {
        ff_route_close(router.route);
        mca_btl_freeflow_agent_release(router.agent);
        router.route = NULL;
        router.agent = NULL;
        return false;
    }
    mca_btl_base_module_t *btl = &mca_btl_freeflow_router_module.super;
    btl->btl_exclusivity = mca_btl_freeflow_module.super.btl_exclusivity;
    btl->btl_eager_limit = param.eager_limit;
    btl->btl_rndv_eager_limit = param.eager_limit;
    btl->btl_max_send_size = param.max_send_size;
    btl->btl_rdma_pipeline_send_length = param.eager_limit;
    btl->btl_rdma_pipeline_frag_size = param.max_send_size;
    btl->btl_min_rdma_pipeline_size = INT_MAX;
    btl->btl_latency = 10;
    btl->btl_bandwidth = 4000; /* MB/s; only relative to other BTLs */
    btl->btl_flags = MCA_BTL_FLAGS_SEND;
    router.open = true;
    router.module_live = true;
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s opened a router route with the host's ffagent (%s/agent.sock)",
           OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), c->dir);
    return true;
}

bool mca_btl_freeflow_router_open(void)
{
    return router.open;
}

/* NULL when the pair can use `r`; else the reason it cannot (docs/btl-report.md): the core's pair policy. */
const char *mca_btl_freeflow_router_decline_reason(const opal_proc_t *proc, const mca_btl_freeflow_modex_t *modex)
{
    static _Thread_local char reason[48]; /* read by the caller at once */
    (void) modex;                         /* the pair policy reads the modex itself */
    return FF_PAIR_ROUTE_ROUTER == mca_btl_freeflow_pair_route(proc, reason, sizeof(reason)) ? NULL : reason;
}

static router_endpoint_t *find_endpoint(uint64_t peer_id)
{
    router_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &router.endpoints, router_endpoint_t)
    {
        if (endpoint->peer_id == peer_id) {
            return endpoint;
        }
    }
    return NULL;
}

bool mca_btl_freeflow_router_carries(uint64_t peer_id)
{
    return router.open && NULL != find_endpoint(peer_id);
}

static int router_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                            struct mca_btl_base_endpoint_t **peers, struct opal_bitmap_t *reachable)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    const opal_proc_t *self = opal_proc_local_get();
    int rc = OPAL_SUCCESS;
    (void) btl;
    OPAL_THREAD_LOCK(&c->lock);
    for (size_t i = 0; i < nprocs; ++i) {
        opal_proc_t *proc = procs[i];
        peers[i] = NULL;
        if (proc == self) {
            continue;
        }
        const uint64_t peer_id = mca_btl_freeflow_peer_id(proc->proc_name);
        router_endpoint_t *endpoint = find_endpoint(peer_id);
        if (NULL == endpoint) {
            mca_btl_freeflow_modex_t *modex = NULL;
            size_t size = 0;
            OPAL_MODEX_RECV(rc, &c->super.btl_version, &proc->proc_name, (void **) &modex, &size);
            rc = OPAL_SUCCESS;
            const bool usable = NULL != modex && size == sizeof(*modex) &&
                                MCA_BTL_FREEFLOW_MODEX_VERSION == modex->version && modex->owner_id == peer_id &&
                                ff_job_key_equal(&modex->key, &c->key) &&
                                NULL == mca_btl_freeflow_router_decline_reason(proc, modex);
            free(modex);
            if (!usable) {
                continue; /* the shm module records why (decide()) */
            }
            endpoint = OBJ_NEW(router_endpoint_t);
            if (NULL == endpoint) {
                rc = OPAL_ERR_OUT_OF_RESOURCE;
                break;
            }
            endpoint->proc = proc;
            endpoint->peer_id = peer_id;
            endpoint->peer_host = (uint32_t) ff_path_table_host_of(c->paths, proc->proc_name.vpid);
            endpoint->sent_fragments = 0;
            endpoint->sent_bytes = 0;
            opal_list_append(&router.endpoints, &endpoint->super);
            FF_LOG(FF_VERBOSE_DECISIONS, "freeflow: %s -> %s: router (planned r; both routes open)",
                   OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(proc->proc_name));
        }
        if (NULL != reachable && OPAL_SUCCESS != (rc = opal_bitmap_set_bit(reachable, (int) i))) {
            break;
        }
        peers[i] = (struct mca_btl_base_endpoint_t *) (void *) endpoint;
    }
    OPAL_THREAD_UNLOCK(&c->lock);
    return rc;
}

static int router_del_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                            struct mca_btl_base_endpoint_t **peers)
{
    /* Endpoints live until finalize, as in the other modules. */
    (void) btl;
    (void) nprocs;
    (void) procs;
    (void) peers;
    return OPAL_SUCCESS;
}

static router_frag_t *frag_get(router_endpoint_t *endpoint)
{
    _Static_assert(offsetof(router_frag_t, inplace) ==
                       offsetof(router_frag_t, segment) + sizeof(mca_btl_base_segment_t),
                   "segments must be adjacent");
    router_frag_t *frag = (router_frag_t *) opal_free_list_get(&router.frags);
    if (OPAL_LIKELY(NULL != frag)) {
        frag->endpoint = endpoint;
        frag->base.des_segments = &frag->segment;
        frag->base.des_segment_count = 1;
        frag->base.des_cbfunc = NULL;
        frag->base.des_cbdata = NULL;
        frag->base.des_context = NULL;
        frag->segment.seg_addr.pval = frag->base.super.ptr;
        frag->inplace.seg_len = 0;
    }
    return frag;
}

static mca_btl_base_descriptor_t *router_alloc(struct mca_btl_base_module_t *btl,
                                               struct mca_btl_base_endpoint_t *endpoint, uint8_t order, size_t size,
                                               uint32_t flags)
{
    (void) btl;
    if (size > param.max_send_size) {
        return NULL;
    }
    router_frag_t *frag = frag_get((router_endpoint_t *) (void *) endpoint);
    if (NULL == frag) {
        return NULL;
    }
    frag->segment.seg_len = size;
    frag->base.des_flags = flags;
    frag->base.order = order;
    return &frag->base;
}

static int router_free(struct mca_btl_base_module_t *btl, mca_btl_base_descriptor_t *descriptor)
{
    (void) btl;
    opal_free_list_return(&router.frags, (opal_free_list_item_t *) descriptor);
    return OPAL_SUCCESS;
}

static mca_btl_base_descriptor_t *router_prepare_src(struct mca_btl_base_module_t *btl,
                                                     struct mca_btl_base_endpoint_t *endpoint,
                                                     struct opal_convertor_t *convertor, uint8_t order, size_t reserve,
                                                     size_t *size, uint32_t flags)
{
    (void) btl;
    if (reserve >= param.max_send_size) {
        return NULL;
    }
    router_frag_t *frag = frag_get((router_endpoint_t *) (void *) endpoint);
    if (NULL == frag) {
        return NULL;
    }
    const size_t room = param.max_send_size - reserve;
    size_t want = *size < room ? *size : room;
    if (want > 0 && !opal_convertor_need_buffers(convertor)) {
        /* contiguous: the convertor hands out a pointer into the user's buffer; send copies from there
         * into the ring (one copy on this side) */
        struct iovec iov = {.iov_base = NULL, .iov_len = want};
        uint32_t iov_count = 1;
        if (opal_convertor_pack(convertor, &iov, &iov_count, &want) < 0) {
            opal_free_list_return(&router.frags, (opal_free_list_item_t *) frag);
            return NULL;
        }
        frag->inplace.seg_addr.pval = iov.iov_base;
        frag->inplace.seg_len = want;
        frag->base.des_segment_count = 2;
        *size = want;
        frag->segment.seg_len = reserve;
        frag->base.des_flags = flags;
        frag->base.order = order;
        return &frag->base;
    }
    if (want > 0) {
        struct iovec iov = {.iov_base = (unsigned char *) frag->base.super.ptr + reserve, .iov_len = want};
        uint32_t iov_count = 1;
        if (opal_convertor_pack(convertor, &iov, &iov_count, &want) < 0) {
            opal_free_list_return(&router.frags, (opal_free_list_item_t *) frag);
            return NULL;
        }
    }
    *size = want;
    frag->segment.seg_len = reserve + want;
    frag->base.des_flags = flags;
    frag->base.order = order;
    return &frag->base;
}

/* Copies the frag into the up ring; false while the ring has no room. */
static bool write_frag(router_frag_t *frag)
{
    const size_t head = frag->segment.seg_len, body = frag->inplace.seg_len;
    const uint32_t len = (uint32_t) (head + body);
    uint8_t *p = ff_route_reserve(router.route, frag->endpoint->peer_id, frag->endpoint->peer_host, len);
    if (NULL == p) {
        return false;
    }
    memcpy(p, frag->segment.seg_addr.pval, head);
    if (body) {
        ff_copy(p + head, frag->inplace.seg_addr.pval, body);
    }
    ff_route_commit(router.route, p, len, len, frag->tag);
    return true;
}

static int router_send(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *ep,
                       struct mca_btl_base_descriptor_t *descriptor, mca_btl_base_tag_t tag)
{
    router_endpoint_t *endpoint = (router_endpoint_t *) (void *) ep;
    router_frag_t *frag = (router_frag_t *) descriptor;
    (void) btl;
    OPAL_THREAD_LOCK(&router.lock);
    /* OPAL_SUCCESS promises ob1 a completion callback (open-mpi/ompi#3845): always call it. */
    frag->base.des_flags |= MCA_BTL_DES_SEND_ALWAYS_CALLBACK;
    frag->tag = tag;
    frag->endpoint = endpoint;
    ++endpoint->sent_fragments;
    endpoint->sent_bytes += frag->segment.seg_len + frag->inplace.seg_len;
    if (opal_list_is_empty(&router.pending) && write_frag(frag)) {
        opal_list_append(&router.completed, &frag->base.super.super);
    } else {
        opal_list_append(&router.pending, &frag->base.super.super);
    }
    OPAL_THREAD_UNLOCK(&router.lock);
    return OPAL_SUCCESS;
}

/*
 * Sends a small message at once, or declines (OPAL_ERR_OUT_OF_RESOURCE) and ob1 falls back to a request.
 * Needed for correctness, not only speed: osc pt2pt answers MPI_Compare_and_swap with a blocking MPI_Send
 * from its opal_progress callback (ompi_osc_pt2pt_cswap_start). When the thread is already waiting on
 * another request and MPI runs with threads (any level above MPI_THREAD_SINGLE), that nested wait
 * (ompi_sync_wait_mt) is not the progress owner and sleeps on a condition variable without progressing,
 * so a send that completes only from progress never completes: the rank hangs. A send that is complete
 * when sendi returns never waits. (vader has sendi; tcp's send returns 1 when it wrote at once.)
 */
static int router_sendi(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *ep,
                        struct opal_convertor_t *convertor, void *header, size_t header_size, size_t payload_size,
                        uint8_t order, uint32_t flags, mca_btl_base_tag_t tag, mca_btl_base_descriptor_t **descriptor)
{
    router_endpoint_t *endpoint = (router_endpoint_t *) (void *) ep;
    (void) btl;
    (void) order;
    (void) flags;
    if (NULL != descriptor) {
        *descriptor = NULL;
    }
    if (header_size + payload_size > param.eager_limit) {
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    const uint32_t len = (uint32_t) (header_size + payload_size);
    OPAL_THREAD_LOCK(&router.lock);
    /* Behind queued fragments it would overtake them (ob1 matches in send order). The convertor is
     * untouched until the room is reserved: ob1 resets it on a decline only when it gets a descriptor. */
    uint8_t *p = opal_list_is_empty(&router.pending)
                     ? ff_route_reserve(router.route, endpoint->peer_id, endpoint->peer_host, len)
                     : NULL;
    if (NULL == p) {
        OPAL_THREAD_UNLOCK(&router.lock);
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    memcpy(p, header, header_size);
    if (payload_size > 0) {
        struct iovec iov = {.iov_base = p + header_size, .iov_len = payload_size};
        uint32_t iov_count = 1;
        size_t packed = payload_size;
        if (OPAL_UNLIKELY(opal_convertor_pack(convertor, &iov, &iov_count, &packed) < 0 || packed != payload_size)) {
            OPAL_THREAD_UNLOCK(&router.lock);
            char message[256];
            snprintf(message, sizeof(message),
                     "freeflow: %s: the convertor packed %zu of the %zu bytes ob1 asked the router module to send. "
                     "Aborting.",
                     OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), packed, payload_size);
            router_fatal(endpoint->proc, message);
            return OPAL_ERROR;
        }
    }
    ff_route_commit(router.route, p, len, len, tag);
    ++endpoint->sent_fragments;
    endpoint->sent_bytes += len;
    OPAL_THREAD_UNLOCK(&router.lock);
    return OPAL_SUCCESS;
}

static int flush_pending(void)
{
    int count = 0;
    router_frag_t *frag;
    while (NULL != (frag = (router_frag_t *) opal_list_get_first(&router.pending)) &&
           &frag->base.super.super != opal_list_get_end(&router.pending) && write_frag(frag)) {
        opal_list_remove_first(&router.pending);
        opal_list_append(&router.completed, &frag->base.super.super);
        ++count;
    }
    return count;
}

static int run_completions(void)
{
    int count = 0;
    opal_list_item_t *item;
    while (NULL != (item = opal_list_remove_first(&router.completed))) {
        router_frag_t *frag = (router_frag_t *) item;
        const uint32_t flags = frag->base.des_flags; /* the callback may free the descriptor */
        if (flags & MCA_BTL_DES_SEND_ALWAYS_CALLBACK) {
            frag->base.des_cbfunc(&mca_btl_freeflow_router_module.super,
                                  (struct mca_btl_base_endpoint_t *) (void *) frag->endpoint, &frag->base,
                                  OPAL_SUCCESS);
        }
        if (flags & MCA_BTL_DES_FLAGS_BTL_OWNERSHIP) {
            opal_free_list_return(&router.frags, (opal_free_list_item_t *) frag);
        }
        ++count;
    }
    return count;
}

static int poll_down(void)
{
    int delivered = 0;
    ff_route_msg_t msg;
    while (delivered < RECV_BATCH && ff_route_peek(router.route, &msg)) {
        const mca_btl_active_message_callback_t *reg = mca_btl_base_active_message_trigger + msg.tag;
        if (OPAL_UNLIKELY(NULL == reg->cbfunc)) {
            char message[256];
            snprintf(message, sizeof(message),
                     "freeflow: %s: the router delivered a fragment with tag %u that no layer registered (from "
                     "rank %llu). Aborting.",
                     OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), msg.tag, (unsigned long long) (msg.src_owner & 0xffffffffu));
            router_fatal(NULL, message);
        }
        mca_btl_base_segment_t segment = {.seg_addr.pval = (void *) msg.data, .seg_len = msg.len};
        mca_btl_base_descriptor_t descriptor = {.des_segments = &segment, .des_segment_count = 1};
        reg->cbfunc(&mca_btl_freeflow_router_module.super, msg.tag, &descriptor, reg->cbdata);
        ff_route_consume(router.route);
        ++delivered;
    }
    return delivered;
}

int mca_btl_freeflow_router_progress(int moved_elsewhere)
{
    if (!router.module_live || OPAL_THREAD_TRYLOCK(&router.lock)) {
        return 0; /* another thread is at it */
    }
    if (router.in_progress) {
        OPAL_THREAD_UNLOCK(&router.lock);
        return 0; /* an ob1 callback progressing again: the outer pass finishes the work */
    }
    router.in_progress = true;
    int count = poll_down();
    if (!opal_list_is_empty(&router.pending)) {
        count += flush_pending();
    }
    if (!opal_list_is_empty(&router.completed)) {
        count += run_completions();
    }
    if (OPAL_UNLIKELY(0 == (router.passes++ % CHECK_EVERY))) {
        const ff_status_t status = ff_route_check(router.route);
        if (FF_OK != status) {
            agent_gone(status);
        }
    }
    /* The yield policy sees the whole pass (every freeflow path): after btl_freeflow_router_yield_after empty
     * passes the rank yields its CPU on each further one, for the agent of this host may be waiting for it
     * (docs/agent.md, "The `r` plane"). Under the lock this pass already holds. */
    (void) ff_route_poll_pass(router.route, count + moved_elsewhere > 0);
    router.in_progress = false;
    OPAL_THREAD_UNLOCK(&router.lock);
    return count;
}

/* Lines of docs/btl-report.md for the pairs this module carried. */
void mca_btl_freeflow_router_report(FILE *file)
{
    if (!router.open) {
        return;
    }
    router_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &router.endpoints, router_endpoint_t)
    {
        if ((opal_jobid_t) (endpoint->peer_id >> 32) == OPAL_PROC_MY_NAME.jobid) {
            fprintf(file, "peer %u router %llu %llu\n", (unsigned) (endpoint->peer_id & 0xffffffffu),
                    (unsigned long long) endpoint->sent_fragments, (unsigned long long) endpoint->sent_bytes);
        }
    }
}

/* Hands everything queued to the agent and waits until the agent has sent it (MPI_Finalize must not drop
 * data), then closes the route. Endpoints stay for the report. */
static void shutdown_route(void)
{
    if (!router.module_live) {
        return;
    }
    const time_t deadline = time(NULL) + FINALIZE_DRAIN_S;
    while (!opal_list_is_empty(&router.pending) || !ff_route_sent_all(router.route)) {
        (void) mca_btl_freeflow_router_progress(0);
        const ff_status_t status = ff_route_check(router.route);
        if (FF_OK != status) {
            agent_gone(status);
        }
        if (time(NULL) > deadline) {
            MCA_BTL_FREEFLOW_SHOW_HELP("router-drain-timeout", FINALIZE_DRAIN_S);
            break;
        }
        sched_yield();
    }
    (void) run_completions();
    router.module_live = false;
    ff_route_close(router.route);
    router.route = NULL;
    mca_btl_freeflow_agent_release(router.agent);
    router.agent = NULL;
}

void mca_btl_freeflow_router_shutdown(void)
{
    if (router.open) {
        shutdown_route();
    }
}

void mca_btl_freeflow_router_release(void)
{
    if (!router.open) {
        return;
    }
    shutdown_route();
    OPAL_LIST_DESTRUCT(&router.endpoints);
    OBJ_DESTRUCT(&router.pending);
    OBJ_DESTRUCT(&router.completed);
    OBJ_DESTRUCT(&router.frags);
    OBJ_DESTRUCT(&router.lock);
    router.open = false;
}

static int router_finalize(struct mca_btl_base_module_t *btl)
{
    (void) btl;
    mca_btl_freeflow_router_shutdown();
    return OPAL_SUCCESS;
}
