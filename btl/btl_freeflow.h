/*
 * The freeflow BTL: shared memory between co-located containers that share nothing but the job's
 * per-host directory (/run/freeflow under ffrun).
 *
 * A thin adapter over the native core (native/include/freeflow.h): each process owns one segment in the
 * shared directory; for every peer it sends to, it claims a ring in that peer's segment, and it polls
 * the rings its peers claimed in its own segment. Reachability comes from the
 * orchestrator's path table and the host identity, and is proven by attaching the peer's segment.
 *
 * Files by operation: component (parameters, init, progress), module (add/del procs, finalize),
 * endpoint (peer state, lazy ring set-up), frag (descriptors), send (alloc/prepare/send/sendi and the
 * pending queue), recv (polling rings), report (what each pair actually used), rdma (one-sided
 * operations), sock (path `h`: handoff sockets), router (path `r`), agent (the registration with the
 * host's ffagent that h and r share), help (user-facing messages, help-btl-freeflow.txt).
 */
#ifndef MCA_BTL_FREEFLOW_H
#define MCA_BTL_FREEFLOW_H

#include "opal_config.h"

#include "opal/class/opal_free_list.h"
#include "opal/class/opal_hash_table.h"
#include "opal/class/opal_list.h"
#include "opal/mca/btl/btl.h"
#include "opal/threads/mutex.h"
#include "opal/util/proc.h"
#include "opal/util/show_help.h"
#include "opal/version.h"

#include "freeflow.h"

#include <stdatomic.h>
#include <stdio.h>

/*
 * Atomics: C11 <stdatomic.h> throughout the BTL, as in the core (native/), with the memory order written
 * beside each use. Not opal_atomic_*: they take no memory order (each is a full barrier, wasted on
 * statistics and flags) and have no fetch-min/max for the RDMA atomics; not GCC's __atomic builtins on
 * plain memory: a third style. Debian builds Open MPI's own opal_atomic_* on those same builtins
 * (OPAL_ASSEMBLY_BUILTIN is OPAL_BUILTIN_GCC in opal_config.h), and GCC implements <stdatomic.h> with them
 * too, so the CPU instructions on a shared word are the same whichever side issues them.
 *
 * Memory whose declaration is not ours to make _Atomic (osc rdma's window words are plain uint64_t; the
 * endpoint statistics are plain because single-threaded runs update them without a lock prefix) is
 * reached through MCA_BTL_FREEFLOW_ATOMIC, an _Atomic view of the same object. C11 does not promise
 * that _Atomic T has T's size and representation; GCC on x86-64 does for these lock-free integers, and
 * the assertions below hold it to that.
 */
#define MCA_BTL_FREEFLOW_ATOMIC(type, pointer) ((_Atomic type *) (pointer))
_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t) && _Alignof(_Atomic uint32_t) == _Alignof(uint32_t),
               "an _Atomic view of a plain uint32_t must be the same object");
_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t) && _Alignof(_Atomic uint64_t) == _Alignof(uint64_t),
               "an _Atomic view of a plain uint64_t must be the same object");
_Static_assert(2 == ATOMIC_INT_LOCK_FREE && 2 == ATOMIC_LLONG_LOCK_FREE,
               "window atomics must be lock-free CPU atomics, shared with osc rdma's on the same words");

/* A process as the rings, path table and agent name it: jobid in the high half, vpid in the low half. */
static inline uint64_t mca_btl_freeflow_peer_id(opal_process_name_t name)
{
    return ((uint64_t) name.jobid << 32) | name.vpid;
}

#if OPAL_MAJOR_VERSION != 4 || OPAL_MINOR_VERSION != 1
#error "the freeflow BTL is written against Open MPI 4.1's BTL interface (btl 3.1.0)"
#endif

BEGIN_C_DECLS

/* Layout of what each process publishes through the modex; bump on any change. */
#define MCA_BTL_FREEFLOW_MODEX_VERSION 2u
/* flags: this rank registered with its host's ffagent (it can take pairs planned `h`) */
#define MCA_BTL_FREEFLOW_MODEX_AGENT 0x1u
/* flags: this rank opened a router route with its host's ffagent (it can take pairs planned `r`) */
#define MCA_BTL_FREEFLOW_MODEX_ROUTER 0x2u

typedef struct mca_btl_freeflow_modex {
    uint32_t version;
    uint32_t ring_size;
    ff_host_id_t host;
    ff_job_key_t key;
    uint64_t owner_id;
    uint32_t flags;
    uint32_t reserved;
} mca_btl_freeflow_modex_t;

/* One ring a producer claimed in our segment, polled by progress. No lock of its own: one thread at a time
 * polls (the pass lock of btl_freeflow_recv.c), and nothing else reads or writes a ring's consumer side. */
typedef struct mca_btl_freeflow_inbound {
    ff_ring_rx_t rx;
    uint64_t producer; /* who claimed it: names the peer when its ring turns out corrupt */
    bool dead;         /* corrupt: no longer polled (the job is being aborted) */
} mca_btl_freeflow_inbound_t;

/* Why a peer was left to other BTLs (docs/btl-report.md). */
typedef struct mca_btl_freeflow_decline {
    opal_list_item_t super;
    uint32_t vpid;
    uint64_t peer_id;
    bool verdict_published; /* we wrote the pair's verdict file: remove it at finalize if still there */
    char reason[48];
} mca_btl_freeflow_decline_t;
OBJ_CLASS_DECLARATION(mca_btl_freeflow_decline_t);

typedef struct mca_btl_freeflow_component {
    mca_btl_base_component_3_0_0_t super;

    /* parameters */
    char *dir_param;              /* shared directory ("" = automatic) */
    unsigned int ring_size;       /* bytes per ring (0 = chosen from the L2 size) */
    char *copy_param;             /* bulk copy routine ("auto" = chosen from the CPU's features) */
    unsigned int max_peers;       /* 0 = automatic */
    unsigned int poll_batch;      /* records taken from one ring per progress pass */
    unsigned int poll_idle_after; /* empty polls before a ring counts as idle (0: poll every ring every pass) */
    unsigned int poll_idle_rings_per_pass; /* idle rings polled per pass, round-robin */
    unsigned int idle_sleep_after;         /* empty passes under mpi_yield_when_idle before sleeping (0: never sleep) */
    unsigned int idle_sleep_ns;            /* how long such a sleep asks for */
    unsigned int idle_sleep_unrung_ns;     /* the same when some peer's messages do not ring the doorbell */
    bool unlink_when_attached;
    int report; /* 0: off; otherwise written when the path table covers this rank */
    int verbose;
    int output; /* opal_output stream of btl_freeflow_verbose */

    /* the machine and what was chosen for it (native/src/tuning.c); the report and ffbench show them */
    ff_cpu_info_t cpu;
    ff_shm_tuning_t tuning;

    /* identity */
    char *dir;           /* resolved shared directory */
    bool dir_is_private; /* the per-job default under /dev/shm: removed at finalize once empty */
    int dirfd;           /* it, opened once and verified (ff_dir_open); every file op is *at() */
    ff_host_id_t host;
    ff_job_key_t key;
    uint64_t my_id;
    ff_segment_t *segment;  /* ours */
    ff_path_table_t *paths; /* NULL when there is none */
    bool paths_apply_to_me;
    opal_jobid_t launched_job; /* the job the launcher started, not a spawned one: the path table covers it */

    /* peers' segments, attached once and shared by endpoints and inbound rings: owner id -> ff_segment_t* */
    opal_hash_table_t attached;
    opal_mutex_t lock; /* attached, ring cursor, declines, endpoints */

    /* rings peers claimed in our segment: fixed capacity so progress threads can read while one appends */
    mca_btl_freeflow_inbound_t *inbound;
    _Atomic int32_t inbound_count; /* published with release after the ring is set up (recv.c) */
    uint32_t inbound_capacity;
    uint32_t ring_cursor;                  /* next ring slot of our segment to look at */
    const _Atomic uint32_t *rings_claimed; /* our segment's claim counter */

    /* descriptors */
    opal_free_list_t frags;          /* data lives in a ring reservation */
    opal_free_list_t buffered_frags; /* data waits in a private buffer until the ring has room */
    /* sent descriptors whose completion callback runs on the next progress pass */
    opal_list_t completed;
    opal_mutex_t completed_lock;
    _Atomic int32_t completed_count; /* mca_btl_freeflow_thread_add; progress reads it relaxed */
    /* endpoints with buffered descriptors waiting for ring room */
    opal_list_t pending_endpoints;
    opal_mutex_t pending_lock;
    _Atomic int32_t pending_count; /* mca_btl_freeflow_thread_add; progress reads it relaxed */

    opal_list_t declines;
    opal_list_t endpoints; /* every endpoint we made, for the report and finalize */

    /* path `h`: set at init when this rank registered with its agent; progress then also serves the
     * handoff sockets (one predictable branch per progress pass, none per shm message) */
    bool sock_active;
    /* path `r`: set at init when this rank opened a router route with its agent */
    bool router_active;
    /* set at init: how long one idle sleep lasts at most (nanoseconds, at least 1): idle_sleep_ns, or
     * idle_sleep_unrung_ns if smaller when no path table covers this rank or it plans h, r or t to some peer
     * (messages that arrive without ringing the doorbell) */
    unsigned int idle_sleep_bound_ns;
} mca_btl_freeflow_component_t;

OPAL_MODULE_DECLSPEC extern mca_btl_freeflow_component_t mca_btl_freeflow_component;

typedef struct mca_btl_freeflow_module {
    mca_btl_base_module_t super;
    mca_btl_base_module_error_cb_fn_t error_cb;
    struct mca_btl_freeflow_stream *stream; /* the stream modules' state (btl_freeflow_stream.h); else NULL */
} mca_btl_freeflow_module_t;

extern mca_btl_freeflow_module_t mca_btl_freeflow_module;
/* path `h`: the handoff socket module (btl_freeflow_sock.c); returned by init only when registered */
extern mca_btl_freeflow_module_t mca_btl_freeflow_sock_module;
/* path `r`: the router module (btl_freeflow_router.c); returned by init only when its route is open */
extern mca_btl_freeflow_module_t mca_btl_freeflow_router_module;

/* verbosity levels of btl_freeflow_verbose */
#define FF_VERBOSE_DECISIONS 10 /* reachability of every peer */
#define FF_VERBOSE_LIFECYCLE 20 /* segments and rings */

/* OPAL_THREAD_ADD_FETCH32 in C11: a read-modify-write when Open MPI runs threads, else a plain add (no
 * lock prefix on the single-threaded hot path). Returns the new value. */
static inline int32_t mca_btl_freeflow_thread_add(_Atomic int32_t *counter, int32_t delta)
{
    if (opal_using_threads()) {
        /* seq_cst: what opal_atomic_add_fetch_32 gave; callers pair it with their lists' locks */
        return atomic_fetch_add_explicit(counter, delta, memory_order_seq_cst) + delta;
    }
    /* relaxed: one thread, so no other observer to order against */
    const int32_t value = atomic_load_explicit(counter, memory_order_relaxed) + delta;
    atomic_store_explicit(counter, value, memory_order_relaxed);
    return value;
}

#define FF_LOG(level, ...) opal_output_verbose((level), mca_btl_freeflow_component.output, __VA_ARGS__)

/* User-facing messages (btl_freeflow_help.c): a topic of help-btl-freeflow.txt, whose text starts with
 * this rank and its host; the arguments fill in the rest. False when the help file is missing (a line
 * naming the topic was printed instead). A macro because mpirun aggregates only what goes through the
 * variadic opal_show_help (ORTE replaces it, and leaves opal_show_vhelp printing locally). */
#define MCA_BTL_FREEFLOW_HELP_FILE "help-btl-freeflow.txt"
#define MCA_BTL_FREEFLOW_SHOW_HELP(topic, ...)                                                                         \
    (mca_btl_freeflow_help_available(topic) &&                                                                         \
     ((void) opal_show_help(MCA_BTL_FREEFLOW_HELP_FILE, (topic), true, OPAL_NAME_PRINT(OPAL_PROC_MY_NAME),             \
                            mca_btl_freeflow_host_name(), __VA_ARGS__),                                                \
      true))
/* Adds the component's own directory to opal_show_help's search path (once; component register). */
void mca_btl_freeflow_help_init(void);
/* True when the help file was found; otherwise prints a line naming `topic` and the missing file. */
bool mca_btl_freeflow_help_available(const char *topic);
/* The help file's fatal-error topic around `message`, printed by this rank itself (see the definition). */
void mca_btl_freeflow_print_fatal(const char *message);
static inline const char *mca_btl_freeflow_host_name(void)
{
    return NULL != opal_process_info.nodename ? opal_process_info.nodename : "?";
}

/* module operations */
int mca_btl_freeflow_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                               struct mca_btl_base_endpoint_t **peers, struct opal_bitmap_t *reachable);
int mca_btl_freeflow_del_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                               struct mca_btl_base_endpoint_t **peers);
int mca_btl_freeflow_finalize(struct mca_btl_base_module_t *btl);

mca_btl_base_descriptor_t *mca_btl_freeflow_alloc(struct mca_btl_base_module_t *btl,
                                                  struct mca_btl_base_endpoint_t *endpoint, uint8_t order, size_t size,
                                                  uint32_t flags);
int mca_btl_freeflow_free(struct mca_btl_base_module_t *btl, mca_btl_base_descriptor_t *descriptor);
mca_btl_base_descriptor_t *mca_btl_freeflow_prepare_src(struct mca_btl_base_module_t *btl,
                                                        struct mca_btl_base_endpoint_t *endpoint,
                                                        struct opal_convertor_t *convertor, uint8_t order,
                                                        size_t reserve, size_t *size, uint32_t flags);
int mca_btl_freeflow_send(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                          struct mca_btl_base_descriptor_t *descriptor, mca_btl_base_tag_t tag);
int mca_btl_freeflow_sendi(struct mca_btl_base_module_t *btl, struct mca_btl_base_endpoint_t *endpoint,
                           struct opal_convertor_t *convertor, void *header, size_t header_size, size_t payload_size,
                           uint8_t order, uint32_t flags, mca_btl_base_tag_t tag,
                           mca_btl_base_descriptor_t **descriptor);

/* progress pieces */
int mca_btl_freeflow_poll_inbound(void);
void mca_btl_freeflow_poll_fini(void);
void mca_btl_freeflow_accept_rings(void);
int mca_btl_freeflow_flush_pending(void);
int mca_btl_freeflow_run_completions(void);

/* attached peer segments (component lock held by the caller) */
void mca_btl_freeflow_keep_peer(uint64_t owner_id, ff_segment_t *segment);
void mca_btl_freeflow_detach_all(void);

/* True for ranks of the job the launcher started (not spawned) that the path table covers. */
bool mca_btl_freeflow_in_path_table(opal_jobid_t jobid, opal_vpid_t vpid);
/* The core's pair policy (ff_pair_policy_decide) for `proc` from its modex, the path table and our agent
 * registration, without the co-location proof; `reason` gets the docs/btl-report.md identifier. */
ff_pair_route_t mca_btl_freeflow_pair_route(const opal_proc_t *proc, char *reason, size_t reason_len);

/* One MCA parameter btl_freeflow_<name> (registered MCA_BASE_VAR_FLAG_SETTABLE with its level and scope):
 * mca_btl_freeflow_register_params sets `storage` to the default (default_string for STRING, default_number
 * for UNSIGNED_INT, INT, BOOL and SIZE_T), then registers it. Every file's parameters go through it. */
typedef struct mca_btl_freeflow_param {
    const char *name;
    mca_base_var_type_t type;
    void *storage; /* char **, unsigned int *, int *, bool * or size_t *, by type */
    const char *default_string;
    long default_number;
    mca_base_var_info_lvl_t level;
    mca_base_var_scope_t scope;
    const char *help;
} mca_btl_freeflow_param_t;
void mca_btl_freeflow_register_params(const mca_base_component_t *version, const mca_btl_freeflow_param_t *params,
                                      size_t count);

/* path `h` (btl_freeflow_sock.c) */
void mca_btl_freeflow_sock_register_params(const mca_base_component_t *version); /* btl_freeflow_sock_* */
/* The path table covers this rank and plans one of `kinds` (a mask of 1u << ff_path_kind_t) to some peer. */
bool mca_btl_freeflow_path_planned(unsigned int kinds);
bool mca_btl_freeflow_sock_wanted(void); /* the path table plans h from this rank to some peer */
/* The rank's registration with its host's agent, shared by the h and r modules (btl_freeflow_agent.c):
 * the first acquire registers, the last release closes it. */
ff_status_t mca_btl_freeflow_agent_acquire(ff_agent_conn_t **conn, ff_agent_refusal_t *why);
void mca_btl_freeflow_agent_release(ff_agent_conn_t *conn);
bool mca_btl_freeflow_sock_init(void); /* registers with the host's agent; false: h pairs decline */
bool mca_btl_freeflow_sock_registered(void);
bool mca_btl_freeflow_sock_carries(uint64_t peer_id);
int mca_btl_freeflow_sock_progress(void);
void mca_btl_freeflow_sock_report(FILE *file);
void mca_btl_freeflow_sock_shutdown(void);
void mca_btl_freeflow_sock_release(void);
void mca_btl_freeflow_sock_abandon(void);

/* path `r` (btl_freeflow_router.c) */
bool mca_btl_freeflow_router_wanted(void); /* the path table plans r from this rank to some peer */
bool mca_btl_freeflow_router_init(void);   /* registers and opens a route with the host's agent */
bool mca_btl_freeflow_router_open(void);
bool mca_btl_freeflow_router_carries(uint64_t peer_id);
/* moved_elsewhere: what the rest of this progress pass moved (the yield policy counts the whole pass) */
int mca_btl_freeflow_router_progress(int moved_elsewhere);
void mca_btl_freeflow_router_register_params(const mca_base_component_t *version); /* btl_freeflow_router_* */
void mca_btl_freeflow_router_report(FILE *file);
void mca_btl_freeflow_router_shutdown(void);
void mca_btl_freeflow_router_release(void);

/* the per-rank report of docs/btl-report.md */
void mca_btl_freeflow_record_decline(uint64_t peer_id, const char *reason, bool verdict_published);
mca_btl_freeflow_decline_t *mca_btl_freeflow_find_decline(uint64_t peer_id);
/* Both modules (shared memory, handoff sockets) keep ob1's error callback in their module. */
int mca_btl_freeflow_register_error(struct mca_btl_base_module_t *btl, mca_btl_base_module_error_cb_fn_t cbfunc);

/* A fatal error for `proc` through ob1's error callback (it aborts the job); message printed first. */
void mca_btl_freeflow_fatal(opal_proc_t *proc, const char *message);
/* The same through another module of the component (the handoff sockets'); the message is printed once. */
void mca_btl_freeflow_fatal_on(mca_btl_freeflow_module_t *module, opal_proc_t *proc, const char *message);
void mca_btl_freeflow_write_report(void);

END_C_DECLS

#endif /* MCA_BTL_FREEFLOW_H */
