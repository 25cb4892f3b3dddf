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
#include "btl_freeflow_stream.h"

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

/* The router keeps nothing per peer beyond what every stream module keeps. */
typedef mca_btl_freeflow_stream_endpoint_t router_endpoint_t;

typedef struct router_frag {
    mca_btl_freeflow_stream_frag_t stream; /* the in-place segment is copied into the ring at send */
    uint8_t tag;
} router_frag_t;
static OBJ_CLASS_INSTANCE(router_frag_t, mca_btl_freeflow_stream_frag_t, NULL, NULL);

/* MCA parameters (btl_freeflow_router_*): defaults and help in router_params below. */
static struct {
    unsigned int eager_limit;
    unsigned int max_send_size;
    unsigned int yield_after;
} param;

static struct {
    ff_agent_conn_t *agent;
    ff_route_t *route;
    bool open; /* route opened at init: our modex says so */
    bool module_live;
    mca_btl_freeflow_stream_t stream; /* endpoints, descriptors; `completed`: frags in the ring */
    opal_list_t pending;              /* frags waiting for room in the up ring, in send order */
    unsigned int passes;
    opal_recursive_mutex_t lock;
    bool in_progress;
} router;

static int router_finalize(struct mca_btl_base_module_t *btl);
static int router_send(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                       struct mca_btl_base_descriptor_t *descriptor, mca_btl_base_tag_t tag);
static int router_sendi(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                        struct opal_convertor_t *convertor, void *header, size_t header_size, size_t payload_size,
                        uint8_t order, uint32_t flags, mca_btl_base_tag_t tag, mca_btl_base_descriptor_t **descriptor);

mca_btl_freeflow_module_t mca_btl_freeflow_router_module = {
    .super =
        {
            .btl_component = &mca_btl_freeflow_component.super,
            .btl_add_procs = mca_btl_freeflow_stream_add_procs,
            .btl_del_procs = mca_btl_freeflow_del_procs,
            .btl_finalize = router_finalize,
            .btl_alloc = mca_btl_freeflow_stream_alloc,
            .btl_free = mca_btl_freeflow_stream_free,
            .btl_prepare_src = mca_btl_freeflow_stream_prepare_src,
            .btl_send = router_send,
            .btl_sendi = router_sendi,
            .btl_dump = mca_btl_base_dump,
            .btl_register_error = mca_btl_freeflow_register_error,
        },
    .stream = &router.stream,
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

static const mca_btl_freeflow_param_t router_params[] = {
    {.name = "router_eager_limit",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.eager_limit,
     .default_number = 64u * 1024u,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path r (the router through the hosts' ffagents): largest message sent eagerly, in one record with ob1's "
             "header (bytes); larger ones use ob1's rendezvous and send pipeline."},
    {.name = "router_max_send_size",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.max_send_size,
     .default_number = 256u * 1024u,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help =
         "Path r: largest fragment (bytes, at most 1048560: the up ring's record limit): ob1 pipelines large messages "
         "in pieces of this size, each one UCX message between the agents (rendezvous beyond UCX's threshold)."},
    {.name = "router_yield_after",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.yield_after,
     .default_number = 64u,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path r: progress passes in a row with nothing moved after which this rank calls sched_yield() on every "
             "further empty pass, so the host's ffagent, which shares the CPUs, runs at once when it has work (a "
             "doorbell from this rank, data from another host) instead of waiting for the scheduler to preempt a rank "
             "that never sleeps. 0: never yield (spin)."},
};

void mca_btl_freeflow_router_register_params(const mca_base_component_t *version)
{
    mca_btl_freeflow_register_params(version, router_params, sizeof(router_params) / sizeof(router_params[0]));
}

bool mca_btl_freeflow_router_wanted(void)
{
    return mca_btl_freeflow_path_planned(1u << FF_PATH_ROUTER);
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
                                   FF_AGENT_OK != why ? ": " : "",
                                   FF_AGENT_OK != why ? ff_agent_refusal_describe(why) : "");
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
    OBJ_CONSTRUCT(&router.pending, opal_list_t);
    router.stream = (mca_btl_freeflow_stream_t){.module = &mca_btl_freeflow_router_module,
                                                .route = FF_PAIR_ROUTE_ROUTER,
                                                .endpoint_class = OBJ_CLASS(mca_btl_freeflow_stream_endpoint_t),
                                                .decision = "router (planned r; both routes open)"};
    if (OPAL_SUCCESS != mca_btl_freeflow_stream_init(&router.stream, OBJ_CLASS(router_frag_t), sizeof(router_frag_t),
                                                     param.eager_limit, param.max_send_size)) {
        ff_route_close(router.route);
        mca_btl_freeflow_agent_release(router.agent);
        router.route = NULL;
        router.agent = NULL;
        return false;
    }
    mca_btl_base_module_t *btl = &mca_btl_freeflow_router_module.super;
    btl->btl_rdma_pipeline_send_length = param.eager_limit;
    btl->btl_rdma_pipeline_frag_size = param.max_send_size;
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

bool mca_btl_freeflow_router_carries(uint64_t peer_id)
{
    return router.open && NULL != mca_btl_freeflow_stream_find_endpoint(&router.stream, peer_id);
}

/* Copies the frag into the up ring; false while the ring has no room. */
static bool write_frag(router_frag_t *frag)
{
    const size_t head = frag->stream.segment.seg_len, body = frag->stream.inplace.seg_len;
    const uint32_t len = (uint32_t) (head + body);
    uint8_t *p = ff_route_reserve(router.route, frag->stream.endpoint->peer_id, frag->stream.endpoint->peer_host, len);
    if (NULL == p) {
        return false;
    }
    memcpy(p, frag->stream.segment.seg_addr.pval, head);
    if (body) {
        ff_copy(p + head, frag->stream.inplace.seg_addr.pval, body);
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
    frag->stream.base.des_flags |= MCA_BTL_DES_SEND_ALWAYS_CALLBACK;
    frag->tag = tag;
    frag->stream.endpoint = endpoint;
    ++endpoint->sent_fragments;
    endpoint->sent_bytes += frag->stream.segment.seg_len + frag->stream.inplace.seg_len;
    if (opal_list_is_empty(&router.pending) && write_frag(frag)) {
        opal_list_append(&router.stream.completed, &frag->stream.base.super.super);
    } else {
        opal_list_append(&router.pending, &frag->stream.base.super.super);
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
           &frag->stream.base.super.super != opal_list_get_end(&router.pending) && write_frag(frag)) {
        opal_list_remove_first(&router.pending);
        opal_list_append(&router.stream.completed, &frag->stream.base.super.super);
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
    if (!opal_list_is_empty(&router.stream.completed)) {
        count += mca_btl_freeflow_stream_run_completions(&router.stream);
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
    OPAL_LIST_FOREACH(endpoint, &router.stream.endpoints, router_endpoint_t)
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
    (void) mca_btl_freeflow_stream_run_completions(&router.stream);
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
    mca_btl_freeflow_stream_fini(&router.stream);
    OBJ_DESTRUCT(&router.pending);
    OBJ_DESTRUCT(&router.lock);
    router.open = false;
}

static int router_finalize(struct mca_btl_base_module_t *btl)
{
    (void) btl;
    mca_btl_freeflow_router_shutdown();
    return OPAL_SUCCESS;
}
