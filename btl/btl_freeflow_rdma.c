/*
 * RDMA over the rings (docs/onesided.md). Between ranks of one host, registered memory whose whole pages
 * were moved into a shared-directory file (ff_window_share) is reached by the origin itself: memcpy and CPU
 * atomics on its own mapping of the file (single copy, no help from the target). Everything else (other
 * hosts, memory that is not shared, a registration's partial edge pages) is a request record in our ring
 * to the target; the target's progress validates it against its OWN
 * registration table (handle, address range, access) and executes it on its memory: memcpy for put and
 * get, CPU atomics for the atomics (so they are atomic with respect to the target's own local atomics,
 * MCA_BTL_ATOMIC_SUPPORTS_GLOB). A response record in the target's ring back carries get data and fetched
 * values, and its arrival is the completion osc rdma waits for (local and remote: there is no btl_flush).
 *
 * Everything a peer sends is untrusted: request and response headers are copied out of shared memory
 * before they are checked; a registration handle names a slot of the target's table, whose base, length
 * and access the target alone knows; a response must name an outstanding request of ours, to that peer,
 * with the length we asked for.
 */
#include "btl_freeflow_rdma.h"
#include "btl_freeflow_endpoint.h"

#include "opal/class/opal_bitmap.h"
#include "opal/mca/btl/base/base.h"
#include "opal/mca/mpool/base/base.h"
#include "opal/util/output.h"
#include "opal/util/proc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <malloc.h>
#include <sys/random.h>
#include <unistd.h>

/* What osc rdma stores in its shared state and hands to peers: a slot of the owner's table. */
struct mca_btl_base_registration_handle_t {
    uint32_t index;
    uint32_t generation; /* bumped at deregistration: a stale handle no longer matches */
    uint64_t key;        /* random per registration: a handle cannot be guessed from another */
    uint32_t flags;      /* FF_HANDLE_*: a hint only; the origin verifies the shared file itself */
    uint32_t reserved;
};

/* The registration's whole pages live in a file of the shared directory (ff_window_share): a co-located
 * origin may map it and copy itself (single copy) instead of asking the target. */
#define FF_HANDLE_SHARED 1u

enum ff_rdma_op { FF_RDMA_PUT = 1, FF_RDMA_GET, FF_RDMA_AOP, FF_RDMA_AFOP, FF_RDMA_CSWAP };

/* Status a target reports; anything but OK aborts the job at the origin (docs/onesided.md). */
enum ff_rdma_status {
    FF_RDMA_OK = 0,
    FF_RDMA_BAD_HANDLE,   /* no such registration (never made, deregistered, or forged) */
    FF_RDMA_OUT_OF_RANGE, /* address range not inside the registration */
    FF_RDMA_NO_ACCESS,    /* registered without the remote access the operation needs */
    FF_RDMA_BAD_REQUEST,  /* malformed: lengths, width, alignment, operation */
};

static const char *status_name(int32_t status)
{
    switch (status) {
    case FF_RDMA_BAD_HANDLE: return "unknown registration handle";
    case FF_RDMA_OUT_OF_RANGE: return "address range outside the registered memory";
    case FF_RDMA_NO_ACCESS: return "memory not registered for that remote access";
    case FF_RDMA_BAD_REQUEST: return "malformed request";
    default: return "unknown status";
    }
}

#define FF_RDMA_WIRE_VERSION 1u

typedef struct ff_rdma_request_wire {
    uint8_t version;
    uint8_t op;    /* enum ff_rdma_op */
    uint8_t width; /* atomics: 4 or 8 bytes */
    uint8_t reserved;
    uint32_t len;           /* bytes to put or get; the width for atomics */
    uint32_t request_index; /* the origin's slot; echoed in the response */
    uint32_t request_generation;
    uint32_t region_index; /* the remote handle, as the origin got it */
    uint32_t region_generation;
    uint64_t region_key;
    uint64_t address;
    uint64_t operand;  /* atomics: operand; cswap: compare */
    uint64_t operand2; /* cswap: new value */
    uint32_t atomic_op;
    uint32_t reserved2;
    uint64_t
        origin_id; /* who asks: believed only on handoff sockets and router routes, which do not tell (a ring does) */
} ff_rdma_request_wire_t;

typedef struct ff_rdma_response_wire {
    uint32_t request_index;
    uint32_t request_generation;
    int32_t status;
    uint32_t len;          /* get data bytes that follow */
    uint64_t result;       /* fetched value of fop and cswap */
    uint64_t responder_id; /* as origin_id */
} ff_rdma_response_wire_t;

/* An operation of ours waiting for its response. */
typedef struct ff_rdma_request {
    bool in_use;
    uint8_t op;
    uint8_t width;
    uint32_t generation;
    uint32_t len;
    int32_t next_free;
    uint64_t peer_id;
    struct mca_btl_base_endpoint_t *endpoint; /* the rdma module's endpoint, handed back to the callback */
    void *local_address;                      /* where get data and fetched values land */
    void *report_address; /* what the callback is told: the whole operation's, when this is its edge */
    mca_btl_base_registration_handle_t *local_handle;
    mca_btl_base_rdma_completion_fn_t cbfunc;
    void *cbcontext;
    void *cbdata;
} ff_rdma_request_t;

typedef struct ff_rdma_region {
    bool in_use;
    uint32_t generation;
    uint32_t access; /* MCA_BTL_REG_FLAG_REMOTE_* */
    uint64_t key;
    uintptr_t base;
    size_t len;
    ff_window_t *window; /* its whole pages shared with co-located peers, or NULL */
} ff_rdma_region_t;

/* An origin's mapping of a co-located peer's shared registration (NULL view: not shared after all, the
 * target executes). Kept until the owner revokes it or we finalize. */
typedef struct ff_rdma_view {
    uint64_t peer_id;
    uint32_t index;
    uint32_t generation;
    uint64_t key;
    ff_window_view_t *view;
} ff_rdma_view_t;

/* The rdma module's view of a peer: its own object, so ob1 (which only uses RDMA through an endpoint
 * that also carries its sends) never mistakes it for another module's endpoint. Requests and responses
 * travel as ordinary fragments of the module that reaches the peer: the shm module (rings) for peers of
 * this host, the handoff module (sockets, path `h`) or the router module (routes through the agents, path
 * `r`) for peers of other hosts. */
typedef struct ff_rdma_endpoint {
    opal_list_item_t super;
    uint64_t peer_id;
    mca_btl_base_module_t *via;         /* NULL: ourselves, executed in place */
    struct mca_btl_base_endpoint_t *ep; /* via's endpoint for the peer */
} ff_rdma_endpoint_t;
OBJ_CLASS_INSTANCE(ff_rdma_endpoint_t, opal_list_item_t, NULL, NULL);

/* A response that found neither ring room nor a buffered descriptor: retried by progress. */
typedef struct ff_rdma_deferred {
    opal_list_item_t super;
    ff_rdma_endpoint_t *peer;
    size_t len;
    unsigned char data[];
} ff_rdma_deferred_t;
OBJ_CLASS_INSTANCE(ff_rdma_deferred_t, opal_list_item_t, NULL, NULL);

static struct {
    bool enabled; /* parameter btl_freeflow_rdma */
    unsigned int max_outstanding;
    unsigned int limit; /* parameter btl_freeflow_rdma_limit */
    bool ready;

    opal_mutex_t lock; /* requests and endpoints */
    ff_rdma_request_t *requests;
    uint32_t request_count;
    int32_t free_head;
    opal_list_t endpoints;
    opal_hash_table_t reply_paths; /* peer id -> ff_rdma_endpoint_t: where a target sends responses */

    opal_mutex_t regions_lock; /* held while a request touches registered memory: deregistration waits */
    ff_rdma_region_t *regions;
    uint32_t region_capacity;

    opal_mutex_t deferred_lock;
    opal_list_t deferred;

    bool single_copy;                                /* parameter btl_freeflow_rdma_single_copy */
    bool alloc_mem_pages;                            /* parameter btl_freeflow_rdma_alloc_mem_pages */
    mca_mpool_base_module_t *previous_default_mpool; /* restored at finalize; NULL: ours not installed */
    size_t single_copy_min;                          /* parameter btl_freeflow_rdma_single_copy_min */
    opal_mutex_t views_lock;
    ff_rdma_view_t *views;
    size_t view_count, view_capacity;
} rdma;

_Atomic int32_t mca_btl_freeflow_rdma_deferred_count = 0;

static int rdma_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                          struct mca_btl_base_endpoint_t **peers, struct opal_bitmap_t *reachable);
static int rdma_finalize(struct mca_btl_base_module_t *btl);
static mca_btl_base_registration_handle_t *rdma_register_mem(struct mca_btl_base_module_t *btl,
                                                             struct mca_btl_base_endpoint_t *endpoint, void *base,
                                                             size_t size, uint32_t flags);
static int rdma_deregister_mem(struct mca_btl_base_module_t *btl, mca_btl_base_registration_handle_t *handle);
static int rdma_put(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                    struct mca_btl_base_registration_handle_t *remote_handle, size_t size, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata);
static int rdma_get(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                    struct mca_btl_base_registration_handle_t *remote_handle, size_t size, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata);
static int rdma_aop(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *remote_handle,
                    mca_btl_base_atomic_op_t op, uint64_t operand, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata);
static int rdma_afop(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                     uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                     struct mca_btl_base_registration_handle_t *remote_handle, mca_btl_base_atomic_op_t op,
                     uint64_t operand, int flags, int order, mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext,
                     void *cbdata);
static int rdma_cswap(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                      uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                      struct mca_btl_base_registration_handle_t *remote_handle, uint64_t compare, uint64_t value,
                      int flags, int order, mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata);

static void descriptor_done(mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                            mca_btl_base_descriptor_t *descriptor, int status);
static void sock_delivery(mca_btl_base_module_t *btl, mca_btl_base_tag_t tag, mca_btl_base_descriptor_t *descriptor,
                          void *cbdata);

mca_btl_freeflow_module_t mca_btl_freeflow_rdma_module = {
    .super =
        {
            .btl_component = &mca_btl_freeflow_component.super,
            .btl_add_procs = rdma_add_procs,
            .btl_del_procs = mca_btl_freeflow_del_procs,
            .btl_finalize = rdma_finalize,
            .btl_register_mem = rdma_register_mem,
            .btl_deregister_mem = rdma_deregister_mem,
            .btl_put = rdma_put,
            .btl_get = rdma_get,
            .btl_atomic_op = rdma_aop,
            .btl_atomic_fop = rdma_afop,
            .btl_atomic_cswap = rdma_cswap,
            .btl_dump = mca_btl_base_dump,
            .btl_register_error = mca_btl_freeflow_register_error,
        },
};

#define SUPPORTED_ATOMICS                                                                                              \
    (MCA_BTL_ATOMIC_SUPPORTS_ADD | MCA_BTL_ATOMIC_SUPPORTS_AND | MCA_BTL_ATOMIC_SUPPORTS_OR |                          \
     MCA_BTL_ATOMIC_SUPPORTS_XOR | MCA_BTL_ATOMIC_SUPPORTS_SWAP | MCA_BTL_ATOMIC_SUPPORTS_MIN |                        \
     MCA_BTL_ATOMIC_SUPPORTS_MAX | MCA_BTL_ATOMIC_SUPPORTS_CSWAP | MCA_BTL_ATOMIC_SUPPORTS_32BIT |                     \
     MCA_BTL_ATOMIC_SUPPORTS_GLOB)

/* MCA parameters (btl_freeflow_rdma*), registered by mca_btl_freeflow_rdma_register. */
static const mca_btl_freeflow_param_t rdma_params[] = {
    {.name = "rdma",
     .type = MCA_BASE_VAR_TYPE_BOOL,
     .storage = &rdma.enabled,
     .default_number = 1,
     .level = OPAL_INFO_LVL_4,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Offer RDMA operations (put, get, atomics) between ranks that reach each other through freeflow (shared "
             "memory rings, the handoff sockets of path h, or the router routes of path r), executed by the target, so "
             "that MPI one-sided communication (osc rdma) works across containers and hosts (docs/onesided.md). Must "
             "be the same on every rank. 0 leaves windows between containers to other components (osc pt2pt)."},
    {.name = "rdma_max_outstanding",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &rdma.max_outstanding,
     .default_number = 4096,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "RDMA operations one rank may have in flight (waiting for the target's response) at once; more wait in "
             "osc rdma until responses arrive."},
    {.name = "rdma_limit",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &rdma.limit,
     .default_number = 64u * 1024u - (unsigned int) sizeof(ff_rdma_request_wire_t),
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Largest put or get carried by one request (bytes); osc rdma splits larger transfers. Capped so that a "
             "request or response fits one ring record and one buffered descriptor (btl_freeflow_max_send_size)."},
    {.name = "rdma_single_copy",
     .type = MCA_BASE_VAR_TYPE_BOOL,
     .storage = &rdma.single_copy,
     .default_number = 1,
     .level = OPAL_INFO_LVL_4,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help =
         "Single copy between containers of one host: the whole pages of memory registered for remote access (window "
         "memory) move into a file of the shared directory, mapped at the same addresses, so that co-located peers map "
         "it and put, get and run atomics themselves, without the target (docs/onesided.md). Only private anonymous "
         "memory (heap, anonymous mmap) moves; the rest stays target-executed. Must be the same on every rank."},
    {.name = "rdma_alloc_mem_pages",
     .type = MCA_BASE_VAR_TYPE_BOOL,
     .storage = &rdma.alloc_mem_pages,
     .default_number = 1,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "With single copy: MPI_Alloc_mem returns page-aligned memory rounded up to whole pages (Open MPI's "
             "default memory pool, plain malloc, is replaced while the BTL is loaded), so that a window made on it has "
             "no partial first or last page and co-located peers reach all of it without the target's help. Costs up "
             "to one page per allocation."},
    {.name = "rdma_single_copy_min",
     .type = MCA_BASE_VAR_TYPE_SIZE_T,
     .storage = &rdma.single_copy_min,
     .default_number = 0,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Smallest registration (bytes of whole pages) moved into the shared directory for single copy; smaller "
             "ones stay target-executed. 0: any registration with at least one whole page."},
};

void mca_btl_freeflow_rdma_register(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    mca_btl_base_module_t *btl = &mca_btl_freeflow_rdma_module.super;

    mca_btl_freeflow_register_params(&c->super.btl_version, rdma_params, sizeof(rdma_params) / sizeof(rdma_params[0]));

    /* No MCA_BTL_FLAGS_SEND: ob1 never sends through this module, and (mca_pml_ob1_rdma_btls) uses RDMA only
     * through an endpoint that also carries its sends, so two-sided messages keep the shm module's path.
     * RDMA|ATOMIC_FOPS makes bml list it among every reachable peer's RDMA BTLs, which osc rdma searches. */
    btl->btl_flags = MCA_BTL_FLAGS_PUT | MCA_BTL_FLAGS_GET | MCA_BTL_FLAGS_ATOMIC_OPS | MCA_BTL_FLAGS_ATOMIC_FOPS;
    btl->btl_atomic_flags = SUPPORTED_ATOMICS;
    btl->btl_registration_handle_size = sizeof(mca_btl_base_registration_handle_t);
    btl->btl_exclusivity = MCA_BTL_EXCLUSIVITY_LOW;
    /* Below vader's 1, so osc rdma prefers this module even when vader reaches every rank of a window (one
     * container): Open MPI 4.1.4's osc rdma hands vader a NULL endpoint for compare-and-swap on local memory
     * and vader crashes (ffcheck_rma, lock subtest); this module refuses a NULL endpoint and osc falls back
     * to its local path. */
    btl->btl_latency = 0;
    btl->btl_bandwidth = 10000;
    btl->btl_put_alignment = 0;
    btl->btl_get_alignment = 0;
    /* Local buffers are never registered: the origin copies from and to them itself. */
    btl->btl_put_local_registration_threshold = SIZE_MAX;
    btl->btl_get_local_registration_threshold = SIZE_MAX;
}

/* ---- MPI_Alloc_mem in whole pages ----
 * A registration shares only its whole pages: bytes on its partial first and last page belong to
 * neighbours and stay private, so operations touching them need the target. MPI_Alloc_mem (IMB and many
 * applications allocate window memory with it) is plain malloc in Open MPI 4.1 (the default mpool), whose
 * blocks start 16 bytes into a page; ours start on a page and end on one. */
static size_t page_bytes(void)
{
    const long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t) page : 4096u;
}

static void *pages_alloc(mca_mpool_base_module_t *mpool, size_t size, size_t align, uint32_t flags)
{
    (void) mpool;
    (void) flags;
    const size_t page = page_bytes();
    void *memory = NULL;
    if (size < page || size > SIZE_MAX - page) {
        /* below a page nothing could be shared anyway: as Open MPI's own pool, without the waste */
        if (align <= sizeof(void *)) {
            return malloc(size);
        }
        return 0 == posix_memalign(&memory, align, size) ? memory : NULL;
    }
    const size_t rounded = (size + page - 1) / page * page;
    /* posix_memalign wants a power of two multiple of sizeof(void *): a page is, so is any sane `align` */
    const size_t alignment = align > page && 0 == (align & (align - 1)) ? align : page;
    return 0 == posix_memalign(&memory, alignment, rounded) ? memory : NULL;
}

static void *pages_realloc(mca_mpool_base_module_t *mpool, void *addr, size_t size)
{
    void *moved = pages_alloc(mpool, size, 0, 0);
    if (NULL != moved && NULL != addr) {
        const size_t old = malloc_usable_size(addr);
        memcpy(moved, addr, old < size ? old : size);
        free(addr);
    }
    return moved;
}

static void pages_free(mca_mpool_base_module_t *mpool, void *addr)
{
    (void) mpool;
    free(addr);
}

static void pages_finalize(mca_mpool_base_module_t *mpool)
{
    (void) mpool;
}

static mca_mpool_base_module_t pages_mpool = {
    .mpool_alloc = pages_alloc,
    .mpool_realloc = pages_realloc,
    .mpool_free = pages_free,
    .mpool_finalize = pages_finalize,
    .flags = MCA_MPOOL_FLAGS_MPI_ALLOC_MEM,
    .mpool_name = "freeflow-pages",
};

/* Why the plugin stays mapped until exit (RTLD_NODELETE on the already loaded object): opal_free_list_init
 * keeps the default pool of its time (opal_free_list.c: fl_mpool = mca_mpool_base_default_module), so free
 * lists other components make while ours is the default free through pages_mpool when they are destructed,
 * and btl tcp's are destructed after Open MPI has dlclose()d this plugin: MPI_Finalize then segfaults
 * (btl self,freeflow,tcp; ctest ffcheck.rma.freeflow-tcp). False: it cannot be pinned, keep the default pool. */
static bool pin_plugin(void)
{
    Dl_info info;
    if (0 == dladdr((void *) &pages_alloc, &info) || NULL == info.dli_fname) {
        return false;
    }
    return NULL != dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

bool mca_btl_freeflow_rdma_init(void)
{
    mca_btl_base_module_t *btl = &mca_btl_freeflow_rdma_module.super;
    const mca_btl_base_module_t *shm = &mca_btl_freeflow_module.super;
    if (!rdma.enabled || 0 == rdma.max_outstanding || 0 == rdma.limit) {
        return false;
    }
    /* A request (put) or response (get) is one descriptor of the shm module: ring record or buffered. */
    size_t largest = shm->btl_max_send_size;
    if (mca_btl_freeflow_component.sock_active && mca_btl_freeflow_sock_module.super.btl_max_send_size < largest) {
        largest = mca_btl_freeflow_sock_module.super.btl_max_send_size;
    }
    if (mca_btl_freeflow_component.router_active && mca_btl_freeflow_router_module.super.btl_max_send_size < largest) {
        largest = mca_btl_freeflow_router_module.super.btl_max_send_size;
    }
    size_t cap = largest > sizeof(ff_rdma_request_wire_t) ? largest - sizeof(ff_rdma_request_wire_t) : 0;
    if (cap < 64) {
        return false;
    }
    btl->btl_put_limit = btl->btl_get_limit = rdma.limit < cap ? rdma.limit : cap;

    rdma.requests = calloc(rdma.max_outstanding, sizeof(*rdma.requests));
    rdma.region_capacity = 16;
    rdma.regions = calloc(rdma.region_capacity, sizeof(*rdma.regions));
    if (NULL == rdma.requests || NULL == rdma.regions) {
        free(rdma.requests);
        free(rdma.regions);
        rdma.requests = NULL;
        rdma.regions = NULL;
        return false;
    }
    rdma.request_count = rdma.max_outstanding;
    for (uint32_t i = 0; i < rdma.request_count; ++i) {
        rdma.requests[i].next_free = i + 1 < rdma.request_count ? (int32_t) i + 1 : -1;
    }
    rdma.free_head = 0;
    OBJ_CONSTRUCT(&rdma.lock, opal_mutex_t);
    OBJ_CONSTRUCT(&rdma.regions_lock, opal_mutex_t);
    OBJ_CONSTRUCT(&rdma.deferred_lock, opal_mutex_t);
    OBJ_CONSTRUCT(&rdma.views_lock, opal_mutex_t);
    rdma.views = NULL;
    rdma.view_count = rdma.view_capacity = 0;
    OBJ_CONSTRUCT(&rdma.endpoints, opal_list_t);
    OBJ_CONSTRUCT(&rdma.deferred, opal_list_t);
    OBJ_CONSTRUCT(&rdma.reply_paths, opal_hash_table_t);
    if (OPAL_SUCCESS != opal_hash_table_init(&rdma.reply_paths, 64)) {
        rdma.ready = true;
        mca_btl_freeflow_rdma_fini();
        return false;
    }
    if (mca_btl_freeflow_component.sock_active || mca_btl_freeflow_component.router_active) {
        /* The handoff sockets and the router deliver through Open MPI's tag table (the rings hand our tags
         * over directly). */
        mca_btl_base_active_message_trigger[MCA_BTL_FREEFLOW_TAG_RDMA_REQUEST].cbfunc = sock_delivery;
        mca_btl_base_active_message_trigger[MCA_BTL_FREEFLOW_TAG_RDMA_REQUEST].cbdata = NULL;
        mca_btl_base_active_message_trigger[MCA_BTL_FREEFLOW_TAG_RDMA_RESPONSE].cbfunc = sock_delivery;
        mca_btl_base_active_message_trigger[MCA_BTL_FREEFLOW_TAG_RDMA_RESPONSE].cbdata = NULL;
    }
    if (rdma.single_copy && rdma.alloc_mem_pages && NULL == rdma.previous_default_mpool && pin_plugin()) {
        /* Process-wide because Open MPI 4.1 has no other way in: MPI_Alloc_mem without hints takes the
         * default pool (mca_mpool_base_alloc -> mca_mpool_base_module_lookup), and no hook lets a BTL
         * serve it; hints naming another pool still get it. mca_mpool_base_free finds the pool of each
         * block in its tree, so blocks keep their own. */
        rdma.previous_default_mpool = mca_mpool_base_default_module;
        mca_mpool_base_default_module = &pages_mpool;
    }
    rdma.ready = true;
    return true;
}

void mca_btl_freeflow_rdma_fini(void)
{
    if (!rdma.ready) {
        return;
    }
    rdma.ready = false;
    if (NULL != rdma.previous_default_mpool && mca_mpool_base_default_module == &pages_mpool) {
        mca_mpool_base_default_module = rdma.previous_default_mpool;
    }
    rdma.previous_default_mpool = NULL;
    mca_btl_base_active_message_trigger[MCA_BTL_FREEFLOW_TAG_RDMA_REQUEST].cbfunc = NULL;
    mca_btl_base_active_message_trigger[MCA_BTL_FREEFLOW_TAG_RDMA_RESPONSE].cbfunc = NULL;
    OPAL_LIST_DESTRUCT(&rdma.endpoints);
    OPAL_LIST_DESTRUCT(&rdma.deferred);
    /* relaxed: finalize, after every thread that queued responses has stopped */
    atomic_store_explicit(&mca_btl_freeflow_rdma_deferred_count, 0, memory_order_relaxed);
    OBJ_DESTRUCT(&rdma.reply_paths);
    for (size_t i = 0; i < rdma.view_count; ++i) {
        ff_window_view_close(rdma.views[i].view);
    }
    free(rdma.views);
    rdma.views = NULL;
    rdma.view_count = rdma.view_capacity = 0;
    /* registrations osc left behind: their files must not outlive us */
    for (uint32_t i = 0; i < rdma.region_capacity; ++i) {
        ff_window_unshare(rdma.regions[i].window);
        rdma.regions[i].window = NULL;
    }
    OBJ_DESTRUCT(&rdma.views_lock);
    OBJ_DESTRUCT(&rdma.deferred_lock);
    OBJ_DESTRUCT(&rdma.regions_lock);
    OBJ_DESTRUCT(&rdma.lock);
    free(rdma.requests);
    free(rdma.regions);
    rdma.requests = NULL;
    rdma.regions = NULL;
}

/* ---- peers ---- */

static ff_rdma_endpoint_t *endpoint_for(uint64_t peer_id, mca_btl_base_module_t *via,
                                        struct mca_btl_base_endpoint_t *ep)
{
    ff_rdma_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &rdma.endpoints, ff_rdma_endpoint_t)
    {
        if (endpoint->peer_id == peer_id) {
            return endpoint;
        }
    }
    endpoint = OBJ_NEW(ff_rdma_endpoint_t);
    if (NULL == endpoint) {
        return NULL;
    }
    endpoint->peer_id = peer_id;
    endpoint->via = via;
    endpoint->ep = ep;
    opal_list_append(&rdma.endpoints, &endpoint->super);
    if (NULL != via) {
        (void) opal_hash_table_set_value_uint64(&rdma.reply_paths, peer_id, endpoint);
    }
    return endpoint;
}

/* Reaches exactly the peers the shm module reaches (the same proof: path table, host identity, verified
 * segment), those the handoff module reaches (path `h`) and those the router module reaches (path `r`),
 * plus this rank itself, whose operations run in place. Peers left to tcp are not reached: a window that
 * spans them is another osc component's (docs/onesided.md). */
static int rdma_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                          struct mca_btl_base_endpoint_t **peers, struct opal_bitmap_t *reachable)
{
    const opal_proc_t *self = opal_proc_local_get();
    int rc = OPAL_SUCCESS;
    (void) btl;
    for (size_t i = 0; i < nprocs && OPAL_SUCCESS == rc; ++i) {
        opal_proc_t *proc = procs[i];
        const uint64_t peer_id = mca_btl_freeflow_peer_id(proc->proc_name);
        struct mca_btl_base_endpoint_t *ep = NULL;
        mca_btl_base_module_t *via = NULL;
        peers[i] = NULL;
        if (proc != self) {
            /* both idempotent: an endpoint made before is returned, a declined pair stays declined */
            via = &mca_btl_freeflow_module.super;
            rc = via->btl_add_procs(via, 1, &procs[i], &ep, NULL);
            if (OPAL_SUCCESS == rc && NULL == ep && mca_btl_freeflow_component.sock_active) {
                via = &mca_btl_freeflow_sock_module.super;
                rc = via->btl_add_procs(via, 1, &procs[i], &ep, NULL);
            }
            if (OPAL_SUCCESS == rc && NULL == ep && mca_btl_freeflow_component.router_active) {
                via = &mca_btl_freeflow_router_module.super;
                rc = via->btl_add_procs(via, 1, &procs[i], &ep, NULL);
            }
            if (OPAL_SUCCESS != rc || NULL == ep) {
                continue;
            }
        }
        OPAL_THREAD_LOCK(&rdma.lock);
        ff_rdma_endpoint_t *endpoint = endpoint_for(peer_id, via, ep);
        OPAL_THREAD_UNLOCK(&rdma.lock);
        if (NULL == endpoint) {
            rc = OPAL_ERR_OUT_OF_RESOURCE;
            break;
        }
        if (NULL != reachable) {
            rc = opal_bitmap_set_bit(reachable, (int) i);
        }
        peers[i] = (struct mca_btl_base_endpoint_t *) endpoint;
    }
    return rc;
}

static int rdma_finalize(struct mca_btl_base_module_t *btl)
{
    (void) btl;
    mca_btl_freeflow_rdma_fini();
    return OPAL_SUCCESS;
}

/* Where responses to `peer_id` go: the endpoint our add_procs made, or the shm module's (a pair it proved
 * but that our module was not asked about, e.g. a process of a spawned job). */
static ff_rdma_endpoint_t *reply_path(uint64_t peer_id)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    void *value = NULL;
    OPAL_THREAD_LOCK(&rdma.lock);
    int found = opal_hash_table_get_value_uint64(&rdma.reply_paths, peer_id, &value);
    OPAL_THREAD_UNLOCK(&rdma.lock);
    if (OPAL_SUCCESS == found) {
        return value;
    }
    mca_btl_freeflow_endpoint_t *endpoint, *shm = NULL;
    OPAL_THREAD_LOCK(&c->lock);
    OPAL_LIST_FOREACH(endpoint, &c->endpoints, mca_btl_freeflow_endpoint_t)
    {
        if (endpoint->peer_id == peer_id) {
            shm = endpoint;
            break;
        }
    }
    OPAL_THREAD_UNLOCK(&c->lock);
    if (NULL == shm) {
        return NULL;
    }
    OPAL_THREAD_LOCK(&rdma.lock);
    ff_rdma_endpoint_t *made = endpoint_for(peer_id, &mca_btl_freeflow_module.super, shm);
    OPAL_THREAD_UNLOCK(&rdma.lock);
    return made;
}

/* A fragment of the module that reaches the peer; NULL when it has no room (the caller retries). */
static mca_btl_base_descriptor_t *alloc_to(ff_rdma_endpoint_t *peer, size_t size)
{
    mca_btl_base_descriptor_t *descriptor =
        peer->via->btl_alloc(peer->via, peer->ep, MCA_BTL_NO_ORDER, size, MCA_BTL_DES_FLAGS_BTL_OWNERSHIP);
    if (NULL != descriptor) {
        descriptor->des_cbfunc = descriptor_done;
    }
    return descriptor;
}

static int send_to(ff_rdma_endpoint_t *peer, mca_btl_base_descriptor_t *descriptor, uint8_t tag)
{
    return peer->via->btl_send(peer->via, peer->ep, descriptor, tag);
}

/* ---- registrations (our memory that peers may address) ---- */

static mca_btl_base_registration_handle_t *rdma_register_mem(struct mca_btl_base_module_t *btl,
                                                             struct mca_btl_base_endpoint_t *endpoint, void *base,
                                                             size_t size, uint32_t flags)
{
    (void) btl;
    (void) endpoint;
    if ((uintptr_t) base > UINTPTR_MAX - size) {
        return NULL;
    }
    mca_btl_base_registration_handle_t *handle = malloc(sizeof(*handle));
    uint64_t key;
    if (NULL == handle || sizeof(key) != getrandom(&key, sizeof(key), 0)) {
        free(handle);
        return NULL;
    }
    OPAL_THREAD_LOCK(&rdma.regions_lock);
    uint32_t index = 0;
    while (index < rdma.region_capacity && rdma.regions[index].in_use) {
        ++index;
    }
    if (index == rdma.region_capacity) {
        ff_rdma_region_t *grown = realloc(rdma.regions, 2 * sizeof(*grown) * rdma.region_capacity);
        if (NULL == grown) {
            OPAL_THREAD_UNLOCK(&rdma.regions_lock);
            free(handle);
            return NULL;
        }
        memset(grown + rdma.region_capacity, 0, sizeof(*grown) * rdma.region_capacity);
        rdma.regions = grown;
        rdma.region_capacity *= 2;
    }
    ff_rdma_region_t *region = &rdma.regions[index];
    region->in_use = true;
    region->key = key;
    region->base = (uintptr_t) base;
    region->len = size;
    region->access =
        flags & (MCA_BTL_REG_FLAG_REMOTE_READ | MCA_BTL_REG_FLAG_REMOTE_WRITE | MCA_BTL_REG_FLAG_REMOTE_ATOMIC);
    region->window = NULL;
    handle->index = index;
    handle->generation = region->generation;
    handle->key = key;
    handle->flags = 0;
    handle->reserved = 0;
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    if (rdma.single_copy && 0 != region->access && c->dirfd >= 0) {
        ff_status_t shared = ff_window_share(c->dirfd, c->my_id, index, region->generation, key, base, size,
                                             rdma.single_copy_min, &region->window);
        if (FF_OK == shared) {
            handle->flags |= FF_HANDLE_SHARED;
        }
        FF_LOG(FF_VERBOSE_DECISIONS, "freeflow: %s registration %u (%zu bytes at %p): %s",
               OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), index, size, base,
               FF_OK == shared ? "whole pages shared for single copy" : ff_status_name(shared));
    }
    OPAL_THREAD_UNLOCK(&rdma.regions_lock);
    return handle;
}

static int rdma_deregister_mem(struct mca_btl_base_module_t *btl, mca_btl_base_registration_handle_t *handle)
{
    (void) btl;
    OPAL_THREAD_LOCK(&rdma.regions_lock);
    if (handle->index < rdma.region_capacity && rdma.regions[handle->index].in_use &&
        rdma.regions[handle->index].generation == handle->generation) {
        rdma.regions[handle->index].in_use = false;
        rdma.regions[handle->index].generation++;
        /* peers' views are revoked and the pages made private again before osc frees the memory */
        ff_window_unshare(rdma.regions[handle->index].window);
        rdma.regions[handle->index].window = NULL;
    }
    OPAL_THREAD_UNLOCK(&rdma.regions_lock);
    free(handle);
    return OPAL_SUCCESS;
}

/* ---- execution at the target (or in place for ourselves) ---- */

static bool signed_less(uint64_t a, uint64_t b, uint8_t width)
{
    return 4 == width ? (int32_t) a < (int32_t) b : (int64_t) a < (int64_t) b;
}

/* All atomics are sequentially consistent CPU atomics on the target's memory: osc rdma mixes them with
 * its own opal_atomic_* (full barriers) on the same words (locks, counters). The words are osc's plain
 * integers, reached through an _Atomic view (btl_freeflow.h, "Atomics"). Every operation below is
 * memory_order_seq_cst for that reason, on success and on failure of a compare-exchange alike. */
#define APPLY_ATOMIC(type, pointer)                                                                                    \
    do {                                                                                                               \
        _Atomic type *const word = MCA_BTL_FREEFLOW_ATOMIC(type, pointer);                                             \
        const type value = (type) req->operand;                                                                        \
        const memory_order order = memory_order_seq_cst; /* see above: interoperates with osc's full barriers */       \
        switch (req->op == FF_RDMA_CSWAP ? 0xffffffffu : req->atomic_op) {                                             \
        case 0xffffffffu: {                                                                                            \
            type expected = value;                                                                                     \
            (void) atomic_compare_exchange_strong_explicit(word, &expected, (type) req->operand2, order, order);       \
            *result = (uint64_t) expected;                                                                             \
            break;                                                                                                     \
        }                                                                                                              \
        case MCA_BTL_ATOMIC_ADD: *result = (uint64_t) atomic_fetch_add_explicit(word, value, order); break;            \
        case MCA_BTL_ATOMIC_AND: *result = (uint64_t) atomic_fetch_and_explicit(word, value, order); break;            \
        case MCA_BTL_ATOMIC_OR: *result = (uint64_t) atomic_fetch_or_explicit(word, value, order); break;              \
        case MCA_BTL_ATOMIC_XOR: *result = (uint64_t) atomic_fetch_xor_explicit(word, value, order); break;            \
        case MCA_BTL_ATOMIC_SWAP: *result = (uint64_t) atomic_exchange_explicit(word, value, order); break;            \
        case MCA_BTL_ATOMIC_MIN:                                                                                       \
        case MCA_BTL_ATOMIC_MAX: {                                                                                     \
            const bool want_min = MCA_BTL_ATOMIC_MIN == req->atomic_op;                                                \
            type old = atomic_load_explicit(word, order);                                                              \
            for (;;) {                                                                                                 \
                const bool replace = want_min ? signed_less((uint64_t) value, (uint64_t) old, req->width)              \
                                              : signed_less((uint64_t) old, (uint64_t) value, req->width);             \
                if (!replace || atomic_compare_exchange_strong_explicit(word, &old, value, order, order)) {            \
                    break;                                                                                             \
                }                                                                                                      \
            }                                                                                                          \
            *result = (uint64_t) old;                                                                                  \
            break;                                                                                                     \
        }                                                                                                              \
        default: status = FF_RDMA_BAD_REQUEST; break;                                                                  \
        }                                                                                                              \
    } while (0)

static bool atomic_well_formed(const ff_rdma_request_wire_t *req)
{
    return (4 == req->width || 8 == req->width) && req->len == req->width && 0 == req->address % req->width;
}

/* An atomic on `target` (the target's own word, or our mapping of it: the same physical memory, so CPU
 * atomics from both sides are atomic with respect to each other). */
static int32_t apply_atomic(const ff_rdma_request_wire_t *req, void *target, uint64_t *result)
{
    int32_t status = FF_RDMA_OK;
    if (4 == req->width) {
        APPLY_ATOMIC(uint32_t, target);
    } else {
        APPLY_ATOMIC(uint64_t, target);
    }
    return status;
}

/* Runs a validated-or-refused request on our memory. `put_data` is the put's payload, `get_dest` where a
 * get's bytes go; `result` receives the old value of an atomic. The regions lock is held throughout, so
 * a deregistration cannot pull memory away in the middle. */
static int32_t execute(const ff_rdma_request_wire_t *req, const void *put_data, void *get_dest, uint64_t *result)
{
    uint32_t need;
    switch (req->op) {
    case FF_RDMA_PUT: need = MCA_BTL_REG_FLAG_REMOTE_WRITE; break;
    case FF_RDMA_GET: need = MCA_BTL_REG_FLAG_REMOTE_READ; break;
    case FF_RDMA_AOP:
    case FF_RDMA_AFOP:
    case FF_RDMA_CSWAP:
        if (!atomic_well_formed(req)) {
            return FF_RDMA_BAD_REQUEST;
        }
        need = MCA_BTL_REG_FLAG_REMOTE_ATOMIC;
        break;
    default: return FF_RDMA_BAD_REQUEST;
    }
    int32_t status = FF_RDMA_OK;
    OPAL_THREAD_LOCK(&rdma.regions_lock);
    const ff_rdma_region_t *region = req->region_index < rdma.region_capacity ? &rdma.regions[req->region_index] : NULL;
    if (NULL == region || !region->in_use || region->generation != req->region_generation ||
        region->key != req->region_key) {
        status = FF_RDMA_BAD_HANDLE;
    } else if (req->address < region->base || req->len > region->len ||
               req->address - region->base > region->len - req->len) {
        status = FF_RDMA_OUT_OF_RANGE;
    } else if (need != (region->access & need)) {
        status = FF_RDMA_NO_ACCESS;
    } else {
        void *target = (void *) (uintptr_t) req->address;
        switch (req->op) {
        case FF_RDMA_PUT: ff_copy(target, put_data, req->len); break;
        case FF_RDMA_GET: ff_copy(get_dest, target, req->len); break;
        default: status = apply_atomic(req, target, result); break;
        }
    }
    OPAL_THREAD_UNLOCK(&rdma.regions_lock);
    return status;
}

/* ---- origin ---- */

static void descriptor_done(mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                            mca_btl_base_descriptor_t *descriptor, int status)
{
    /* the shm module returns the descriptor itself (BTL ownership); completion is the response */
    (void) btl;
    (void) endpoint;
    (void) descriptor;
    (void) status;
}

static void fail_operation(uint64_t peer_id, int32_t status, const char *what)
{
    char message[384];
    snprintf(message, sizeof(message),
             "freeflow: %s: an RDMA %s to %llx:%llu was refused by the target: %s. MPI one-sided communication "
             "addressed memory outside the target's window (an erroneous program) or a peer sent forged data. "
             "Aborting.",
             OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), what, (unsigned long long) (peer_id >> 32),
             (unsigned long long) (peer_id & 0xffffffffu), status_name(status));
    mca_btl_freeflow_fatal(NULL, message);
}

static const char *op_name(uint8_t op)
{
    switch (op) {
    case FF_RDMA_PUT: return "put";
    case FF_RDMA_GET: return "get";
    case FF_RDMA_AOP: return "atomic";
    case FF_RDMA_AFOP: return "fetching atomic";
    default: return "compare-and-swap";
    }
}

static void store_result(void *local_address, uint64_t result, uint8_t width)
{
    if (4 == width) {
        const uint32_t narrow = (uint32_t) result;
        memcpy(local_address, &narrow, sizeof(narrow));
    } else {
        memcpy(local_address, &result, sizeof(result));
    }
}

/* Our mapping of a co-located peer's registration, or NULL when the target must execute: not a peer of
 * this host, not shared, the file does not verify (then never again for this registration), or revoked.
 * Only the registration's whole pages are in it: its partial first and last pages stay private to the
 * target. A view is closed only once its owner revoked it (the window was freed), so an access racing
 * with that was erroneous anyway. */
static ff_window_view_t *find_view(const ff_rdma_endpoint_t *endpoint, const mca_btl_base_registration_handle_t *handle)
{
    if (!rdma.single_copy || endpoint->via != &mca_btl_freeflow_module.super || !(handle->flags & FF_HANDLE_SHARED)) {
        return NULL;
    }
    ff_window_view_t *found = NULL;
    OPAL_THREAD_LOCK(&rdma.views_lock);
    ff_rdma_view_t *entry = NULL;
    for (size_t i = 0; i < rdma.view_count; ++i) {
        ff_rdma_view_t *candidate = &rdma.views[i];
        if (candidate->peer_id == endpoint->peer_id && candidate->index == handle->index &&
            candidate->generation == handle->generation && candidate->key == handle->key) {
            entry = candidate;
            break;
        }
    }
    if (NULL == entry) {
        /* drop views the owners revoked (their windows were freed) before adding one */
        size_t kept = 0;
        for (size_t i = 0; i < rdma.view_count; ++i) {
            if (NULL != rdma.views[i].view && ff_window_view_revoked(rdma.views[i].view)) {
                ff_window_view_close(rdma.views[i].view);
                continue;
            }
            rdma.views[kept++] = rdma.views[i];
        }
        rdma.view_count = kept;
        if (rdma.view_count == rdma.view_capacity) {
            const size_t capacity = rdma.view_capacity ? 2 * rdma.view_capacity : 16;
            ff_rdma_view_t *grown = realloc(rdma.views, capacity * sizeof(*grown));
            if (NULL == grown) {
                OPAL_THREAD_UNLOCK(&rdma.views_lock);
                return NULL;
            }
            rdma.views = grown;
            rdma.view_capacity = capacity;
        }
        entry = &rdma.views[rdma.view_count++];
        *entry = (ff_rdma_view_t){
            .peer_id = endpoint->peer_id, .index = handle->index, .generation = handle->generation, .key = handle->key};
        ff_status_t status = ff_window_view_open(mca_btl_freeflow_component.dirfd, endpoint->peer_id, handle->index,
                                                 handle->generation, handle->key, &entry->view);
        FF_LOG(FF_VERBOSE_DECISIONS, "freeflow: %s RDMA to %llx:%llu registration %u: %s",
               OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned long long) (endpoint->peer_id >> 32),
               (unsigned long long) (endpoint->peer_id & 0xffffffffu), handle->index,
               FF_OK == status ? "single copy through the shared file" : "shared file refused, the target executes");
        if (FF_OK != status) {
            entry->view = NULL;
        }
    }
    if (NULL != entry->view && !ff_window_view_revoked(entry->view)) {
        found = entry->view;
    }
    OPAL_THREAD_UNLOCK(&rdma.views_lock);
    return found;
}

static int issue(struct mca_btl_base_endpoint_t *btl_endpoint, ff_rdma_request_wire_t *req, const void *put_data,
                 void *local_address, void *report_address, mca_btl_base_registration_handle_t *local_handle,
                 mca_btl_base_registration_handle_t *remote_handle, mca_btl_base_rdma_completion_fn_t cbfunc,
                 void *cbcontext, void *cbdata)
{
    ff_rdma_endpoint_t *endpoint = (ff_rdma_endpoint_t *) btl_endpoint;
    mca_btl_base_module_t *btl = &mca_btl_freeflow_rdma_module.super;
    if (NULL == remote_handle) {
        /* osc rdma names memory it reaches with plain loads and stores (a "local base" peer: its own rank's
         * window in MPI_Win_create and dynamic windows, every co-located rank's in MPI_Win_allocate windows
         * of one node) by this process's address alone, with no handle. Atomics on it must be CPU atomics
         * here, whoever the target: refused, osc rdma falls back to a plain compare-then-store under its
         * accumulate lock, which MPI_Compare_and_swap through this module never takes, and increments are
         * lost (docs/onesided.md, "A lost atomic update"). All or none: if only our own rank's CAS were
         * atomic, the co-located ranks' plain ones would race with it. The address is this process's own
         * (osc maps the memory), never a peer's word. */
        const bool atomic = FF_RDMA_AOP == req->op || FF_RDMA_AFOP == req->op || FF_RDMA_CSWAP == req->op;
        if (!atomic || !atomic_well_formed(req) || 0 == req->address) {
            return OPAL_ERR_BAD_PARAM;
        }
        uint64_t result = 0;
        if (OPAL_UNLIKELY(FF_RDMA_OK != apply_atomic(req, (void *) (uintptr_t) req->address, &result))) {
            return OPAL_ERR_BAD_PARAM;
        }
        if (FF_RDMA_AFOP == req->op || FF_RDMA_CSWAP == req->op) {
            store_result(local_address, result, req->width);
        }
        cbfunc(btl, btl_endpoint, local_address, local_handle, cbcontext, cbdata, OPAL_SUCCESS);
        return OPAL_SUCCESS;
    }
    if (OPAL_UNLIKELY(NULL == endpoint)) {
        return OPAL_ERR_BAD_PARAM;
    }
    req->version = FF_RDMA_WIRE_VERSION;
    req->region_index = remote_handle->index;
    req->region_generation = remote_handle->generation;
    req->region_key = remote_handle->key;

    if (NULL == endpoint->via) {
        /* ourselves: the same checks and execution, in place, completed before returning (like vader) */
        uint64_t result = 0;
        int32_t status = execute(req, put_data, local_address, &result);
        if (OPAL_UNLIKELY(FF_RDMA_OK != status)) {
            fail_operation(endpoint->peer_id, status, op_name(req->op));
            return OPAL_ERROR;
        }
        if (FF_RDMA_AFOP == req->op || FF_RDMA_CSWAP == req->op) {
            store_result(local_address, result, req->width);
        }
        cbfunc(btl, btl_endpoint, local_address, local_handle, cbcontext, cbdata, OPAL_SUCCESS);
        return OPAL_SUCCESS;
    }

    if (FF_RDMA_PUT != req->op && FF_RDMA_GET != req->op && atomic_well_formed(req)) {
        const ff_window_view_t *view = find_view(endpoint, remote_handle);
        void *word = NULL != view ? ff_window_view_address(view, req->address, req->len) : NULL;
        if (NULL != word) {
            /* single copy: a CPU atomic on the shared word itself, complete before returning */
            uint64_t result = 0;
            if (OPAL_UNLIKELY(FF_RDMA_OK != apply_atomic(req, word, &result))) {
                return OPAL_ERR_BAD_PARAM;
            }
            if (FF_RDMA_AFOP == req->op || FF_RDMA_CSWAP == req->op) {
                store_result(local_address, result, req->width);
            }
            cbfunc(btl, btl_endpoint, local_address, local_handle, cbcontext, cbdata, OPAL_SUCCESS);
            return OPAL_SUCCESS;
        }
    }

    OPAL_THREAD_LOCK(&rdma.lock);
    const int32_t index = rdma.free_head;
    if (index < 0) {
        OPAL_THREAD_UNLOCK(&rdma.lock);
        return OPAL_ERR_OUT_OF_RESOURCE; /* osc rdma progresses and retries */
    }
    ff_rdma_request_t *slot = &rdma.requests[index];
    rdma.free_head = slot->next_free;
    slot->in_use = true;
    slot->op = req->op;
    slot->width = req->width;
    slot->len = req->len;
    slot->peer_id = endpoint->peer_id;
    slot->endpoint = btl_endpoint;
    slot->local_address = local_address;
    slot->report_address = report_address;
    slot->local_handle = local_handle;
    slot->cbfunc = cbfunc;
    slot->cbcontext = cbcontext;
    slot->cbdata = cbdata;
    req->request_index = (uint32_t) index;
    req->request_generation = slot->generation;
    req->origin_id = mca_btl_freeflow_component.my_id;
    OPAL_THREAD_UNLOCK(&rdma.lock);

    const size_t payload = FF_RDMA_PUT == req->op ? req->len : 0;
    mca_btl_base_descriptor_t *descriptor = alloc_to(endpoint, sizeof(*req) + payload);
    if (OPAL_UNLIKELY(NULL == descriptor)) {
        OPAL_THREAD_LOCK(&rdma.lock);
        slot->in_use = false;
        slot->generation++;
        slot->next_free = rdma.free_head;
        rdma.free_head = index;
        OPAL_THREAD_UNLOCK(&rdma.lock);
        return OPAL_ERR_OUT_OF_RESOURCE;
    }
    unsigned char *out = descriptor->des_segments[0].seg_addr.pval;
    memcpy(out, req, sizeof(*req));
    if (payload) {
        ff_copy(out + sizeof(*req), put_data, payload);
    }
    return send_to(endpoint, descriptor, MCA_BTL_FREEFLOW_TAG_RDMA_REQUEST);
}

/* put and get differ in the op, the limit and where the bytes come from (ours for put, the target's for get) */
static int start_transfer(size_t limit, enum ff_rdma_op op, struct mca_btl_base_endpoint_t *endpoint,
                          void *local_address, uint64_t remote_address,
                          struct mca_btl_base_registration_handle_t *local_handle,
                          struct mca_btl_base_registration_handle_t *remote_handle, size_t size,
                          mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata)
{
    if (OPAL_UNLIKELY(size > limit || NULL == endpoint || NULL == remote_handle)) {
        return OPAL_ERR_BAD_PARAM;
    }
    ff_rdma_endpoint_t *peer = (ff_rdma_endpoint_t *) endpoint;
    const ff_window_view_t *view = NULL != peer->via ? find_view(peer, remote_handle) : NULL;
    uint64_t shared_base = 0, shared_len = 0;
    if (NULL != view) {
        ff_window_view_range(view, &shared_base, &shared_len);
    }
    /* the part of [remote_address, + size) in the shared pages (overflow-safe: both ranges are validated
     * sizes of real mappings, remote_address is the peer's claim and is clamped) */
    const uint64_t end = remote_address <= UINT64_MAX - size ? remote_address + size : 0;
    const uint64_t lo = remote_address > shared_base ? remote_address : shared_base;
    const uint64_t hi = end < shared_base + shared_len ? end : shared_base + shared_len;
    if (NULL != view && 0 != end && lo < hi && (lo == remote_address || hi == end)) {
        /* Single copy of the shared part by us; at most one edge (the bytes on the registration's partial
         * first or last page) is left to the target, and its response completes the whole operation. An
         * edge that cannot be issued now makes osc retry everything: the copy is idempotent. */
        unsigned char *direct = ff_window_view_address(view, lo, (size_t) (hi - lo));
        unsigned char *local = (unsigned char *) local_address + (lo - remote_address);
        if (FF_RDMA_PUT == op) {
            memcpy(direct, local, (size_t) (hi - lo));
        } else {
            memcpy(local, direct, (size_t) (hi - lo));
        }
        /* seq_cst: the copy is globally visible before osc rdma learns it is complete and, say, releases a
         * lock word or tells the target through another path */
        atomic_thread_fence(memory_order_seq_cst);
        if (lo == remote_address && hi == end) {
            cbfunc(&mca_btl_freeflow_rdma_module.super, endpoint, local_address, local_handle, cbcontext, cbdata,
                   OPAL_SUCCESS);
            return OPAL_SUCCESS;
        }
        const uint64_t edge_address = lo == remote_address ? hi : remote_address;
        const size_t edge_len = (size_t) (lo == remote_address ? end - hi : lo - remote_address);
        unsigned char *edge_local = (unsigned char *) local_address + (edge_address - remote_address);
        ff_rdma_request_wire_t req = {.op = op, .len = (uint32_t) edge_len, .address = edge_address};
        return issue(endpoint, &req, FF_RDMA_PUT == op ? edge_local : NULL, edge_local, local_address, local_handle,
                     remote_handle, cbfunc, cbcontext, cbdata);
    }
    ff_rdma_request_wire_t req = {.op = op, .len = (uint32_t) size, .address = remote_address};
    return issue(endpoint, &req, FF_RDMA_PUT == op ? local_address : NULL, local_address, local_address, local_handle,
                 remote_handle, cbfunc, cbcontext, cbdata);
}

static int rdma_put(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                    struct mca_btl_base_registration_handle_t *remote_handle, size_t size, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata)
{
    (void) flags;
    (void) order;
    return start_transfer(btl->btl_put_limit, FF_RDMA_PUT, endpoint, local_address, remote_address, local_handle,
                          remote_handle, size, cbfunc, cbcontext, cbdata);
}

static int rdma_get(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                    struct mca_btl_base_registration_handle_t *remote_handle, size_t size, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata)
{
    (void) flags;
    (void) order;
    return start_transfer(btl->btl_get_limit, FF_RDMA_GET, endpoint, local_address, remote_address, local_handle,
                          remote_handle, size, cbfunc, cbcontext, cbdata);
}

static uint8_t width_of(int flags)
{
    return (flags & MCA_BTL_ATOMIC_FLAG_32BIT) ? 4 : 8;
}

static int rdma_aop(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                    uint64_t remote_address, struct mca_btl_base_registration_handle_t *remote_handle,
                    mca_btl_base_atomic_op_t op, uint64_t operand, int flags, int order,
                    mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata)
{
    (void) btl;
    (void) order;
    const uint8_t width = width_of(flags);
    ff_rdma_request_wire_t req = {.op = FF_RDMA_AOP,
                                  .width = width,
                                  .len = width,
                                  .address = remote_address,
                                  .operand = operand,
                                  .atomic_op = (uint32_t) op};
    return issue(endpoint, &req, NULL, NULL, NULL, NULL, remote_handle, cbfunc, cbcontext, cbdata);
}

static int rdma_afop(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                     uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                     struct mca_btl_base_registration_handle_t *remote_handle, mca_btl_base_atomic_op_t op,
                     uint64_t operand, int flags, int order, mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext,
                     void *cbdata)
{
    (void) btl;
    (void) order;
    const uint8_t width = width_of(flags);
    ff_rdma_request_wire_t req = {.op = FF_RDMA_AFOP,
                                  .width = width,
                                  .len = width,
                                  .address = remote_address,
                                  .operand = operand,
                                  .atomic_op = (uint32_t) op};
    return issue(endpoint, &req, NULL, local_address, local_address, local_handle, remote_handle, cbfunc, cbcontext,
                 cbdata);
}

static int rdma_cswap(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint, void *local_address,
                      uint64_t remote_address, struct mca_btl_base_registration_handle_t *local_handle,
                      struct mca_btl_base_registration_handle_t *remote_handle, uint64_t compare, uint64_t value,
                      int flags, int order, mca_btl_base_rdma_completion_fn_t cbfunc, void *cbcontext, void *cbdata)
{
    (void) btl;
    (void) order;
    const uint8_t width = width_of(flags);
    ff_rdma_request_wire_t req = {.op = FF_RDMA_CSWAP,
                                  .width = width,
                                  .len = width,
                                  .address = remote_address,
                                  .operand = compare,
                                  .operand2 = value};
    return issue(endpoint, &req, NULL, local_address, local_address, local_handle, remote_handle, cbfunc, cbcontext,
                 cbdata);
}

/* ---- receiving ---- */

static void defer(ff_rdma_endpoint_t *peer, const ff_rdma_response_wire_t *resp, const void *data)
{
    ff_rdma_deferred_t *item = malloc(sizeof(*item) + sizeof(*resp) + resp->len);
    if (NULL == item) {
        mca_btl_freeflow_fatal(NULL, "freeflow: out of memory queuing an RDMA response. Aborting.");
        return;
    }
    OBJ_CONSTRUCT(item, ff_rdma_deferred_t);
    item->peer = peer;
    item->len = sizeof(*resp) + resp->len;
    memcpy(item->data, resp, sizeof(*resp));
    if (resp->len) {
        memcpy(item->data + sizeof(*resp), data, resp->len);
    }
    OPAL_THREAD_LOCK(&rdma.deferred_lock);
    opal_list_append(&rdma.deferred, &item->super);
    OPAL_THREAD_UNLOCK(&rdma.deferred_lock);
    mca_btl_freeflow_thread_add(&mca_btl_freeflow_rdma_deferred_count, 1);
}

int mca_btl_freeflow_rdma_progress(void)
{
    int sent = 0;
    if (OPAL_THREAD_TRYLOCK(&rdma.deferred_lock)) {
        return 0;
    }
    ff_rdma_deferred_t *item, *next;
    OPAL_LIST_FOREACH_SAFE(item, next, &rdma.deferred, ff_rdma_deferred_t)
    {
        mca_btl_base_descriptor_t *descriptor = alloc_to(item->peer, item->len);
        if (NULL == descriptor) {
            break;
        }
        memcpy(descriptor->des_segments[0].seg_addr.pval, item->data, item->len);
        (void) send_to(item->peer, descriptor, MCA_BTL_FREEFLOW_TAG_RDMA_RESPONSE);
        opal_list_remove_item(&rdma.deferred, &item->super);
        OBJ_DESTRUCT(item);
        free(item);
        mca_btl_freeflow_thread_add(&mca_btl_freeflow_rdma_deferred_count, -1);
        ++sent;
    }
    OPAL_THREAD_UNLOCK(&rdma.deferred_lock);
    return sent;
}

static void serve_request(uint64_t producer, bool producer_known, const unsigned char *data, size_t len)
{
    ff_rdma_request_wire_t req;
    if (len < sizeof(req)) {
        return; /* nothing to answer to */
    }
    memcpy(&req, data, sizeof(req)); /* once: the producer may still write the ring */
    if (!producer_known) {
        producer = req.origin_id;
    }
    ff_rdma_endpoint_t *peer = reply_path(producer);
    if (NULL == peer || NULL == peer->via) {
        FF_LOG(FF_VERBOSE_DECISIONS, "freeflow: %s dropped an RDMA request from %llx:%llu: no path back to it",
               OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned long long) (producer >> 32),
               (unsigned long long) (producer & 0xffffffffu));
        return;
    }
    ff_rdma_response_wire_t resp = {.request_index = req.request_index,
                                    .request_generation = req.request_generation,
                                    .responder_id = mca_btl_freeflow_component.my_id};
    const size_t payload = len - sizeof(req);
    const mca_btl_base_module_t *btl = &mca_btl_freeflow_rdma_module.super;
    const bool well_formed =
        FF_RDMA_WIRE_VERSION == req.version &&
        (FF_RDMA_PUT == req.op ? payload == req.len && req.len <= btl->btl_put_limit : 0 == payload) &&
        (FF_RDMA_GET != req.op || req.len <= btl->btl_get_limit);
    if (!well_formed) {
        resp.status = FF_RDMA_BAD_REQUEST;
    } else if (FF_RDMA_GET == req.op) {
        mca_btl_base_descriptor_t *descriptor = alloc_to(peer, sizeof(resp) + req.len);
        if (NULL != descriptor) {
            unsigned char *out = descriptor->des_segments[0].seg_addr.pval;
            resp.status = execute(&req, NULL, out + sizeof(resp), &resp.result);
            resp.len = FF_RDMA_OK == resp.status ? req.len : 0;
            memcpy(out, &resp, sizeof(resp));
            descriptor->des_segments[0].seg_len = sizeof(resp) + resp.len;
            (void) send_to(peer, descriptor, MCA_BTL_FREEFLOW_TAG_RDMA_RESPONSE);
            return;
        }
        void *scratch = malloc(req.len);
        if (NULL == scratch) {
            mca_btl_freeflow_fatal(NULL, "freeflow: out of memory serving an RDMA get. Aborting.");
            return;
        }
        resp.status = execute(&req, NULL, scratch, &resp.result);
        resp.len = FF_RDMA_OK == resp.status ? req.len : 0;
        defer(peer, &resp, scratch);
        free(scratch);
        return;
    } else {
        resp.status = execute(&req, data + sizeof(req), NULL, &resp.result);
    }
    mca_btl_base_descriptor_t *descriptor = alloc_to(peer, sizeof(resp));
    if (NULL == descriptor) {
        defer(peer, &resp, NULL);
        return;
    }
    memcpy(descriptor->des_segments[0].seg_addr.pval, &resp, sizeof(resp));
    (void) send_to(peer, descriptor, MCA_BTL_FREEFLOW_TAG_RDMA_RESPONSE);
}

static void forged_response(uint64_t producer, const char *why)
{
    char message[320];
    snprintf(message, sizeof(message),
             "freeflow: %s: an RDMA response from %llx:%llu does not match any operation in flight (%s): its ring "
             "carries forged data. Aborting.",
             OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), (unsigned long long) (producer >> 32),
             (unsigned long long) (producer & 0xffffffffu), why);
    mca_btl_freeflow_fatal(NULL, message);
}

static void complete_request(uint64_t producer, bool producer_known, const unsigned char *data, size_t len)
{
    ff_rdma_response_wire_t resp;
    if (len < sizeof(resp)) {
        forged_response(producer, "short record");
        return;
    }
    memcpy(&resp, data, sizeof(resp));
    if (!producer_known) {
        producer = resp.responder_id;
    }
    OPAL_THREAD_LOCK(&rdma.lock);
    ff_rdma_request_t *slot = resp.request_index < rdma.request_count ? &rdma.requests[resp.request_index] : NULL;
    const char *why = NULL;
    if (NULL == slot || !slot->in_use || slot->generation != resp.request_generation) {
        why = "no such request";
    } else if (slot->peer_id != producer) {
        why = "the request went to another peer";
    } else if (FF_RDMA_OK == resp.status &&
               (resp.len != (FF_RDMA_GET == slot->op ? slot->len : 0) || len != sizeof(resp) + resp.len)) {
        why = "wrong length";
    }
    if (why) {
        OPAL_THREAD_UNLOCK(&rdma.lock);
        forged_response(producer, why);
        return;
    }
    const ff_rdma_request_t done = *slot;
    slot->in_use = false;
    slot->generation++;
    slot->next_free = rdma.free_head;
    rdma.free_head = (int32_t) resp.request_index;
    OPAL_THREAD_UNLOCK(&rdma.lock);

    if (OPAL_UNLIKELY(FF_RDMA_OK != resp.status)) {
        fail_operation(producer, resp.status, op_name(done.op));
        return;
    }
    if (FF_RDMA_GET == done.op) {
        ff_copy(done.local_address, data + sizeof(resp), done.len);
    } else if (FF_RDMA_AFOP == done.op || FF_RDMA_CSWAP == done.op) {
        store_result(done.local_address, resp.result, done.width);
    }
    done.cbfunc(&mca_btl_freeflow_rdma_module.super, done.endpoint, done.report_address, done.local_handle,
                done.cbcontext, done.cbdata, OPAL_SUCCESS);
}

static void receive(uint64_t producer, bool producer_known, uint8_t tag, const void *data, size_t len)
{
    if (OPAL_UNLIKELY(!rdma.ready)) {
        return; /* disabled here: nobody sends us these, or the job is finishing */
    }
    if (MCA_BTL_FREEFLOW_TAG_RDMA_REQUEST == tag) {
        serve_request(producer, producer_known, data, len);
    } else {
        complete_request(producer, producer_known, data, len);
    }
}

void mca_btl_freeflow_rdma_receive(uint64_t producer, uint8_t tag, const void *data, size_t len)
{
    receive(producer, true, tag, data, len);
}

/* Handoff sockets and router routes (their modules deliver through the tag table) do not tell the
 * callback which rank sent a fragment: the records name their sender. A rank of the job could claim to be another; it
 * still reaches only memory the target registered, and a response is taken only for an operation in flight to the rank
 * it names. */
static void sock_delivery(mca_btl_base_module_t *btl, mca_btl_base_tag_t tag, mca_btl_base_descriptor_t *descriptor,
                          void *cbdata)
{
    (void) btl;
    (void) cbdata;
    const mca_btl_base_segment_t *segment = &descriptor->des_segments[0];
    receive(0, false, tag, segment->seg_addr.pval, segment->seg_len);
}
