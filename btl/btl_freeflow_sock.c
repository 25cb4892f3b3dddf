/*
 * Path `h` (host-network handoff, issue 8): a second module of the freeflow component that carries pairs
 * of ranks on different hosts over TCP sockets the hosts' ffagents connect across the underlay and hand
 * to the ranks (docs/agent.md). The shared-memory module is untouched: ob1 sees two BTLs of one
 * component, and each peer is reachable through exactly one of them, so the shm hot path gains nothing.
 *
 * Decision (symmetric from data both sides see identically): a pair uses `h` iff the path table plans
 * `h` in both directions and both ranks published "registered with my agent" in the modex. Registration
 * happens in component init, before the modex is published, and the peer's modex is only visible after
 * it was published, so a peer that says "registered" is registered when we connect. If either agent is
 * unreachable at init, that rank publishes "not registered" and both sides decline (`agent-unreachable`
 * on that side, `peer-agent-unreachable` on the other): the pair goes to the tcp BTL in both directions.
 *
 * Channels: one socket per ORDERED pair. A rank sends only on the socket it asked its agent for (at its
 * first send to the peer: a bounded blocking ff_agent_connect, ~1 ms) and receives on every socket its
 * agent pushes to it (ff_agent_accept, polled from progress). Simultaneous first sends therefore need no
 * tie-breaking, and each direction keeps its order (one stream).
 *
 * Frames: an 8-byte header (payload length, ob1 tag) and the payload. Sends are non-blocking: whatever
 * the kernel does not take waits in the endpoint's queue, in order, and progress writes it later; a
 * descriptor's completion callback runs only once all of its bytes are in the kernel. Receives read as
 * much as the socket has into a per-socket buffer and hand every complete frame to ob1 in place.
 *
 * Failures are fatal MPI errors through ob1's error callback, never hangs: the agent's registration
 * closing (the agent died or dropped the job), a socket error, or a peer closing in the middle of a frame.
 */
#include "btl_freeflow.h"

#include "opal/class/opal_bitmap.h"
#include "opal/datatype/opal_convertor.h"
#include "opal/mca/btl/base/base.h"
#include "opal/mca/pmix/pmix.h"
#include "opal/util/output.h"
#include "opal/util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* TCP-sized fragments: ob1 pipelines large messages in max_send_size pieces; 256 KiB frames keep the
 * per-frame syscalls far below the copy cost, 64 KiB eager matches the tcp BTL. */
#define SOCK_EAGER_LIMIT (64u * 1024u)
#define SOCK_MAX_SEND (256u * 1024u)
#define SOCK_HEADER_BYTES 8u
/* The receive buffer holds several frames so that one recv can take what the kernel has. */
#define SOCK_RECV_BUFFER (4u * (SOCK_MAX_SEND + SOCK_HEADER_BYTES))
/* ff_agent_accept is one recvmsg: look for new channels every this many progress passes. */
#define ACCEPT_EVERY 128u
#define CONNECT_TIMEOUT_MS 5000

typedef struct sock_header {
    uint32_t len;
    uint8_t tag;
    uint8_t pad[3];
} sock_header_t;

typedef struct sock_endpoint {
    opal_list_item_t super; /* on sock.endpoints */
    opal_proc_t *proc;
    uint64_t peer_id;
    uint32_t peer_host;
    int fd;                 /* the socket we send on; -1 until the first send */
    opal_list_t pending;    /* frags not yet fully in the kernel, in send order */
    bool on_pending_list;
    opal_list_item_t pending_item;
    uint64_t sent_fragments;
    uint64_t sent_bytes;
} sock_endpoint_t;
static OBJ_CLASS_INSTANCE(sock_endpoint_t, opal_list_item_t, NULL, NULL);

typedef struct sock_frag {
    mca_btl_base_descriptor_t base;
    /* [0]: in our buffer (ob1's header, small data); [1]: contiguous user data sent in place, like the tcp
     * BTL (saves the sender a copy of every large fragment); ob1 keeps it valid until completion */
    mca_btl_base_segment_t segment;
    mca_btl_base_segment_t inplace;
    sock_endpoint_t *endpoint;
    sock_header_t header;
    size_t written; /* bytes of header + payload in the kernel */
} sock_frag_t;
static void sock_frag_construct(sock_frag_t *frag)
{
    frag->base.des_segments = &frag->segment;
    frag->base.des_segment_count = 1;
}
static OBJ_CLASS_INSTANCE(sock_frag_t, mca_btl_base_descriptor_t, sock_frag_construct, NULL);

typedef struct sock_inbound {
    int fd;
    uint64_t peer_id;
    unsigned char *buffer;
    size_t start; /* first byte not yet delivered */
    size_t have;  /* end of the bytes received */
} sock_inbound_t;

static struct {
    ff_agent_conn_t *agent;   /* our registration; NULL when not registered */
    bool registered;
    bool module_live;
    opal_list_t endpoints;
    opal_list_t pending_endpoints;
    opal_list_t completed;    /* frags whose bytes are in the kernel; callbacks run from progress */
    opal_free_list_t frags;
    sock_inbound_t *inbound;
    size_t inbound_count, inbound_capacity;
    unsigned int passes;
    /* MPI_THREAD_MULTIPLE: one thread at a time writes a socket, reads the channels, runs completions.
     * Recursive: ob1's callbacks, run under it, send again on the same thread. A no-op without threads. */
    opal_recursive_mutex_t lock;
    bool in_progress;
} sock;

static int sock_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                          struct mca_btl_base_endpoint_t **peers, struct opal_bitmap_t *reachable);
static int sock_del_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                          struct mca_btl_base_endpoint_t **peers);
static int sock_finalize(struct mca_btl_base_module_t *btl);
static mca_btl_base_descriptor_t *sock_alloc(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                                             uint8_t order, size_t size, uint32_t flags);
static int sock_free(struct mca_btl_base_module_t *btl, mca_btl_base_descriptor_t *descriptor);
static mca_btl_base_descriptor_t *sock_prepare_src(struct mca_btl_base_module_t *btl,
                                                   struct mca_btl_base_endpoint_t *endpoint,
                                                   struct opal_convertor_t *convertor, uint8_t order, size_t reserve,
                                                   size_t *size, uint32_t flags);
static int sock_send(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                     struct mca_btl_base_descriptor_t *descriptor, mca_btl_base_tag_t tag);

mca_btl_freeflow_module_t mca_btl_freeflow_sock_module = {
    .super = {
        .btl_component = &mca_btl_freeflow_component.super,
        .btl_add_procs = sock_add_procs,
        .btl_del_procs = sock_del_procs,
        .btl_finalize = sock_finalize,
        .btl_alloc = sock_alloc,
        .btl_free = sock_free,
        .btl_prepare_src = sock_prepare_src,
        .btl_send = sock_send,
        .btl_dump = mca_btl_base_dump,
        .btl_register_error = mca_btl_freeflow_register_error,
    },
};

static void sock_fatal(opal_proc_t *proc, const char *message)
{
    mca_btl_freeflow_fatal_on(&mca_btl_freeflow_sock_module, proc, message);
}

bool mca_btl_freeflow_sock_wanted(void)
{
    const mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    if (!c->paths_apply_to_me) {
        return false;
    }
    const uint32_t me = OPAL_PROC_MY_NAME.vpid, n = ff_path_table_num_ranks(c->paths);
    for (uint32_t peer = 0; peer < n; ++peer) {
        if (FF_PATH_HANDOFF == ff_path_table_path(c->paths, me, peer)) {
            return true;
        }
    }
    return false;
}

bool mca_btl_freeflow_sock_init(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    ff_agent_refusal_t why = FF_AGENT_OK;
    ff_status_t status = ff_agent_register(c->dir, &c->key, c->my_id, &sock.agent, &why);
    if (FF_OK != status) {
        /* Declining is safe: our modex says "not registered", so the peers decline too (see the top). */
        opal_output(0, "freeflow: %s: cannot register with this host's ffagent (%s/agent.sock): %s%s%s; pairs "
                       "planned for handoff use tcp (reason agent-unreachable)",
                    OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), c->dir, ff_status_name(status),
                    FF_AGENT_OK != why ? ": " : "", FF_AGENT_OK != why ? ff_agent_refusal_describe(why) : "");
        sock.agent = NULL;
        return false;
    }
    ff_agent_set_nonblocking(sock.agent, true);
    ff_agent_set_timeout(sock.agent, CONNECT_TIMEOUT_MS);
    OBJ_CONSTRUCT(&sock.lock, opal_recursive_mutex_t);
    OBJ_CONSTRUCT(&sock.endpoints, opal_list_t);
    OBJ_CONSTRUCT(&sock.pending_endpoints, opal_list_t);
    OBJ_CONSTRUCT(&sock.completed, opal_list_t);
    OBJ_CONSTRUCT(&sock.frags, opal_free_list_t);
    if (OPAL_SUCCESS != opal_free_list_init(&sock.frags, sizeof(sock_frag_t), opal_cache_line_size, OBJ_CLASS(sock_frag_t),
                                            SOCK_MAX_SEND, opal_cache_line_size, 8, -1, 8, NULL, 0, NULL, NULL, NULL)) {
        ff_agent_close(sock.agent);
        sock.agent = NULL;
        return false;
    }
    mca_btl_base_module_t *btl = &mca_btl_freeflow_sock_module.super;
    btl->btl_exclusivity = mca_btl_freeflow_module.super.btl_exclusivity;
    btl->btl_eager_limit = SOCK_EAGER_LIMIT;
    btl->btl_rndv_eager_limit = SOCK_EAGER_LIMIT;
    btl->btl_max_send_size = SOCK_MAX_SEND;
    btl->btl_rdma_pipeline_send_length = SOCK_EAGER_LIMIT;
    btl->btl_rdma_pipeline_frag_size = SOCK_MAX_SEND;
    btl->btl_min_rdma_pipeline_size = INT_MAX;
    btl->btl_latency = 10;
    btl->btl_bandwidth = 4000; /* MB/s; only relative to other BTLs */
    btl->btl_flags = MCA_BTL_FLAGS_SEND;
    sock.registered = true;
    sock.module_live = true;
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s registered with the host's ffagent (%s/agent.sock)",
           OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), c->dir);
    return true;
}

bool mca_btl_freeflow_sock_registered(void)
{
    return sock.registered;
}

/* NULL when the pair can use `h`; else the reason it cannot (docs/btl-report.md): the core's pair policy. */
const char *mca_btl_freeflow_sock_decline_reason(const opal_proc_t *proc, const mca_btl_freeflow_modex_t *modex)
{
    static _Thread_local char reason[48]; /* read by the caller at once */
    (void) modex; /* the pair policy reads the modex itself */
    return FF_PAIR_ROUTE_HANDOFF == mca_btl_freeflow_pair_route(proc, reason, sizeof(reason)) ? NULL : reason;
}

static sock_endpoint_t *find_endpoint(uint64_t peer_id)
{
    sock_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &sock.endpoints, sock_endpoint_t) {
        if (endpoint->peer_id == peer_id) {
            return endpoint;
        }
    }
    return NULL;
}

bool mca_btl_freeflow_sock_carries(uint64_t peer_id)
{
    return sock.registered && NULL != find_endpoint(peer_id);
}

static int sock_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
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
        const uint64_t peer_id = ((uint64_t) proc->proc_name.jobid << 32) | proc->proc_name.vpid;
        sock_endpoint_t *endpoint = find_endpoint(peer_id);
        if (NULL == endpoint) {
            mca_btl_freeflow_modex_t *modex = NULL;
            size_t size = 0;
            OPAL_MODEX_RECV(rc, &c->super.btl_version, &proc->proc_name, (void **) &modex, &size);
            rc = OPAL_SUCCESS;
            const bool usable = NULL != modex && size == sizeof(*modex) &&
                                MCA_BTL_FREEFLOW_MODEX_VERSION == modex->version && modex->owner_id == peer_id &&
                                ff_job_key_equal(&modex->key, &c->key) &&
                                NULL == mca_btl_freeflow_sock_decline_reason(proc, modex);
            free(modex);
            if (!usable) {
                continue; /* the shm module records why (decide()) */
            }
            endpoint = OBJ_NEW(sock_endpoint_t);
            if (NULL == endpoint) {
                rc = OPAL_ERR_OUT_OF_RESOURCE;
                break;
            }
            endpoint->proc = proc;
            endpoint->peer_id = peer_id;
            endpoint->peer_host = (uint32_t) ff_path_table_host_of(c->paths, proc->proc_name.vpid);
            /* OBJ_NEW does not zero the object */
            endpoint->fd = -1;
            endpoint->on_pending_list = false;
            endpoint->sent_fragments = 0;
            endpoint->sent_bytes = 0;
            OBJ_CONSTRUCT(&endpoint->pending, opal_list_t);
            OBJ_CONSTRUCT(&endpoint->pending_item, opal_list_item_t);
            opal_list_append(&sock.endpoints, &endpoint->super);
            FF_LOG(FF_VERBOSE_DECISIONS, "freeflow: %s -> %s: host-network handoff (planned h; both agents registered)",
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

static int sock_del_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                          struct mca_btl_base_endpoint_t **peers)
{
    /* Endpoints live until finalize, as in the shm module. */
    (void) btl;
    (void) nprocs;
    (void) procs;
    (void) peers;
    return OPAL_SUCCESS;
}

static sock_frag_t *frag_get(sock_endpoint_t *endpoint)
{
    /* des_segments is laid out as segment, inplace (adjacent members) */
    _Static_assert(offsetof(sock_frag_t, inplace) == offsetof(sock_frag_t, segment) + sizeof(mca_btl_base_segment_t),
                   "segments must be adjacent");
    sock_frag_t *frag = (sock_frag_t *) opal_free_list_get(&sock.frags);
    if (OPAL_LIKELY(NULL != frag)) {
        frag->endpoint = endpoint;
        frag->base.des_segments = &frag->segment;
        frag->base.des_segment_count = 1;
        frag->base.des_cbfunc = NULL;
        frag->base.des_cbdata = NULL;
        frag->base.des_context = NULL;
        frag->segment.seg_addr.pval = frag->base.super.ptr;
        frag->inplace.seg_len = 0;
        frag->written = 0;
    }
    return frag;
}

static mca_btl_base_descriptor_t *sock_alloc(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                                             uint8_t order, size_t size, uint32_t flags)
{
    (void) btl;
    if (size > SOCK_MAX_SEND) {
        return NULL;
    }
    sock_frag_t *frag = frag_get((sock_endpoint_t *) (void *) endpoint);
    if (NULL == frag) {
        return NULL;
    }
    frag->segment.seg_len = size;
    frag->base.des_flags = flags;
    frag->base.order = order;
    return &frag->base;
}

static int sock_free(struct mca_btl_base_module_t *btl, mca_btl_base_descriptor_t *descriptor)
{
    (void) btl;
    opal_free_list_return(&sock.frags, (opal_free_list_item_t *) descriptor);
    return OPAL_SUCCESS;
}

static mca_btl_base_descriptor_t *sock_prepare_src(struct mca_btl_base_module_t *btl,
                                                   struct mca_btl_base_endpoint_t *endpoint,
                                                   struct opal_convertor_t *convertor, uint8_t order, size_t reserve,
                                                   size_t *size, uint32_t flags)
{
    (void) btl;
    if (reserve >= SOCK_MAX_SEND) {
        return NULL;
    }
    sock_frag_t *frag = frag_get((sock_endpoint_t *) (void *) endpoint);
    if (NULL == frag) {
        return NULL;
    }
    size_t room = SOCK_MAX_SEND - reserve;
    size_t want = *size < room ? *size : room;
    if (want > 0 && !opal_convertor_need_buffers(convertor)) {
        /* contiguous: the convertor hands out a pointer into the user's buffer and advances */
        struct iovec iov = {.iov_base = NULL, .iov_len = want};
        uint32_t iov_count = 1;
        if (opal_convertor_pack(convertor, &iov, &iov_count, &want) < 0) {
            opal_free_list_return(&sock.frags, (opal_free_list_item_t *) frag);
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
            opal_free_list_return(&sock.frags, (opal_free_list_item_t *) frag);
            return NULL;
        }
    }
    *size = want;
    frag->segment.seg_len = reserve + want;
    frag->base.des_flags = flags;
    frag->base.order = order;
    return &frag->base;
}

/* Writes what the kernel takes of the frag; true when all of it is in. A socket error is fatal. */
static bool write_frag(sock_frag_t *frag)
{
    sock_endpoint_t *endpoint = frag->endpoint;
    const struct {
        unsigned char *base;
        size_t len;
    } parts[3] = {
        {(unsigned char *) &frag->header, SOCK_HEADER_BYTES},
        {frag->segment.seg_addr.pval, frag->segment.seg_len},
        {frag->inplace.seg_addr.pval, frag->inplace.seg_len},
    };
    const size_t total = SOCK_HEADER_BYTES + frag->segment.seg_len + frag->inplace.seg_len;
    while (frag->written < total) {
        struct iovec iov[3];
        int count = 0;
        size_t skip = frag->written;
        for (int i = 0; i < 3; ++i) {
            if (skip >= parts[i].len) {
                skip -= parts[i].len;
                continue;
            }
            iov[count].iov_base = parts[i].base + skip;
            iov[count++].iov_len = parts[i].len - skip;
            skip = 0;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t) count};
        ssize_t n = sendmsg(endpoint->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            frag->written += (size_t) n;
            continue;
        }
        if (n < 0 && (EINTR == errno)) {
            continue;
        }
        if (n < 0 && (EAGAIN == errno || EWOULDBLOCK == errno)) {
            return false;
        }
        char message[512];
        snprintf(message, sizeof(message),
                 "freeflow: %s -> %s: the handoff socket over the host network failed: %s. Aborting.",
                 OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(endpoint->proc->proc_name),
                 n < 0 ? strerror(errno) : "the connection closed");
        sock_fatal(endpoint->proc, message);
    }
    return true;
}

/* The first send to a peer: ask our agent for a socket connected to the peer over the underlay. */
static void connect_endpoint(sock_endpoint_t *endpoint)
{
    ff_agent_refusal_t why = FF_AGENT_OK;
    int fd = -1;
    ff_status_t status = ff_agent_connect(sock.agent, endpoint->peer_id, endpoint->peer_host, &fd, &why);
    if (FF_OK != status) {
        char message[768];
        snprintf(message, sizeof(message),
                 "freeflow: %s -> %s: the host's ffagent could not connect to host %u's agent for the pair planned h: "
                 "%s%s%s (%s). Aborting.",
                 OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(endpoint->proc->proc_name), endpoint->peer_host,
                 ff_status_name(status), FF_AGENT_OK != why ? ": " : "", FF_AGENT_OK != why ? ff_agent_refusal_describe(why) : "",
                 ff_agent_error(sock.agent));
        sock_fatal(endpoint->proc, message);
    }
    (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    endpoint->fd = fd;
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s -> %s: handoff socket %d connected", OPAL_NAME_PRINT(OPAL_PROC_MY_NAME),
           OPAL_NAME_PRINT(endpoint->proc->proc_name), fd);
}

static int sock_send(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *ep,
                     struct mca_btl_base_descriptor_t *descriptor, mca_btl_base_tag_t tag)
{
    sock_endpoint_t *endpoint = (sock_endpoint_t *) (void *) ep;
    sock_frag_t *frag = (sock_frag_t *) descriptor;
    (void) btl;
    OPAL_THREAD_LOCK(&sock.lock);
    /* Returning OPAL_SUCCESS promises ob1 a completion callback (it relies on one for every fragment it
     * pipelines, as the shm module and vader know: open-mpi/ompi#3845), so always call it. */
    frag->base.des_flags |= MCA_BTL_DES_SEND_ALWAYS_CALLBACK;
    if (OPAL_UNLIKELY(endpoint->fd < 0)) {
        connect_endpoint(endpoint);
    }
    frag->header.len = (uint32_t) (frag->segment.seg_len + frag->inplace.seg_len);
    frag->header.tag = tag;
    frag->written = 0;
    frag->endpoint = endpoint;
    /* report what the pair carried, counted like the shm module: one fragment per send */
    ++endpoint->sent_fragments;
    endpoint->sent_bytes += frag->header.len;
    if (opal_list_is_empty(&endpoint->pending) && write_frag(frag)) {
        opal_list_append(&sock.completed, &frag->base.super.super);
    } else {
        /* order: behind what is already waiting for this socket */
        opal_list_append(&endpoint->pending, &frag->base.super.super);
        if (!endpoint->on_pending_list) {
            endpoint->on_pending_list = true;
            opal_list_append(&sock.pending_endpoints, &endpoint->pending_item);
        }
    }
    OPAL_THREAD_UNLOCK(&sock.lock);
    return OPAL_SUCCESS;
}

static int flush_pending(void)
{
    int count = 0;
    opal_list_item_t *item, *next;
    OPAL_LIST_FOREACH_SAFE(item, next, &sock.pending_endpoints, opal_list_item_t) {
        sock_endpoint_t *endpoint = (sock_endpoint_t *) ((char *) item - offsetof(sock_endpoint_t, pending_item));
        sock_frag_t *frag;
        while (NULL != (frag = (sock_frag_t *) opal_list_get_first(&endpoint->pending)) &&
               &frag->base.super.super != opal_list_get_end(&endpoint->pending) && write_frag(frag)) {
            opal_list_remove_first(&endpoint->pending);
            opal_list_append(&sock.completed, &frag->base.super.super);
            ++count;
        }
        if (opal_list_is_empty(&endpoint->pending)) {
            opal_list_remove_item(&sock.pending_endpoints, item);
            endpoint->on_pending_list = false;
        }
    }
    return count;
}

static int run_completions(void)
{
    int count = 0;
    opal_list_item_t *item;
    while (NULL != (item = opal_list_remove_first(&sock.completed))) {
        sock_frag_t *frag = (sock_frag_t *) item;
        /* read the flags first: the callback may free the descriptor */
        const uint32_t flags = frag->base.des_flags;
        if (flags & MCA_BTL_DES_SEND_ALWAYS_CALLBACK) {
            frag->base.des_cbfunc(&mca_btl_freeflow_sock_module.super, (struct mca_btl_base_endpoint_t *) (void *) frag->endpoint,
                                  &frag->base, OPAL_SUCCESS);
        }
        if (flags & MCA_BTL_DES_FLAGS_BTL_OWNERSHIP) {
            opal_free_list_return(&sock.frags, (opal_free_list_item_t *) frag);
        }
        ++count;
    }
    return count;
}

static void accept_channels(void)
{
    for (;;) {
        int fd = -1;
        uint64_t peer_owner = 0;
        uint32_t peer_host = 0;
        ff_status_t status = ff_agent_accept(sock.agent, &fd, &peer_owner, &peer_host);
        if (FF_ERR_NOT_READY == status) {
            return;
        }
        if (FF_OK != status) {
            char message[768];
            snprintf(message, sizeof(message), "freeflow: %s: %s; pairs on the handoff path cannot continue. Aborting.",
                     OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), ff_agent_error(sock.agent));
            sock_fatal(NULL, message);
        }
        if (sock.inbound_count == sock.inbound_capacity) {
            size_t capacity = sock.inbound_capacity ? 2 * sock.inbound_capacity : 8;
            sock_inbound_t *grown = realloc(sock.inbound, capacity * sizeof(*grown));
            if (NULL == grown) {
                sock_fatal(NULL, "freeflow: out of memory for a handoff channel. Aborting.");
            }
            sock.inbound = grown;
            sock.inbound_capacity = capacity;
        }
        unsigned char *buffer = malloc(SOCK_RECV_BUFFER);
        if (NULL == buffer) {
            sock_fatal(NULL, "freeflow: out of memory for a handoff channel. Aborting.");
        }
        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        sock.inbound[sock.inbound_count++] = (sock_inbound_t) {.fd = fd, .peer_id = peer_owner, .buffer = buffer, .start = 0, .have = 0};
        FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s: handoff channel from %llu on host %u", OPAL_NAME_PRINT(OPAL_PROC_MY_NAME),
               (unsigned long long) (peer_owner & 0xffffffffu), peer_host);
    }
}

static void inbound_failed(sock_inbound_t *in, const char *what)
{
    char message[512];
    snprintf(message, sizeof(message), "freeflow: %s: the handoff channel from rank %llu over the host network %s. Aborting.",
             OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned long long) (in->peer_id & 0xffffffffu), what);
    sock_fatal(NULL, message);
}

/* Reads what one channel has and delivers every complete frame to ob1, in place. */
static int poll_inbound(sock_inbound_t *in)
{
    int delivered = 0;
    for (;;) {
        /* Compact only when a whole frame might not fit behind the data: moving a partial frame to the
         * front is a copy, so it is done rarely instead of after every read. */
        if (SOCK_RECV_BUFFER - in->have < SOCK_MAX_SEND + SOCK_HEADER_BYTES) {
            memmove(in->buffer, in->buffer + in->start, in->have - in->start);
            in->have -= in->start;
            in->start = 0;
        }
        ssize_t n = recv(in->fd, in->buffer + in->have, SOCK_RECV_BUFFER - in->have, MSG_DONTWAIT);
        if (n == 0) {
            /* The peer closed its sending side: normal at its finalize, between frames. In the middle of a
             * frame it lost data. */
            if (in->have > in->start) {
                inbound_failed(in, "closed in the middle of a frame");
            }
            close(in->fd);
            in->fd = -1;
            return delivered;
        }
        if (n < 0) {
            if (EINTR == errno) {
                continue;
            }
            if (EAGAIN == errno || EWOULDBLOCK == errno) {
                return delivered;
            }
            char what[128];
            snprintf(what, sizeof(what), "failed: %s", strerror(errno));
            inbound_failed(in, what);
        }
        in->have += (size_t) n;
        size_t offset = in->start;
        while (in->have - offset >= SOCK_HEADER_BYTES) {
            sock_header_t header;
            memcpy(&header, in->buffer + offset, sizeof(header));
            if (header.len > SOCK_MAX_SEND) {
                inbound_failed(in, "sent a frame longer than any fragment (corrupt stream)");
            }
            if (in->have - offset < SOCK_HEADER_BYTES + header.len) {
                break;
            }
            const mca_btl_active_message_callback_t *reg = mca_btl_base_active_message_trigger + header.tag;
            if (OPAL_UNLIKELY(NULL == reg->cbfunc)) {
                inbound_failed(in, "sent a frame with a tag no layer registered (corrupt stream)");
            }
            mca_btl_base_segment_t segment = {.seg_addr.pval = in->buffer + offset + SOCK_HEADER_BYTES, .seg_len = header.len};
            mca_btl_base_descriptor_t descriptor = {.des_segments = &segment, .des_segment_count = 1};
                    reg->cbfunc(&mca_btl_freeflow_sock_module.super, header.tag, &descriptor, reg->cbdata);
            offset += SOCK_HEADER_BYTES + header.len;
            ++delivered;
        }
        in->start = offset;
        if (in->start == in->have) {
            in->start = in->have = 0; /* everything delivered: start over at the front, no copy */
        }
        if ((size_t) n < SOCK_RECV_BUFFER / 2) {
            return delivered; /* the socket is probably empty: spare the EAGAIN round trip */
        }
    }
}

int mca_btl_freeflow_sock_progress(void)
{
    if (!sock.module_live || OPAL_THREAD_TRYLOCK(&sock.lock)) {
        return 0; /* another thread is at it */
    }
    if (sock.in_progress) {
        OPAL_THREAD_UNLOCK(&sock.lock);
        return 0; /* an ob1 callback progressing again: the outer pass finishes the work */
    }
    sock.in_progress = true;
    int count = 0;
    if (0 == (sock.passes++ % ACCEPT_EVERY)) {
        accept_channels();
    }
    for (size_t i = 0; i < sock.inbound_count; ++i) {
        if (sock.inbound[i].fd >= 0) {
            count += poll_inbound(&sock.inbound[i]);
        }
    }
    if (!opal_list_is_empty(&sock.pending_endpoints)) {
        count += flush_pending();
    }
    if (!opal_list_is_empty(&sock.completed)) {
        count += run_completions();
    }
    sock.in_progress = false;
    OPAL_THREAD_UNLOCK(&sock.lock);
    return count;
}

/* Lines of docs/btl-report.md for the pairs this module carried. */
void mca_btl_freeflow_sock_report(FILE *file)
{
    if (!sock.registered) {
        return;
    }
    sock_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &sock.endpoints, sock_endpoint_t) {
        if ((opal_jobid_t) (endpoint->peer_id >> 32) == OPAL_PROC_MY_NAME.jobid) {
            fprintf(file, "peer %u handoff %llu %llu\n", (unsigned) (endpoint->peer_id & 0xffffffffu),
                    (unsigned long long) endpoint->sent_fragments, (unsigned long long) endpoint->sent_bytes);
        }
    }
}

/* Writes out what is queued (blocking in poll: MPI_Finalize must not drop data), then closes the sockets.
 * Endpoints stay for the report; mca_btl_freeflow_sock_release frees them. */
static void shutdown_sockets(void)
{
    if (!sock.module_live) {
        return;
    }
    while (!opal_list_is_empty(&sock.pending_endpoints)) {
        (void) mca_btl_freeflow_sock_progress();
        sock_endpoint_t *first = (sock_endpoint_t *) ((char *) opal_list_get_first(&sock.pending_endpoints) -
                                                      offsetof(sock_endpoint_t, pending_item));
        if (!opal_list_is_empty(&sock.pending_endpoints)) {
            struct pollfd pfd = {.fd = first->fd, .events = POLLOUT};
            (void) poll(&pfd, 1, 100);
        }
    }
    (void) run_completions();
    sock.module_live = false;
    sock_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &sock.endpoints, sock_endpoint_t) {
        if (endpoint->fd >= 0) {
            close(endpoint->fd);
            endpoint->fd = -1;
        }
    }
    for (size_t i = 0; i < sock.inbound_count; ++i) {
        if (sock.inbound[i].fd >= 0) {
            close(sock.inbound[i].fd);
        }
        free(sock.inbound[i].buffer);
    }
    free(sock.inbound);
    sock.inbound = NULL;
    sock.inbound_count = sock.inbound_capacity = 0;
    ff_agent_close(sock.agent);
    sock.agent = NULL;
}

/* Called by whichever module finalizes first (their order is ob1's), before the report is written. */
void mca_btl_freeflow_sock_shutdown(void)
{
    if (sock.registered) {
        shutdown_sockets();
    }
}

/* After the report: frees the endpoints and descriptors. */
void mca_btl_freeflow_sock_release(void)
{
    if (!sock.registered) {
        return;
    }
    shutdown_sockets();
    OPAL_LIST_DESTRUCT(&sock.endpoints);
    OBJ_DESTRUCT(&sock.pending_endpoints);
    OBJ_DESTRUCT(&sock.completed);
    OBJ_DESTRUCT(&sock.frags);
    OBJ_DESTRUCT(&sock.lock);
    sock.registered = false;
}

/* Only when the component gives up after registering (init failed later): nobody else will free it. */
void mca_btl_freeflow_sock_abandon(void)
{
    mca_btl_freeflow_sock_release();
}

static int sock_finalize(struct mca_btl_base_module_t *btl)
{
    (void) btl;
    mca_btl_freeflow_sock_shutdown();
    return OPAL_SUCCESS;
}
