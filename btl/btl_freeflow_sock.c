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
 * Frames: an 8-byte header (payload length, ob1 tag, frame type) and the payload. Sends are
 * non-blocking: whatever the kernel does not take waits in the endpoint's queue, in order, and progress
 * writes it later; a descriptor's completion callback runs only once all of its bytes are in the kernel.
 * Receives read into a per-socket buffer and hand every complete send frame to ob1 in place.
 *
 * RDMA emulation (large contiguous messages, and MPI one-sided if osc rdma ever picks this module): the
 * payload of a put or get moves between the socket and the user's memory with no copy in this module,
 * like the tcp BTL's put. A put is a PUT frame (the target's registration key, address, our operation id)
 * followed by the payload written straight from the source buffer; the target checks the key and range
 * against its own registration table, then recv()s the payload straight into the destination (over as
 * many progress passes as it takes) and answers PUT_ACK. A get is a GET_REQUEST frame; the owner checks
 * it the same way and answers GET_DATA, written from the registered memory; the requester recv()s it
 * straight into its buffer. Completion callbacks run when the data is in the destination memory (put:
 * on the ack; get: when the last byte arrived), the completion osc rdma needs, not just "in the kernel".
 * Registration handles are {key, base, length}; a peer's handle is only ever compared against our own
 * table, never trusted: a frame naming memory we did not register for that access is a fatal error.
 *
 * Failures are fatal MPI errors through ob1's error callback, never hangs: the agent's registration
 * closing (the agent died or dropped the job), a socket error, or a peer closing in the middle of a frame.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll: a microsecond bound for btl_freeflow_sock_wait_timeout_us */
#endif
#include "btl_freeflow.h"
#include "btl_freeflow_stream.h"

#include "opal/class/opal_bitmap.h"
#include "opal/datatype/opal_convertor.h"
#include "opal/mca/btl/base/base.h"
#include "opal/mca/pmix/pmix.h"
#include "opal/util/output.h"
#include "opal/util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SOCK_HEADER_BYTES 8u
/* ff_agent_accept is one recvmsg: look for new channels every this many progress passes. */
#define ACCEPT_EVERY       128u
#define CONNECT_TIMEOUT_MS 5000
/* The wire length field is 32 bits; one put or get moves at most this much (ob1 splits larger ones). */
#define SOCK_RDMA_LIMIT_MAX (1u << 30)
#define SOCK_MAX_SEND_MAX   (16u * 1024u * 1024u)
/* Spin-then-block (btl_freeflow_sock_wait_spin, _wait_timeout_us): see wait_for_network. 50 passes (one
 * recv per channel each, a few tens of us) stay below the ~40 us it costs to wake a halted vCPU here, so
 * gaps shorter than a wake-up are still spun through. Measured (docs/agent.md, AMD EPYC 2 vCPUs, load
 * 15-50): socket streams with a blocking receiver beat spinning ones by 1.25-1.6x at every MTU, and 2000
 * spins behaved like pure spinning; through MPI, 4 MiB, wait_spin 0 / 50 / 300 / 2000 gave 214 / 290 /
 * 278 / 178 MB/s in one interleaved round, and 50 over 0 was 1.76x / 2.03x / 1.89x (paired medians of 3
 * rounds at MTU 1500, 9000, 9000 under 1450-byte containers). 8 B ping-pong never waits here (no
 * payload in flight: "blocked in poll 0 times"). Not measured on a quiet machine. */
#define WAIT_SPIN_DEFAULT       50u
#define WAIT_TIMEOUT_US_DEFAULT 1000u
#define WAIT_TIMEOUT_US_MAX     1000000u

enum sock_frame_type {
    FRAME_SEND = 0,        /* ob1 fragment: payload = what ob1 gave us */
    FRAME_PUT = 1,         /* rdma header + payload for the target's registered memory */
    FRAME_PUT_ACK = 2,     /* rdma header (op = the initiator's id): the payload is in the target's memory */
    FRAME_GET_REQUEST = 3, /* rdma header: send me `length` bytes of your registered memory */
    FRAME_GET_DATA = 4,    /* rdma header (op = the requester's id) + payload for the requester */
};

typedef struct sock_header {
    uint32_t len; /* payload bytes after the headers */
    uint8_t tag;  /* ob1 tag (FRAME_SEND only) */
    uint8_t type; /* enum sock_frame_type */
    uint8_t pad[2];
} sock_header_t;

/* After the header of every frame but FRAME_SEND. */
typedef struct sock_rdma_header {
    uint64_t key;     /* the target's registration key (PUT, GET_REQUEST) */
    uint64_t address; /* in the target's address space (PUT, GET_REQUEST) */
    uint64_t op;      /* the initiator's operation id, echoed in PUT_ACK / GET_DATA */
    uint64_t length;  /* bytes to move */
} sock_rdma_header_t;
#define SOCK_RDMA_FRAME_HEADER_BYTES (SOCK_HEADER_BYTES + sizeof(sock_rdma_header_t))

/* What ob1 copies to the peer (btl_registration_handle_size bytes). */
typedef struct sock_handle {
    uint64_t key;
    uint64_t base;
    uint64_t length;
} sock_handle_t;

/* A local registration. Not a `struct mca_btl_base_registration_handle_t` definition on purpose: other
 * modules of this component may define that tag; ob1 only sees pointers to it. */
typedef struct sock_registration {
    sock_handle_t wire; /* first: ob1 copies the handle's bytes from its address */
    uint32_t access;    /* MCA_BTL_REG_FLAG_* granted to peers */
} sock_registration_t;

/* Ids for registrations and operations: slot index in the low 32 bits, a generation in the high 32, so a
 * stale or forged id finds nothing instead of someone else's memory. */
typedef struct sock_slots {
    void **items;
    uint64_t *keys;
    uint32_t *free_slots;
    uint32_t capacity, free_count, used;
    uint32_t generation;
} sock_slots_t;

typedef struct sock_endpoint {
    mca_btl_freeflow_stream_endpoint_t stream; /* on sock.stream.endpoints; sent_*: ob1 fragments */
    int fd;                                    /* the socket we send on; -1 until the first send */
    opal_list_t pending;                       /* frags not yet fully in the kernel, in send order */
    bool on_pending_list;
    opal_list_item_t pending_item;
    uint32_t gets_outstanding; /* GET_DATA expected from this peer: read frame headers on their own */
    /* what this rank carried to the peer besides ob1 fragments (the report): put / get payloads we wrote */
    uint64_t rdma_frames;
    uint64_t rdma_bytes;
} sock_endpoint_t;
static void sock_endpoint_construct(sock_endpoint_t *endpoint)
{
    endpoint->fd = -1;
    endpoint->on_pending_list = false;
    endpoint->gets_outstanding = 0;
    endpoint->rdma_frames = endpoint->rdma_bytes = 0;
    OBJ_CONSTRUCT(&endpoint->pending, opal_list_t);
    OBJ_CONSTRUCT(&endpoint->pending_item, opal_list_item_t);
}
static void sock_endpoint_destruct(sock_endpoint_t *endpoint)
{
    OBJ_DESTRUCT(&endpoint->pending_item);
    OBJ_DESTRUCT(&endpoint->pending);
}
static OBJ_CLASS_INSTANCE(sock_endpoint_t, mca_btl_freeflow_stream_endpoint_t, sock_endpoint_construct,
                          sock_endpoint_destruct);

typedef struct sock_frag {
    /* the in-place segment: contiguous ob1 data (like the tcp BTL), put and get payloads */
    mca_btl_freeflow_stream_frag_t stream;
    struct {
        sock_header_t header;
        sock_rdma_header_t rdma;
    } wire;
    size_t header_bytes; /* of `wire` that go out: SOCK_HEADER_BYTES or SOCK_RDMA_FRAME_HEADER_BYTES */
    size_t written;      /* bytes of headers + payload in the kernel */
} sock_frag_t;
static OBJ_CLASS_INSTANCE(sock_frag_t, mca_btl_freeflow_stream_frag_t, NULL, NULL);

static sock_endpoint_t *frag_endpoint(const sock_frag_t *frag)
{
    return (sock_endpoint_t *) frag->stream.endpoint;
}

/* A put or get this rank started, until its completion callback. */
typedef struct sock_op {
    uint8_t kind; /* FRAME_PUT or FRAME_GET_REQUEST */
    sock_endpoint_t *endpoint;
    void *local_address;
    uint64_t length;
    struct mca_btl_base_registration_handle_t *local_handle;
    mca_btl_base_rdma_completion_fn_t cbfunc;
    void *cbcontext;
    void *cbdata;
} sock_op_t;

typedef struct sock_inbound {
    int fd;
    uint64_t peer_id;
    sock_endpoint_t *endpoint; /* the same peer's endpoint: acks and get data go back through it */
    unsigned char *buffer;
    size_t start; /* first byte not yet delivered */
    size_t have;  /* end of the bytes received */
    /* a put or get payload being received straight into memory (direct_left > 0) */
    unsigned char *direct;
    size_t direct_left;
    uint8_t direct_kind; /* FRAME_PUT (ack when done) or FRAME_GET_DATA (complete our op) */
    uint64_t direct_op;  /* the peer's op id to ack, or our op id */
    uint64_t direct_key; /* PUT: the registration written into (deregistration turns it into a drain) */
    bool direct_discard; /* the registration went away mid-transfer: drain the bytes, write nothing */
    bool header_first;   /* a run of rdma frames: read the next header alone, so no payload is copied */
} sock_inbound_t;

static struct {
    ff_agent_conn_t *agent; /* our registration; NULL when not registered */
    bool registered;
    bool module_live;
    mca_btl_freeflow_stream_t stream; /* endpoints, descriptors; `completed`: frags wholly in the kernel */
    opal_list_t pending_endpoints;
    sock_inbound_t *inbound;
    size_t inbound_count, inbound_capacity;
    sock_slots_t registrations;
    sock_slots_t ops;
    unsigned int passes;
    size_t recv_buffer_bytes;
    /* MPI_THREAD_MULTIPLE: one thread at a time writes a socket, reads the channels, runs completions,
     * touches the registration and operation tables. Recursive: ob1's callbacks, run under it, send again
     * on the same thread. A no-op without threads. */
    opal_recursive_mutex_t lock;
    bool in_progress;
    unsigned int idle_passes; /* passes in a row that completed nothing (partial payload bytes do not count) */
    struct pollfd *wait_fds;  /* wait_for_network's poll set */
    size_t wait_capacity;
    uint64_t waits; /* blocks in poll, for the verbose report */
} sock;

/* MCA parameters (btl_freeflow_sock_*): defaults and help in sock_params below. */
static struct {
    unsigned int eager_limit;
    unsigned int max_send_size;
    char *rdma;
    unsigned int rdma_frag_size;
    unsigned int rdma_pipeline_send_length;
    int sndbuf;
    int rcvbuf;
    unsigned int wait_spin;
    unsigned int wait_timeout_us;
} param;

static int sock_finalize(struct mca_btl_base_module_t *btl);
static int sock_send(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                     struct mca_btl_base_descriptor_t *descriptor, mca_btl_base_tag_t tag);
static int sock_put(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                    struct mca_btl_base_registration_handle_t *remote_handle, size_t size, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata);
static int sock_get(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                    struct mca_btl_base_registration_handle_t *remote_handle, size_t size, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata);
static struct mca_btl_base_registration_handle_t *sock_register_mem(struct mca_btl_base_module_t *btl,
                                                                    struct mca_btl_base_endpoint_t *endpoint,
                                                                    void *base, size_t size, uint32_t flags);
static int sock_deregister_mem(struct mca_btl_base_module_t *btl, struct mca_btl_base_registration_handle_t *handle);

mca_btl_freeflow_module_t mca_btl_freeflow_sock_module = {
    .super =
        {
            .btl_component = &mca_btl_freeflow_component.super,
            .btl_add_procs = mca_btl_freeflow_stream_add_procs,
            .btl_del_procs = mca_btl_freeflow_del_procs,
            .btl_finalize = sock_finalize,
            .btl_alloc = mca_btl_freeflow_stream_alloc,
            .btl_free = mca_btl_freeflow_stream_free,
            .btl_prepare_src = mca_btl_freeflow_stream_prepare_src,
            .btl_send = sock_send,
            .btl_put = sock_put,
            .btl_get = sock_get,
            .btl_register_mem = sock_register_mem,
            .btl_deregister_mem = sock_deregister_mem,
            .btl_dump = mca_btl_base_dump,
            .btl_register_error = mca_btl_freeflow_register_error,
        },
    .stream = &sock.stream,
};

static void sock_fatal(opal_proc_t *proc, const char *message)
{
    mca_btl_freeflow_fatal_on(&mca_btl_freeflow_sock_module, proc, message);
}

static const mca_btl_freeflow_param_t sock_params[] = {
    {.name = "sock_eager_limit",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.eager_limit,
     .default_number = 64u * 1024u,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h (handoff sockets): largest message sent eagerly, in one frame with ob1's header (bytes). Larger "
             "messages use rendezvous and, when contiguous, the put/get emulation (btl_freeflow_sock_rdma)."},
    {.name = "sock_max_send_size",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.max_send_size,
     .default_number = 256u * 1024u,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h: largest send frame (bytes, up to 16 MiB): the fragment size of messages that go through ob1's "
             "send pipeline (non-contiguous data, or btl_freeflow_sock_rdma none). Each handoff channel keeps a "
             "receive buffer of 4 such frames."},
    {.name = "sock_rdma",
     .type = MCA_BASE_VAR_TYPE_STRING,
     .storage = &param.rdma,
     .default_string = "get",
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h: how large contiguous messages move. get: the receiver pulls the data (ob1's RGET protocol; also "
             "offers put); put: the sender pushes it into the receiver's buffer (like the tcp BTL); none: ob1's send "
             "pipeline through the receive buffer (one more copy). get and put receive the payload from the socket "
             "straight into the user's buffer."},
    {.name = "sock_rdma_frag_size",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.rdma_frag_size,
     .default_number = 4u * 1024u * 1024u,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h: largest single put or get (bytes, up to 1 GiB); ob1 splits larger transfers into pieces of this "
             "size (btl_put_limit, btl_get_limit, btl_rdma_pipeline_frag_size)."},
    {.name = "sock_rdma_pipeline_send_length",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.rdma_pipeline_send_length,
     .default_number = 64u * 1024u,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h: with btl_freeflow_sock_rdma put, bytes at the end of a message that ob1's RDMA pipeline protocol "
             "sends through the send path when the memory cannot be registered (btl_rdma_pipeline_send_length)."},
    {.name = "sock_sndbuf",
     .type = MCA_BASE_VAR_TYPE_INT,
     .storage = &param.sndbuf,
     .default_number = 0,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h: SO_SNDBUF of every handoff socket in bytes; 0 (default) keeps the kernel's autotuning "
             "(net.ipv4.tcp_wmem). The kernel caps both at net.core.wmem_max / rmem_max."},
    {.name = "sock_rcvbuf",
     .type = MCA_BASE_VAR_TYPE_INT,
     .storage = &param.rcvbuf,
     .default_number = 0,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h: SO_RCVBUF of every handoff socket in bytes; 0 (default) keeps the kernel's autotuning "
             "(net.ipv4.tcp_rmem). A fixed size turns autotuning off."},
    {.name = "sock_wait_spin",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.wait_spin,
     .default_number = WAIT_SPIN_DEFAULT,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h: while this rank waits on a handoff socket (a put or get payload arriving, get data asked for, or "
             "a send the kernel has no room for): progress passes in a row that complete nothing (no frame delivered, "
             "no payload finished, no send fully in the kernel) before the rank blocks in poll() on its sockets, "
             "giving the vCPU to the kernel's TCP work and the peer; poll returns at once if bytes are already there. "
             "0 never blocks (pure spinning). Never blocks while this rank has shared-memory or router peers."},
    {.name = "sock_wait_timeout_us",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &param.wait_timeout_us,
     .default_number = WAIT_TIMEOUT_US_DEFAULT,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Path h: longest single block in poll() (microseconds, 1-1000000) of btl_freeflow_sock_wait_spin: a bound "
             "on how late other progress (other BTLs, new channels, the agent's state) is looked at while the sockets "
             "are silent. A peer that dies or closes wakes the poll at once."},
};

void mca_btl_freeflow_sock_register_params(const mca_base_component_t *version)
{
    mca_btl_freeflow_register_params(version, sock_params, sizeof(sock_params) / sizeof(sock_params[0]));
}

/* ---- id tables ---- */

static uint64_t slots_add(sock_slots_t *t, void *item)
{
    if (0 == t->free_count) {
        const uint32_t capacity = t->capacity ? 2 * t->capacity : 64;
        void **items = realloc(t->items, capacity * sizeof(*items));
        if (NULL != items) t->items = items;
        uint64_t *keys = realloc(t->keys, capacity * sizeof(*keys));
        if (NULL != keys) t->keys = keys;
        uint32_t *free_slots = realloc(t->free_slots, capacity * sizeof(*free_slots));
        if (NULL != free_slots) t->free_slots = free_slots;
        if (NULL == items || NULL == keys || NULL == free_slots) {
            return 0;
        }
        /* hand out low slots first */
        for (uint32_t slot = capacity; slot-- > t->capacity;) {
            t->items[slot] = NULL;
            t->keys[slot] = 0;
            t->free_slots[t->free_count++] = slot;
        }
        t->capacity = capacity;
    }
    const uint32_t slot = t->free_slots[--t->free_count];
    if (0 == ++t->generation) {
        t->generation = 1; /* key 0 never names anything */
    }
    const uint64_t key = ((uint64_t) t->generation << 32) | slot;
    t->items[slot] = item;
    t->keys[slot] = key;
    ++t->used;
    return key;
}

static void *slots_find(const sock_slots_t *t, uint64_t key)
{
    const uint64_t slot = key & 0xffffffffu;
    if (0 == key || slot >= t->capacity || t->keys[slot] != key) {
        return NULL;
    }
    return t->items[slot];
}

static void slots_remove(sock_slots_t *t, uint64_t key)
{
    const uint32_t slot = (uint32_t) (key & 0xffffffffu);
    t->items[slot] = NULL;
    t->keys[slot] = 0;
    t->free_slots[t->free_count++] = slot;
    --t->used;
}

static void slots_free(sock_slots_t *t, bool free_items)
{
    for (uint32_t slot = 0; free_items && slot < t->capacity; ++slot) {
        free(t->items[slot]);
    }
    free(t->items);
    free(t->keys);
    free(t->free_slots);
    *t = (sock_slots_t){0};
}

/* The registration a peer's frame may use: `key` names one of ours granting `access`, and
 * [address, address + length) lies inside it. NULL otherwise. */
static sock_registration_t *granted(uint64_t key, uint64_t address, uint64_t length, uint32_t access)
{
    sock_registration_t *reg = slots_find(&sock.registrations, key);
    if (NULL == reg || access != (reg->access & access) || address < reg->wire.base || length > reg->wire.length ||
        address - reg->wire.base > reg->wire.length - length) {
        return NULL;
    }
    return reg;
}

bool mca_btl_freeflow_sock_wanted(void)
{
    return mca_btl_freeflow_path_planned(1u << FF_PATH_HANDOFF);
}

/* One line of check_params' message: `name`=`value` was outside `low`-`high`, `used` instead. */
static void note_correction(char *list, size_t size, const char *name, unsigned int value, unsigned int low,
                            unsigned int high, unsigned int used)
{
    const size_t len = strlen(list);
    snprintf(list + len, size - len, "  %s=%u is outside %u-%u: using %u\n", name, value, low, high, used);
}

/* Parameter values that cannot work are corrected, and one message lists them all (the job still runs;
 * the message says what was used). One message, not one per parameter: mpirun shows a help topic once. */
static void check_params(void)
{
    char corrections[1024] = "";
    if (param.max_send_size < 4096u || param.max_send_size > SOCK_MAX_SEND_MAX) {
        const unsigned int fixed = param.max_send_size < 4096u ? 4096u : SOCK_MAX_SEND_MAX;
        note_correction(corrections, sizeof(corrections), "btl_freeflow_sock_max_send_size", param.max_send_size, 4096u,
                        SOCK_MAX_SEND_MAX, fixed);
        param.max_send_size = fixed;
    }
    if (param.eager_limit < 1024u || param.eager_limit > param.max_send_size) {
        const unsigned int fixed = param.eager_limit < 1024u ? 1024u : param.max_send_size;
        /* the upper bound is btl_freeflow_sock_max_send_size */
        note_correction(corrections, sizeof(corrections), "btl_freeflow_sock_eager_limit", param.eager_limit, 1024u,
                        param.max_send_size, fixed);
        param.eager_limit = fixed;
    }
    if (param.rdma_frag_size < 4096u || param.rdma_frag_size > SOCK_RDMA_LIMIT_MAX) {
        const unsigned int fixed = param.rdma_frag_size < 4096u ? 4096u : SOCK_RDMA_LIMIT_MAX;
        note_correction(corrections, sizeof(corrections), "btl_freeflow_sock_rdma_frag_size", param.rdma_frag_size,
                        4096u, SOCK_RDMA_LIMIT_MAX, fixed);
        param.rdma_frag_size = fixed;
    }
    if (param.wait_timeout_us < 1u || param.wait_timeout_us > WAIT_TIMEOUT_US_MAX) {
        const unsigned int fixed = param.wait_timeout_us < 1u ? 1u : WAIT_TIMEOUT_US_MAX;
        note_correction(corrections, sizeof(corrections), "btl_freeflow_sock_wait_timeout_us", param.wait_timeout_us,
                        1u, WAIT_TIMEOUT_US_MAX, fixed);
        param.wait_timeout_us = fixed;
    }
    if (NULL == param.rdma ||
        (0 != strcmp(param.rdma, "get") && 0 != strcmp(param.rdma, "put") && 0 != strcmp(param.rdma, "none"))) {
        const size_t len = strlen(corrections);
        snprintf(corrections + len, sizeof(corrections) - len,
                 "  btl_freeflow_sock_rdma='%s' is not one of get, "
                 "put, none: using get\n",
                 param.rdma ? param.rdma : "");
        param.rdma = "get";
    }
    if (corrections[0]) {
        MCA_BTL_FREEFLOW_SHOW_HELP("sock-params-corrected", corrections);
    }
}

bool mca_btl_freeflow_sock_init(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    ff_agent_refusal_t why = FF_AGENT_OK;
    ff_status_t status = mca_btl_freeflow_agent_acquire(&sock.agent, &why);
    if (FF_OK != status) {
        /* Declining is safe: our modex says "not registered", so the peers decline too (see the top). */
        MCA_BTL_FREEFLOW_SHOW_HELP("agent-unreachable-handoff", c->dir, ff_status_name(status),
                                   FF_AGENT_OK != why ? ": " : "",
                                   FF_AGENT_OK != why ? ff_agent_refusal_describe(why) : "");
        sock.agent = NULL;
        return false;
    }
    check_params();
    ff_agent_set_nonblocking(sock.agent, true);
    ff_agent_set_timeout(sock.agent, CONNECT_TIMEOUT_MS);
    OBJ_CONSTRUCT(&sock.lock, opal_recursive_mutex_t);
    OBJ_CONSTRUCT(&sock.pending_endpoints, opal_list_t);
    sock.stream = (mca_btl_freeflow_stream_t){.module = &mca_btl_freeflow_sock_module,
                                              .route = FF_PAIR_ROUTE_HANDOFF,
                                              .endpoint_class = OBJ_CLASS(sock_endpoint_t),
                                              .decision = "host-network handoff (planned h; both agents registered)"};
    if (OPAL_SUCCESS != mca_btl_freeflow_stream_init(&sock.stream, OBJ_CLASS(sock_frag_t), sizeof(sock_frag_t),
                                                     param.eager_limit, param.max_send_size)) {
        mca_btl_freeflow_agent_release(sock.agent);
        sock.agent = NULL;
        return false;
    }
    sock.recv_buffer_bytes = 4u * ((size_t) param.max_send_size + SOCK_RDMA_FRAME_HEADER_BYTES);
    sock.registrations = (sock_slots_t){.generation = (uint32_t) getpid() ^ (uint32_t) time(NULL)};
    sock.ops = (sock_slots_t){.generation = (uint32_t) getpid() * 2654435761u};
    mca_btl_base_module_t *btl = &mca_btl_freeflow_sock_module.super;
    btl->btl_rdma_pipeline_send_length = param.rdma_pipeline_send_length;
    btl->btl_rdma_pipeline_frag_size = param.rdma_frag_size;
    btl->btl_put_limit = param.rdma_frag_size;
    btl->btl_get_limit = param.rdma_frag_size;
    btl->btl_put_alignment = 0;
    btl->btl_get_alignment = 0;
    btl->btl_registration_handle_size = sizeof(sock_handle_t);
    if (0 == strcmp(param.rdma, "get")) {
        btl->btl_flags |= MCA_BTL_FLAGS_GET | MCA_BTL_FLAGS_PUT;
    } else if (0 == strcmp(param.rdma, "put")) {
        btl->btl_flags |= MCA_BTL_FLAGS_PUT;
    }
    sock.registered = true;
    sock.module_live = true;
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s registered with the host's ffagent (%s/agent.sock); handoff rdma %s",
           OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), c->dir, param.rdma);
    return true;
}

bool mca_btl_freeflow_sock_registered(void)
{
    return sock.registered;
}

static sock_endpoint_t *find_endpoint(uint64_t peer_id)
{
    return (sock_endpoint_t *) mca_btl_freeflow_stream_find_endpoint(&sock.stream, peer_id);
}

bool mca_btl_freeflow_sock_carries(uint64_t peer_id)
{
    return sock.registered && NULL != find_endpoint(peer_id);
}

static sock_frag_t *frag_get(sock_endpoint_t *endpoint)
{
    _Static_assert(sizeof(((sock_frag_t *) 0)->wire) == SOCK_RDMA_FRAME_HEADER_BYTES, "wire headers must be packed");
    /* the wire fields are set where the frame is built (sock_send, enqueue_rdma_frame, enqueue_frag) */
    return (sock_frag_t *) mca_btl_freeflow_stream_frag_get(&sock.stream, &endpoint->stream);
}

/* Writes what the kernel takes of the frag; true when all of it is in. A socket error is fatal. */
static bool write_frag(sock_frag_t *frag)
{
    sock_endpoint_t *endpoint = frag_endpoint(frag);
    const struct {
        unsigned char *base;
        size_t len;
    } parts[3] = {
        {(unsigned char *) &frag->wire, frag->header_bytes},
        {frag->stream.segment.seg_addr.pval, frag->stream.segment.seg_len},
        {frag->stream.inplace.seg_addr.pval, frag->stream.inplace.seg_len},
    };
    const size_t total = frag->header_bytes + frag->stream.segment.seg_len + frag->stream.inplace.seg_len;
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
                 OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(endpoint->stream.proc->proc_name),
                 n < 0 ? strerror(errno) : "the connection closed");
        sock_fatal(endpoint->stream.proc, message);
    }
    return true;
}

static void set_buffer_sizes(int fd)
{
    /* best effort: the kernel caps them at net.core.[wr]mem_max */
    if (param.sndbuf > 0) {
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &param.sndbuf, sizeof(param.sndbuf));
    }
    if (param.rcvbuf > 0) {
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &param.rcvbuf, sizeof(param.rcvbuf));
    }
}

/* The first send to a peer: ask our agent for a socket connected to the peer over the underlay. */
static void connect_endpoint(sock_endpoint_t *endpoint)
{
    ff_agent_refusal_t why = FF_AGENT_OK;
    int fd = -1;
    ff_status_t status = ff_agent_connect(sock.agent, endpoint->stream.peer_id, endpoint->stream.peer_host, &fd, &why);
    if (FF_OK != status) {
        char message[768];
        snprintf(message, sizeof(message),
                 "freeflow: %s -> %s: the host's ffagent could not connect to host %u's agent for the pair planned h: "
                 "%s%s%s (%s). Aborting.",
                 OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(endpoint->stream.proc->proc_name),
                 endpoint->stream.peer_host, ff_status_name(status), FF_AGENT_OK != why ? ": " : "",
                 FF_AGENT_OK != why ? ff_agent_refusal_describe(why) : "", ff_agent_error(sock.agent));
        sock_fatal(endpoint->stream.proc, message);
    }
    (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    set_buffer_sizes(fd);
    endpoint->fd = fd;
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s -> %s: handoff socket %d connected", OPAL_NAME_PRINT(OPAL_PROC_MY_NAME),
           OPAL_NAME_PRINT(endpoint->stream.proc->proc_name), fd);
}

/* Writes the frag now if nothing waits before it, else queues it behind (per-socket order). Lock held. */
static void enqueue_frag(sock_endpoint_t *endpoint, sock_frag_t *frag)
{
    if (OPAL_UNLIKELY(endpoint->fd < 0)) {
        connect_endpoint(endpoint);
    }
    frag->written = 0;
    frag->stream.endpoint = &endpoint->stream;
    if (opal_list_is_empty(&endpoint->pending) && write_frag(frag)) {
        opal_list_append(&sock.stream.completed, &frag->stream.base.super.super);
    } else {
        opal_list_append(&endpoint->pending, &frag->stream.base.super.super);
        if (!endpoint->on_pending_list) {
            endpoint->on_pending_list = true;
            opal_list_append(&sock.pending_endpoints, &endpoint->pending_item);
        }
    }
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
    frag->stream.base.des_flags |= MCA_BTL_DES_SEND_ALWAYS_CALLBACK;
    frag->header_bytes = SOCK_HEADER_BYTES;
    frag->wire.header = (sock_header_t){.len = (uint32_t) (frag->stream.segment.seg_len + frag->stream.inplace.seg_len),
                                        .tag = tag,
                                        .type = FRAME_SEND};
    /* report what the pair carried, counted like the shm module: one fragment per send */
    ++endpoint->stream.sent_fragments;
    endpoint->stream.sent_bytes += frag->wire.header.len;
    enqueue_frag(endpoint, frag);
    OPAL_THREAD_UNLOCK(&sock.lock);
    return OPAL_SUCCESS;
}

/* Queues an rdma frame of ours (no ob1 descriptor: returned to the free list once written). Lock held. */
static int enqueue_rdma_frame(sock_endpoint_t *endpoint, uint8_t type, const sock_rdma_header_t *rdma, void *payload,
                              size_t payload_bytes)
{
    sock_frag_t *frag = frag_get(endpoint);
    if (NULL == frag) {
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    frag->stream.base.des_flags = MCA_BTL_DES_FLAGS_BTL_OWNERSHIP;
    frag->header_bytes = SOCK_RDMA_FRAME_HEADER_BYTES;
    frag->wire.header = (sock_header_t){.len = (uint32_t) payload_bytes, .type = type};
    frag->wire.rdma = *rdma;
    frag->stream.inplace.seg_addr.pval = payload;
    frag->stream.inplace.seg_len = payload_bytes;
    frag->stream.base.des_segment_count = 2;
    if (payload_bytes > 0) {
        ++endpoint->rdma_frames;
        endpoint->rdma_bytes += payload_bytes;
    }
    enqueue_frag(endpoint, frag);
    return OPAL_SUCCESS;
}

static int start_rdma(uint8_t kind, struct mca_btl_base_endpoint_t *ep, void *local_address, uint64_t remote_address,
                      struct mca_btl_base_registration_handle_t *local_handle,
                      struct mca_btl_base_registration_handle_t *remote_handle, size_t size,
                      mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata)
{
    sock_endpoint_t *endpoint = (sock_endpoint_t *) (void *) ep;
    if (NULL == endpoint || NULL == remote_handle || 0 == size) {
        return OPAL_ERR_BAD_PARAM;
    }
    if (size > param.rdma_frag_size) {
        return OPAL_ERR_NOT_AVAILABLE; /* btl_put_limit / btl_get_limit tell callers the largest */
    }
    sock_op_t *op = malloc(sizeof(*op));
    if (NULL == op) {
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    *op = (sock_op_t){.kind = kind,
                      .endpoint = endpoint,
                      .local_address = local_address,
                      .length = size,
                      .local_handle = local_handle,
                      .cbfunc = cbfunc,
                      .cbcontext = cbcontext,
                      .cbdata = cbdata};
    /* the peer's handle bytes as ob1 received them: only its key travels back, the peer checks it */
    sock_handle_t remote;
    memcpy(&remote, remote_handle, sizeof(remote));
    OPAL_THREAD_LOCK(&sock.lock);
    const uint64_t id = slots_add(&sock.ops, op);
    int rc = OPAL_ERR_OUT_OF_RESOURCE;
    if (0 != id) {
        const sock_rdma_header_t rdma = {.key = remote.key, .address = remote_address, .op = id, .length = size};
        rc = FRAME_PUT == kind ? enqueue_rdma_frame(endpoint, FRAME_PUT, &rdma, local_address, size)
                               : enqueue_rdma_frame(endpoint, FRAME_GET_REQUEST, &rdma, NULL, 0);
        if (OPAL_SUCCESS != rc) {
            slots_remove(&sock.ops, id);
        } else if (FRAME_GET_REQUEST == kind) {
            ++endpoint->gets_outstanding;
        }
    }
    OPAL_THREAD_UNLOCK(&sock.lock);
    if (OPAL_SUCCESS != rc) {
        free(op);
    }
    return rc;
}

static int sock_put(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                    struct mca_btl_base_registration_handle_t *remote_handle, size_t size, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata)
{
    (void) btl;
    (void) flags;
    (void) order; /* one stream per direction: always in order */
    return start_rdma(FRAME_PUT, endpoint, local_address, remote_address, local_handle, remote_handle, size, cbfunc,
                      cbcontext, cbdata);
}

static int sock_get(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                    struct mca_btl_base_registration_handle_t *remote_handle, size_t size, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata)
{
    (void) btl;
    (void) flags;
    (void) order;
    return start_rdma(FRAME_GET_REQUEST, endpoint, local_address, remote_address, local_handle, remote_handle, size,
                      cbfunc, cbcontext, cbdata);
}

static struct mca_btl_base_registration_handle_t *sock_register_mem(struct mca_btl_base_module_t *btl,
                                                                    struct mca_btl_base_endpoint_t *endpoint,
                                                                    void *base, size_t size, uint32_t flags)
{
    (void) btl;
    (void) endpoint; /* a registration is valid for every peer, as with the tcp BTL's (none) */
    sock_registration_t *reg = malloc(sizeof(*reg));
    if (NULL == reg) {
        return NULL;
    }
    reg->wire.base = (uint64_t) (uintptr_t) base;
    reg->wire.length = size;
    /* ob1 registers the RDMA pipeline's whole receive buffer REMOTE_READ yet only ever lets peers write its
     * per-fragment REMOTE_WRITE registrations; LOCAL_WRITE alone grants peers nothing */
    reg->access =
        flags & (MCA_BTL_REG_FLAG_REMOTE_READ | MCA_BTL_REG_FLAG_REMOTE_WRITE | MCA_BTL_REG_FLAG_REMOTE_ATOMIC);
    OPAL_THREAD_LOCK(&sock.lock);
    reg->wire.key = slots_add(&sock.registrations, reg);
    OPAL_THREAD_UNLOCK(&sock.lock);
    if (0 == reg->wire.key) {
        free(reg);
        return NULL;
    }
    return (struct mca_btl_base_registration_handle_t *) (void *) reg;
}

static int sock_deregister_mem(struct mca_btl_base_module_t *btl, struct mca_btl_base_registration_handle_t *handle)
{
    (void) btl;
    sock_registration_t *reg = (sock_registration_t *) (void *) handle;
    if (!sock.registered) {
        free(reg); /* after finalize: the table is gone (release leaves registrations to their owners) */
        return OPAL_SUCCESS;
    }
    OPAL_THREAD_LOCK(&sock.lock);
    if (NULL == reg || slots_find(&sock.registrations, reg->wire.key) != reg) {
        OPAL_THREAD_UNLOCK(&sock.lock);
        return OPAL_ERR_BAD_PARAM;
    }
    slots_remove(&sock.registrations, reg->wire.key);
    /* a put still arriving into this memory (only a misbehaving peer or program): keep the stream framed
     * but write nothing more into memory that is no longer ours to write */
    for (size_t i = 0; i < sock.inbound_count; ++i) {
        sock_inbound_t *in = &sock.inbound[i];
        if (in->direct_left > 0 && FRAME_PUT == in->direct_kind && in->direct_key == reg->wire.key) {
            in->direct_discard = true;
        }
    }
    OPAL_THREAD_UNLOCK(&sock.lock);
    free(reg);
    return OPAL_SUCCESS;
}

static int flush_pending(void)
{
    int count = 0;
    opal_list_item_t *item, *next;
    OPAL_LIST_FOREACH_SAFE(item, next, &sock.pending_endpoints, opal_list_item_t)
    {
        sock_endpoint_t *endpoint = (sock_endpoint_t *) ((char *) item - offsetof(sock_endpoint_t, pending_item));
        sock_frag_t *frag;
        while (NULL != (frag = (sock_frag_t *) opal_list_get_first(&endpoint->pending)) &&
               &frag->stream.base.super.super != opal_list_get_end(&endpoint->pending) && write_frag(frag)) {
            opal_list_remove_first(&endpoint->pending);
            opal_list_append(&sock.stream.completed, &frag->stream.base.super.super);
            ++count;
        }
        if (opal_list_is_empty(&endpoint->pending)) {
            opal_list_remove_item(&sock.pending_endpoints, item);
            endpoint->on_pending_list = false;
        }
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
        unsigned char *buffer = malloc(sock.recv_buffer_bytes);
        if (NULL == buffer) {
            sock_fatal(NULL, "freeflow: out of memory for a handoff channel. Aborting.");
        }
        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        set_buffer_sizes(fd);
        sock.inbound[sock.inbound_count++] = (sock_inbound_t){.fd = fd, .peer_id = peer_owner, .buffer = buffer};
        FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s: handoff channel from %llu on host %u",
               OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned long long) (peer_owner & 0xffffffffu), peer_host);
    }
}

static void inbound_failed(sock_inbound_t *in, const char *what)
{
    char message[512];
    snprintf(message, sizeof(message),
             "freeflow: %s: the handoff channel from rank %llu over the host network %s. Aborting.",
             OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned long long) (in->peer_id & 0xffffffffu), what);
    sock_fatal(in->endpoint ? in->endpoint->stream.proc : NULL, message);
}

/* The endpoint of the rank that sends on this channel (the agent vouches for its identity). */
static sock_endpoint_t *inbound_endpoint(sock_inbound_t *in)
{
    if (NULL == in->endpoint) {
        in->endpoint = find_endpoint(in->peer_id);
        if (NULL == in->endpoint) {
            inbound_failed(in, "asked for a put or get, but that rank is not a handoff peer of this process");
        }
    }
    return in->endpoint;
}

/* A put or get payload is all in memory. */
static void finish_direct(sock_inbound_t *in)
{
    in->header_first = true; /* rdma frames come in runs: keep the next payload out of the buffer too */
    if (FRAME_PUT == in->direct_kind) {
        const sock_rdma_header_t ack = {.op = in->direct_op};
        if (OPAL_SUCCESS != enqueue_rdma_frame(inbound_endpoint(in), FRAME_PUT_ACK, &ack, NULL, 0)) {
            inbound_failed(in, "sent a put this process has no memory left to acknowledge");
        }
        return;
    }
    sock_op_t *op = slots_find(&sock.ops, in->direct_op);
    slots_remove(&sock.ops, in->direct_op);
    --op->endpoint->gets_outstanding;
    op->cbfunc(&mca_btl_freeflow_sock_module.super, (struct mca_btl_base_endpoint_t *) (void *) op->endpoint,
               op->local_address, op->local_handle, op->cbcontext, op->cbdata, OPAL_SUCCESS);
    free(op);
}

/* Receives what the socket has of the payload straight into its destination; true when it is complete. */
static bool receive_direct(sock_inbound_t *in)
{
    while (in->direct_left > 0) {
        /* draining (see sock_deregister_mem): the receive buffer is empty while a payload is direct */
        unsigned char *into = in->direct_discard ? in->buffer : in->direct;
        size_t want = in->direct_left;
        if (in->direct_discard && want > sock.recv_buffer_bytes) {
            want = sock.recv_buffer_bytes;
        }
        ssize_t n = recv(in->fd, into, want, MSG_DONTWAIT);
        if (n == 0) {
            inbound_failed(in, "closed in the middle of a put or get");
        }
        if (n < 0) {
            if (EINTR == errno) {
                continue;
            }
            if (EAGAIN == errno || EWOULDBLOCK == errno) {
                return false;
            }
            char what[128];
            snprintf(what, sizeof(what), "failed: %s", strerror(errno));
            inbound_failed(in, what);
        }
        if (!in->direct_discard) {
            in->direct += n;
        }
        in->direct_left -= (size_t) n;
    }
    finish_direct(in);
    return true;
}

/* An rdma frame's headers arrived (and `buffered` bytes of its payload behind them, at `payload`). Checks
 * it against what we granted or asked for; starts a direct receive for a payload. Returns the buffered
 * bytes it used. */
static size_t start_rdma_frame(sock_inbound_t *in, const sock_header_t *header, const sock_rdma_header_t *rdma,
                               const unsigned char *payload, size_t buffered)
{
    sock_endpoint_t *endpoint = inbound_endpoint(in);
    switch (header->type) {
    case FRAME_PUT: {
        if (header->len != rdma->length ||
            NULL == granted(rdma->key, rdma->address, rdma->length, MCA_BTL_REG_FLAG_REMOTE_WRITE)) {
            inbound_failed(in,
                           "sent a put into memory this process did not register for it (corrupt or hostile stream)");
        }
        in->direct = (unsigned char *) (uintptr_t) rdma->address;
        in->direct_key = rdma->key;
        in->direct_op = rdma->op; /* the peer's: echoed back, meaningless here */
        break;
    }
    case FRAME_GET_DATA: {
        sock_op_t *op = slots_find(&sock.ops, rdma->op);
        if (NULL == op || FRAME_GET_REQUEST != op->kind || op->endpoint != endpoint || op->length != header->len) {
            inbound_failed(in, "sent get data this process did not ask it for (corrupt or hostile stream)");
        }
        in->direct = op->local_address;
        in->direct_key = 0;
        in->direct_op = rdma->op;
        break;
    }
    case FRAME_PUT_ACK: {
        sock_op_t *op = slots_find(&sock.ops, rdma->op);
        if (0 != header->len || NULL == op || FRAME_PUT != op->kind || op->endpoint != endpoint) {
            inbound_failed(in, "acknowledged a put this process did not make to it (corrupt or hostile stream)");
        }
        slots_remove(&sock.ops, rdma->op);
        op->cbfunc(&mca_btl_freeflow_sock_module.super, (struct mca_btl_base_endpoint_t *) (void *) endpoint,
                   op->local_address, op->local_handle, op->cbcontext, op->cbdata, OPAL_SUCCESS);
        free(op);
        return 0;
    }
    case FRAME_GET_REQUEST: {
        if (0 != header->len || rdma->length > param.rdma_frag_size ||
            NULL == granted(rdma->key, rdma->address, rdma->length, MCA_BTL_REG_FLAG_REMOTE_READ)) {
            inbound_failed(in, "asked to get memory this process did not register for it (corrupt or hostile stream)");
        }
        const sock_rdma_header_t reply = {.op = rdma->op, .length = rdma->length};
        if (OPAL_SUCCESS !=
            enqueue_rdma_frame(endpoint, FRAME_GET_DATA, &reply, (void *) (uintptr_t) rdma->address, rdma->length)) {
            inbound_failed(in, "asked for a get this process has no memory left to answer");
        }
        return 0;
    }
    default: inbound_failed(in, "sent a frame of unknown type (corrupt stream)");
    }
    in->direct_kind = header->type;
    in->direct_left = header->len;
    in->direct_discard = false;
    const size_t used = buffered < header->len ? buffered : header->len;
    /* the part that came in with earlier frames: the only copy on this path, at most one buffered read */
    memcpy(in->direct, payload, used);
    in->direct += used;
    in->direct_left -= used;
    if (0 == in->direct_left) {
        finish_direct(in);
    }
    return used;
}

/* Reads what one channel has and delivers every complete frame: send frames to ob1 in place, rdma
 * payloads straight into their memory. */
static int poll_inbound(sock_inbound_t *in)
{
    int delivered = 0;
    for (;;) {
        if (in->direct_left > 0) {
            if (!receive_direct(in)) {
                return delivered;
            }
            ++delivered;
            continue;
        }
        /* Compact only when a whole frame might not fit behind the data: moving a partial frame to the
         * front is a copy, so it is done rarely instead of after every read. */
        if (sock.recv_buffer_bytes - in->have < param.max_send_size + SOCK_RDMA_FRAME_HEADER_BYTES) {
            memmove(in->buffer, in->buffer + in->start, in->have - in->start);
            in->have -= in->start;
            in->start = 0;
        }
        /* In a run of rdma frames (or waiting for get data) read a header alone, so the payload behind it
         * goes straight to its destination; otherwise read as much as an eager frame: a larger read could
         * pull much of an rdma payload into the buffer, to be copied out again. */
        const bool header_first = in->header_first || (NULL != in->endpoint && in->endpoint->gets_outstanding > 0);
        size_t want = header_first ? SOCK_RDMA_FRAME_HEADER_BYTES : param.eager_limit + SOCK_RDMA_FRAME_HEADER_BYTES;
        const size_t buffered = in->have - in->start;
        if (buffered >= SOCK_HEADER_BYTES) {
            /* the rest of the frame begun in the buffer (one read, not header-sized ones), then a header */
            sock_header_t header;
            memcpy(&header, in->buffer + in->start, sizeof(header));
            const size_t frame =
                FRAME_SEND == header.type ? SOCK_HEADER_BYTES + header.len : SOCK_RDMA_FRAME_HEADER_BYTES;
            if (frame > buffered) {
                want = frame - buffered + SOCK_RDMA_FRAME_HEADER_BYTES;
            }
        }
        if (want > sock.recv_buffer_bytes - in->have) {
            want = sock.recv_buffer_bytes - in->have;
        }
        ssize_t n = recv(in->fd, in->buffer + in->have, want, MSG_DONTWAIT);
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
        while (in->have - offset >= SOCK_HEADER_BYTES && 0 == in->direct_left) {
            sock_header_t header;
            memcpy(&header, in->buffer + offset, sizeof(header));
            if (FRAME_SEND != header.type) {
                if (in->have - offset < SOCK_RDMA_FRAME_HEADER_BYTES) {
                    break;
                }
                sock_rdma_header_t rdma;
                memcpy(&rdma, in->buffer + offset + SOCK_HEADER_BYTES, sizeof(rdma));
                offset += SOCK_RDMA_FRAME_HEADER_BYTES;
                offset += start_rdma_frame(in, &header, &rdma, in->buffer + offset, in->have - offset);
                ++delivered;
                continue;
            }
            if (header.len > param.max_send_size) {
                inbound_failed(in, "sent a frame longer than any fragment (corrupt stream)");
            }
            if (in->have - offset < SOCK_HEADER_BYTES + header.len) {
                break;
            }
            const mca_btl_active_message_callback_t *reg = mca_btl_base_active_message_trigger + header.tag;
            if (OPAL_UNLIKELY(NULL == reg->cbfunc)) {
                inbound_failed(in, "sent a frame with a tag no layer registered (corrupt stream)");
            }
            in->header_first = false;
            mca_btl_base_segment_t segment = {.seg_addr.pval = in->buffer + offset + SOCK_HEADER_BYTES,
                                              .seg_len = header.len};
            mca_btl_base_descriptor_t descriptor = {.des_segments = &segment, .des_segment_count = 1};
            reg->cbfunc(&mca_btl_freeflow_sock_module.super, header.tag, &descriptor, reg->cbdata);
            offset += SOCK_HEADER_BYTES + header.len;
            ++delivered;
        }
        in->start = offset;
        if (in->start == in->have) {
            in->start = in->have = 0; /* everything delivered: start over at the front, no copy */
        }
        if (in->direct_left > 0) {
            continue; /* the rest of the payload goes straight to its memory */
        }
        if ((size_t) n < want) {
            return delivered; /* the socket is probably empty: spare the EAGAIN round trip */
        }
    }
}

/* Whether this rank is waiting on the network: a put or get payload part-way in, get data asked for, or
 * bytes the kernel had no room for. Only then can blocking pay: the bytes will come (or room will). */
static bool waiting_on_network(void)
{
    if (!opal_list_is_empty(&sock.pending_endpoints)) {
        return true;
    }
    for (size_t i = 0; i < sock.inbound_count; ++i) {
        if (sock.inbound[i].fd >= 0 && sock.inbound[i].direct_left > 0) {
            return true;
        }
    }
    sock_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &sock.stream.endpoints, sock_endpoint_t)
    {
        if (endpoint->gets_outstanding > 0) {
            return true;
        }
    }
    return false;
}

/* Nothing else of this process that progress serves can move while we sleep in poll: no shared-memory
 * peer (rings are memory, not descriptors) and no router route. Other BTLs (tcp for other pairs) are
 * looked at again after at most btl_freeflow_sock_wait_timeout_us. */
static bool may_block(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    /* relaxed (and plain reads): a hint; a shm peer that appears during one block is served after the
     * bounded timeout */
    return 0 == atomic_load_explicit(&c->inbound_count, memory_order_relaxed) && opal_list_is_empty(&c->endpoints) &&
           !c->router_active;
}

/* Spin-then-block. Spinning on EAGAIN keeps this vCPU busy with recv/sendmsg calls that take the socket
 * lock, while the kernel's TCP work for this flow (softirq, ACKs) and the peer need the same 2 vCPUs;
 * after wait_spin empty passes the rank sleeps in poll() on every handoff socket it reads or has queued
 * writes for, and on the agent's registration socket (the agent dying, a new channel), until one is
 * ready or wait_timeout_us passes. A peer that dies or closes makes its socket readable (EOF/RST), so
 * failures still surface at once. The lock is released while asleep so that other threads can send;
 * in_progress keeps their progress passes out. */
static void wait_for_network(void)
{
    size_t want = sock.inbound_count + opal_list_get_size(&sock.pending_endpoints) + 1;
    if (want > sock.wait_capacity) {
        struct pollfd *grown = realloc(sock.wait_fds, want * sizeof(*grown));
        if (NULL == grown) {
            return; /* keep spinning */
        }
        sock.wait_fds = grown;
        sock.wait_capacity = want;
    }
    nfds_t count = 0;
    sock.wait_fds[count++] = (struct pollfd){.fd = ff_agent_fd(sock.agent), .events = POLLIN};
    for (size_t i = 0; i < sock.inbound_count; ++i) {
        if (sock.inbound[i].fd >= 0) {
            sock.wait_fds[count++] = (struct pollfd){.fd = sock.inbound[i].fd, .events = POLLIN};
        }
    }
    opal_list_item_t *item;
    OPAL_LIST_FOREACH(item, &sock.pending_endpoints, opal_list_item_t)
    {
        sock_endpoint_t *endpoint = (sock_endpoint_t *) ((char *) item - offsetof(sock_endpoint_t, pending_item));
        sock.wait_fds[count++] = (struct pollfd){.fd = endpoint->fd, .events = POLLOUT};
    }
    const struct timespec timeout = {.tv_sec = param.wait_timeout_us / 1000000u,
                                     .tv_nsec = (long) (param.wait_timeout_us % 1000000u) * 1000L};
    if (0 == sock.waits++) {
        FF_LOG(FF_VERBOSE_DECISIONS,
               "freeflow: %s: waiting on handoff sockets in poll() after %u idle progress passes "
               "(btl_freeflow_sock_wait_spin), at most %u us at a time",
               OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), param.wait_spin, param.wait_timeout_us);
    }
    OPAL_THREAD_UNLOCK(&sock.lock);
    (void) ppoll(sock.wait_fds, count, &timeout, NULL); /* EINTR or a timeout: the next pass looks again */
    OPAL_THREAD_LOCK(&sock.lock);
    if (0 != sock.wait_fds[0].revents) {
        sock.passes = 0; /* the agent has something (a channel, or it is gone): accept on the next pass */
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
    if (!opal_list_is_empty(&sock.stream.completed)) {
        count += mca_btl_freeflow_stream_run_completions(&sock.stream);
    }
    if (count > 0 || 0 == param.wait_spin) {
        sock.idle_passes = 0;
    } else if (++sock.idle_passes >= param.wait_spin) {
        sock.idle_passes = 0;
        if (waiting_on_network() && may_block()) {
            wait_for_network();
        }
    }
    sock.in_progress = false;
    OPAL_THREAD_UNLOCK(&sock.lock);
    return count;
}

/* Lines of docs/btl-report.md for the pairs this module carried: ob1 fragments and put / get payloads
 * written to the peer (a get's payload counts for the rank that owns the memory and writes it). */
void mca_btl_freeflow_sock_report(FILE *file)
{
    if (!sock.registered) {
        return;
    }
    sock_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &sock.stream.endpoints, sock_endpoint_t)
    {
        if ((opal_jobid_t) (endpoint->stream.peer_id >> 32) == OPAL_PROC_MY_NAME.jobid) {
            fprintf(file, "peer %u handoff %llu %llu\n", (unsigned) (endpoint->stream.peer_id & 0xffffffffu),
                    (unsigned long long) (endpoint->stream.sent_fragments + endpoint->rdma_frames),
                    (unsigned long long) (endpoint->stream.sent_bytes + endpoint->rdma_bytes));
        }
        /* by id: ob1 may have released the proc already */
        FF_LOG(FF_VERBOSE_DECISIONS,
               "freeflow: %s -> rank %u of job %u: handoff carried %llu send frames (%llu bytes) and "
               "%llu rdma payloads (%llu bytes)",
               OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned) (endpoint->stream.peer_id & 0xffffffffu),
               (unsigned) (endpoint->stream.peer_id >> 32), (unsigned long long) endpoint->stream.sent_fragments,
               (unsigned long long) endpoint->stream.sent_bytes, (unsigned long long) endpoint->rdma_frames,
               (unsigned long long) endpoint->rdma_bytes);
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
    (void) mca_btl_freeflow_stream_run_completions(&sock.stream);
    sock.module_live = false;
    sock_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &sock.stream.endpoints, sock_endpoint_t)
    {
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
    free(sock.wait_fds);
    sock.wait_fds = NULL;
    sock.wait_capacity = 0;
    FF_LOG(FF_VERBOSE_LIFECYCLE,
           "freeflow: %s: handoff sockets closed; blocked in poll %llu times while waiting on them",
           OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned long long) sock.waits);
    sock.inbound_count = sock.inbound_capacity = 0;
    mca_btl_freeflow_agent_release(sock.agent);
    sock.agent = NULL;
}

/* Called by whichever module finalizes first (their order is ob1's), before the report is written. */
void mca_btl_freeflow_sock_shutdown(void)
{
    if (sock.registered) {
        shutdown_sockets();
    }
}

/* After the report: frees the endpoints, descriptors, and registrations / operations ob1 left. */
void mca_btl_freeflow_sock_release(void)
{
    if (!sock.registered) {
        return;
    }
    shutdown_sockets();
    mca_btl_freeflow_stream_fini(&sock.stream);
    OBJ_DESTRUCT(&sock.pending_endpoints);
    slots_free(&sock.registrations, false); /* their owners deregister them, possibly later */
    slots_free(&sock.ops, true);
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
