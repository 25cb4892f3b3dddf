/*
 * Module: which peers freeflow reaches (add_procs), and tear-down.
 *
 * A peer is reachable only when (1) it runs freeflow with the same modex layout and job key, (2) the
 * path table, when it covers both ranks, plans shm for the pair, (3) its host identity equals ours and
 * (4) its segment opens and verifies in our shared directory. Hostnames are never consulted. Peers
 * that fail any step are left to the next BTL, with the reason logged and reported. The rule itself is
 * the core's (ff_pair_policy_decide); this file gathers its inputs and does the I/O.
 */
#include "btl_freeflow.h"
#include "btl_freeflow_endpoint.h"
#include "btl_freeflow_frag.h"

#include "opal/class/opal_bitmap.h"
#include "opal/mca/btl/base/base.h"
#include "opal/mca/pmix/pmix.h"
#include "opal/util/output.h"
#include "opal/util/proc.h"

#include <string.h>
#include <unistd.h>

int mca_btl_freeflow_register_error(struct mca_btl_base_module_t *btl, mca_btl_base_module_error_cb_fn_t cbfunc)
{
    ((mca_btl_freeflow_module_t *) btl)->error_cb = cbfunc;
    return OPAL_SUCCESS;
}

mca_btl_freeflow_module_t mca_btl_freeflow_module = {
    .super =
        {
            .btl_component = &mca_btl_freeflow_component.super,
            .btl_add_procs = mca_btl_freeflow_add_procs,
            .btl_del_procs = mca_btl_freeflow_del_procs,
            .btl_finalize = mca_btl_freeflow_finalize,
            .btl_alloc = mca_btl_freeflow_alloc,
            .btl_free = mca_btl_freeflow_free,
            .btl_prepare_src = mca_btl_freeflow_prepare_src,
            .btl_send = mca_btl_freeflow_send,
            .btl_sendi = mca_btl_freeflow_sendi,
            .btl_dump = mca_btl_base_dump,
            .btl_register_error = mca_btl_freeflow_register_error,
        },
};

/*
 * The inputs of the pair policy (ff_pair_policy_decide, native/src/pair_policy.c) for `proc`: its modex,
 * the path table and our agent registration. The co-location proof is not run here.
 */
static void gather_pair_inputs(const opal_proc_t *proc, ff_pair_inputs_t *in)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    const opal_process_name_t me = OPAL_PROC_MY_NAME;
    const uint64_t peer_id = mca_btl_freeflow_peer_id(proc->proc_name);
    mca_btl_freeflow_modex_t *modex = NULL;
    size_t size = 0;
    int rc;
    OPAL_MODEX_RECV(rc, &c->super.btl_version, &proc->proc_name, (void **) &modex, &size);
    if (OPAL_SUCCESS != rc) {
        modex = NULL;
    }
    memset(in, 0, sizeof(*in));
    in->modex_present = NULL != modex;
    in->modex_layout_ok = NULL != modex && size == sizeof(*modex) && MCA_BTL_FREEFLOW_MODEX_VERSION == modex->version &&
                          modex->owner_id == peer_id;
    in->key_equal = in->modex_layout_ok && ff_job_key_equal(&modex->key, &c->key);
    in->table_covers_me = c->paths_apply_to_me;
    /* the plan covers the pair when both ranks belong to the job it describes */
    in->table_covers_peer =
        c->paths_apply_to_me && mca_btl_freeflow_in_path_table(proc->proc_name.jobid, proc->proc_name.vpid);
    in->peer_in_my_mpi_job = proc->proc_name.jobid == me.jobid;
    in->path_to_peer =
        in->table_covers_peer ? ff_path_table_path(c->paths, me.vpid, proc->proc_name.vpid) : FF_PATH_SHM;
    in->path_from_peer =
        in->table_covers_peer ? ff_path_table_path(c->paths, proc->proc_name.vpid, me.vpid) : FF_PATH_SHM;
    in->host_equal = in->modex_layout_ok && ff_host_id_equal(&modex->host, &c->host);
    /* "registered" means with the module that carries the planned plane: the router's route for r, the
     * handoff registration otherwise (the policy only reads it for h and r) */
    const bool router_planned = FF_PATH_ROUTER == in->path_to_peer || FF_PATH_ROUTER == in->path_from_peer;
    in->my_agent_registered = router_planned ? mca_btl_freeflow_router_open() : mca_btl_freeflow_sock_registered();
    in->peer_agent_registered =
        in->modex_layout_ok &&
        0 != (modex->flags & (router_planned ? MCA_BTL_FREEFLOW_MODEX_ROUTER : MCA_BTL_FREEFLOW_MODEX_AGENT));
    free(modex);
}

ff_pair_route_t mca_btl_freeflow_pair_route(const opal_proc_t *proc, char *reason, size_t reason_len)
{
    ff_pair_inputs_t in;
    ff_pair_outcome_t outcome;
    gather_pair_inputs(proc, &in);
    ff_pair_policy_decide(&in, &outcome);
    if (reason_len > 0) {
        snprintf(reason, reason_len, "%s", outcome.text);
    }
    return outcome.route;
}

/*
 * Decides whether `proc` is reachable through shared memory: true with the peer's attached segment, or
 * false with the reason (a docs/btl-report.md identifier) in `reason`. The decision is the core's
 * (ff_pair_policy_decide); this adapter gathers its inputs and runs the co-location proof when asked.
 * Logs a success; the caller logs refusals.
 */
static bool decide(opal_proc_t *proc, ff_segment_t **segment, char *reason, size_t reason_len, bool *published)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    const opal_process_name_t me = OPAL_PROC_MY_NAME;
    const uint64_t peer_id = mca_btl_freeflow_peer_id(proc->proc_name);
    ff_pair_inputs_t in;
    ff_pair_outcome_t outcome;
    gather_pair_inputs(proc, &in);
    ff_pair_policy_decide(&in, &outcome);
    if (FF_PAIR_ROUTE_PROVE == outcome.route) {
        /* The proof, agreed by both sides: the first to decide attaches the other's segment, checks its
         * own, and publishes the verdict for the pair; the other adopts it (ff_pair_decide). */
        ff_pair_decision_t decision;
        in.proof_done = true;
        in.proof_status = ff_pair_decide(c->dirfd, c->segment, &c->key, peer_id, &c->host, segment, &decision);
        in.proof_shm = decision.shm;
        in.proof_reason = decision.reason;
        *published = decision.published;
        ff_pair_policy_decide(&in, &outcome);
        if (FF_PAIR_ROUTE_FATAL == outcome.route) {
            char message[512];
            snprintf(message, sizeof(message),
                     "freeflow: %s and %s cannot agree on a path: %s chose shared memory, but its segment no "
                     "longer attaches here (%s): %s. Aborting.",
                     OPAL_NAME_PRINT(me), OPAL_NAME_PRINT(proc->proc_name), OPAL_NAME_PRINT(proc->proc_name),
                     outcome.text, ff_status_describe(in.proof_status));
            mca_btl_freeflow_fatal(proc, message);
            return false;
        }
    }
    if (FF_PAIR_ROUTE_SHM == outcome.route) {
        mca_btl_freeflow_keep_peer(peer_id, *segment);
        FF_LOG(FF_VERBOSE_DECISIONS, "freeflow: %s -> %s: shared memory (%s%s verified; verdict %s)",
               OPAL_NAME_PRINT(me), OPAL_NAME_PRINT(proc->proc_name), in.table_covers_peer ? "planned shm; " : "",
               ff_segment_file(*segment), *published ? "published" : "adopted");
        return true;
    }
    /* h and r pairs: this module declines them (path-table-says-<letter>) and their module carries them */
    snprintf(reason, reason_len, "%s", outcome.text);
    return false;
}

static mca_btl_freeflow_endpoint_t *find_endpoint(uint64_t peer_id)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    mca_btl_freeflow_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &c->endpoints, mca_btl_freeflow_endpoint_t)
    {
        if (endpoint->peer_id == peer_id) {
            return endpoint;
        }
    }
    return NULL;
}

int mca_btl_freeflow_add_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
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
            continue; /* the self BTL's */
        }
        const uint64_t peer_id = mca_btl_freeflow_peer_id(proc->proc_name);
        mca_btl_freeflow_endpoint_t *endpoint = find_endpoint(peer_id);
        if (NULL == endpoint) {
            if (NULL != mca_btl_freeflow_find_decline(peer_id)) {
                continue; /* decided before: the pair's verdict stands */
            }
            ff_segment_t *segment = NULL;
            char reason[48];
            bool published = false;
            if (!decide(proc, &segment, reason, sizeof(reason), &published)) {
                FF_LOG(FF_VERBOSE_DECISIONS, "freeflow: %s -> %s: not through freeflow (%s); the next BTL decides",
                       OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), OPAL_NAME_PRINT(proc->proc_name), reason);
                mca_btl_freeflow_record_decline(peer_id, reason, published);
                continue;
            }
            endpoint = OBJ_NEW(mca_btl_freeflow_endpoint_t);
            if (NULL == endpoint) {
                rc = OPAL_ERR_OUT_OF_RESOURCE;
                break;
            }
            endpoint->proc = proc;
            endpoint->peer_id = peer_id;
            endpoint->peer_segment = segment;
            endpoint->verdict_published = published;
            opal_list_append(&c->endpoints, &endpoint->super);
        }
        if (NULL != reachable && OPAL_SUCCESS != (rc = opal_bitmap_set_bit(reachable, (int) i))) {
            break;
        }
        peers[i] = endpoint;
    }
    OPAL_THREAD_UNLOCK(&c->lock);
    return rc;
}

int mca_btl_freeflow_del_procs(struct mca_btl_base_module_t *btl, size_t nprocs, struct opal_proc_t **procs,
                               struct mca_btl_base_endpoint_t **peers)
{
    /* Every module of the component (shm, sock, router, rdma) keeps its endpoints until finalize: a peer's
     * ring may still hold data for us after it is removed from a communicator (its segment stays mapped for
     * inbound rings anyway), and RDMA responses may still be on their way. */
    (void) btl;
    (void) nprocs;
    (void) procs;
    (void) peers;
    return OPAL_SUCCESS;
}

int mca_btl_freeflow_finalize(struct mca_btl_base_module_t *btl)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    (void) btl;
    /* deliver what is still buffered and report completions before the rings go away */
    /* relaxed: a hint, as in progress; flush_pending takes the list under its lock */
    while (atomic_load_explicit(&c->pending_count, memory_order_relaxed) && mca_btl_freeflow_flush_pending() > 0) {
    }
    mca_btl_freeflow_run_completions();
    /* the handoff sockets too (whichever module ob1 finalizes first), so the report has their totals */
    mca_btl_freeflow_sock_shutdown();
    mca_btl_freeflow_router_shutdown();
    mca_btl_freeflow_write_report();
    mca_btl_freeflow_sock_release();
    mca_btl_freeflow_router_release();
    c->sock_active = false;
    c->router_active = false;

    /* Verdicts we published that the peer never adopted (it never sent to us): ours to remove. */
    mca_btl_freeflow_endpoint_t *endpoint;
    OPAL_LIST_FOREACH(endpoint, &c->endpoints, mca_btl_freeflow_endpoint_t)
    {
        if (endpoint->verdict_published) {
            ff_pair_verdict_remove(c->dirfd, &c->key, c->my_id, endpoint->peer_id);
        }
    }
    mca_btl_freeflow_decline_t *decline;
    OPAL_LIST_FOREACH(decline, &c->declines, mca_btl_freeflow_decline_t)
    {
        if (decline->verdict_published) {
            ff_pair_verdict_remove(c->dirfd, &c->key, c->my_id, decline->peer_id);
        }
    }

    OPAL_LIST_DESTRUCT(&c->endpoints);
    OBJ_CONSTRUCT(&c->endpoints, opal_list_t);
    OPAL_LIST_DESTRUCT(&c->declines);
    OBJ_CONSTRUCT(&c->declines, opal_list_t);
    mca_btl_freeflow_detach_all();
    ff_segment_close(c->segment);
    if (c->dir_is_private) {
        /* the last rank of the job on this host removes it; ENOTEMPTY for the others */
        (void) rmdir(c->dir);
    }
    c->segment = NULL;
    ff_path_table_free(c->paths);
    c->paths = NULL;
    free(c->inbound);
    c->inbound = NULL;
    mca_btl_freeflow_poll_fini();
    atomic_store_explicit(&c->inbound_count, 0, memory_order_relaxed); /* relaxed: finalize, progress is over */
    c->inbound_capacity = 0;
    mca_btl_freeflow_frag_lists_fini();
    return OPAL_SUCCESS;
}
