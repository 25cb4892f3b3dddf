/*
 * Component: tunables, initialisation (segment, path table, modex) and the progress function.
 */
#include "btl_freeflow.h"
#include "btl_freeflow_endpoint.h"
#include "btl_freeflow_frag.h"
#include "btl_freeflow_idle.h"
#include "btl_freeflow_rdma.h"

#include "opal/mca/btl/base/base.h"
#include "opal/mca/pmix/pmix.h"
#include "opal/runtime/opal_progress.h"
#include "opal/util/output.h"
#include "opal/util/proc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIN_MAX_PEERS      64u
#define PATH_TABLE_NAME    "paths"
#define FREEFLOW_DIR_ENV   "FREEFLOW_DIR"
#define FFRUN_DIR          "/run/freeflow"
#define DEFAULT_PARENT_DIR "/dev/shm"

static int component_register(void);
static int component_open(void);
static int component_close(void);
static mca_btl_base_module_t **component_init(int *num_btls, bool enable_progress_threads, bool enable_mpi_threads);
static int component_progress(void);

mca_btl_freeflow_component_t mca_btl_freeflow_component = {
    .super =
        {
            .btl_version =
                {
                    MCA_BTL_DEFAULT_VERSION("freeflow"),
                    .mca_open_component = component_open,
                    .mca_close_component = component_close,
                    .mca_register_component_params = component_register,
                },
            .btl_data =
                {
                    .param_field = MCA_BASE_METADATA_PARAM_NONE,
                },
            .btl_init = component_init,
            .btl_progress = component_progress,
        },
};

/* The component's own parameters. The sock, router and rdma files keep tables of theirs beside the code that
 * reads them; mca_btl_freeflow_register_params registers every table the same way. Storage is the
 * component's fields; each gets its default before registration, which may override it. */
static const mca_btl_freeflow_param_t component_params[] = {
    {.name = "dir",
     .type = MCA_BASE_VAR_TYPE_STRING,
     .storage = &mca_btl_freeflow_component.dir_param,
     .default_string = "",
     .level = OPAL_INFO_LVL_3,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Shared directory that holds the segments and the path table. Empty (the default) picks, in "
             "order: $" FREEFLOW_DIR_ENV ", " FFRUN_DIR " (the per-job, per-host directory ffrun mounts "
             "into containers), " DEFAULT_PARENT_DIR "/freeflow-<euid>-<job family> (created mode 0700, removed "
             "when the job ends). A directory must not be a symlink, must be owned by this user or root, and "
             "sticky if others can write it. Ranks can share memory only if they see the same directory."},
    {.name = "ring_size",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &mca_btl_freeflow_component.ring_size,
     .default_number = 0,
     .level = OPAL_INFO_LVL_4,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Bytes of each ring (power of two, >= 64 KiB; 0: chosen from this CPU's L2 cache size, an eighth of "
             "it, 64 KiB to 4 MiB, so that small messages find the ring's lines in the cache). A rank has one ring "
             "per local peer it sends to, so its shared memory is about ring_size times the number of local peers "
             "it sends to. The largest fragment is ring_size / 4."},
    {.name = "copy",
     .type = MCA_BASE_VAR_TYPE_STRING,
     .storage = &mca_btl_freeflow_component.copy_param,
     .default_string = "auto",
     .level = OPAL_INFO_LVL_3,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Routine that copies large-message fragments into a ring: auto (from the CPU's features: movsb with "
             "ERMS, else avx2, else blocks), libc (glibc memcpy), blocks (fixed 256-byte blocks of SSE moves), "
             "movsb (rep movsb), avx2, avx512, nt (non-temporal stores: the data bypasses the cache, for "
             "experiments only, since the receiver reads it at once)."},
    {.name = "max_peers",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &mca_btl_freeflow_component.max_peers,
     .default_number = 0,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Most local peers one rank can send to and receive from through shared memory (0: automatic, the "
             "local ranks of the job plus room for spawned ones, at least 64). Address space only: memory is used "
             "per peer actually talked to."},
    {.name = "poll_batch",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &mca_btl_freeflow_component.poll_batch,
     .default_number = 32,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Messages taken from one peer's ring per progress pass before looking at the next peer (fairness "
             "against latency)."},
    {.name = "poll_idle_after",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &mca_btl_freeflow_component.poll_idle_after,
     .default_number = 1024,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Progress passes in a row that find a peer's ring empty before the ring counts as idle and is polled "
             "round-robin with the other idle ones instead of on every pass, so that a pass does not grow with "
             "silent peers; its next message makes it busy again (docs/btl.md). 0: poll every ring on every pass."},
    {.name = "poll_idle_rings_per_pass",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &mca_btl_freeflow_component.poll_idle_rings_per_pass,
     .default_number = 1,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Idle rings polled per progress pass (at least 1). An idle peer's next message waits at most "
             "ceil(rings / this) passes before it is seen."},
    {.name = "idle_sleep_after",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &mca_btl_freeflow_component.idle_sleep_after,
     .default_number = 64,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "With mpi_yield_when_idle (more ranks than cores: ffrun sets it), progress passes in a row that find "
             "nothing to do before the rank sleeps btl_freeflow_idle_sleep_ns instead of only yielding: "
             "sched_yield hands the core only to processes of the caller's own cgroup, and ranks in different "
             "containers are in different cgroups, so a waiting rank would keep the core from the peer it waits "
             "for until the kernel preempts it (docs/btl.md). A local peer's message wakes the sleeper at once "
             "(a doorbell in its segment). Fewer passes (4-8) helped on a host shared with other jobs' busy "
             "tasks, but on a host of its own a VM's wake-up costs more than it saves (4 passes: 2.7-5.5x the "
             "time of 64). 0: never sleep."},
    {.name = "idle_sleep_ns",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &mca_btl_freeflow_component.idle_sleep_ns,
     .default_number = 100000,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Longest such a sleep lasts, in nanoseconds (the kernel's timer slack, 50 us by default, may add "
             "to it). The rank sleeps on a doorbell in its segment that a local peer's message rings, so this "
             "bounds only the wait for other events (other BTLs, ring room). Sleeping takes the rank off the "
             "run queue, so another container's rank gets the core."},
    {.name = "idle_sleep_unrung_ns",
     .type = MCA_BASE_VAR_TYPE_UNSIGNED_INT,
     .storage = &mca_btl_freeflow_component.idle_sleep_unrung_ns,
     .default_number = 20000,
     .level = OPAL_INFO_LVL_6,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Longest idle sleep (nanoseconds, at most btl_freeflow_idle_sleep_ns) of a rank whose path table "
             "plans a path to some peer that does not ring the doorbell (h, r, t: messages from another host), "
             "since such a message waits for the sleep's end (docs/btl.md, \"Arrivals that do not ring\")."},
    /* Off by default: a process started later (MPI_Comm_spawn) could not open an unlinked segment and
     * would reach its parents over the next BTL while they reach it through shared memory, and ob1
     * breaks on such one-sided pairs (a rendezvous acknowledged for RDMA over tcp crashed the sender).
     * Leftovers are removed anyway: by the launcher's cleanup list, and with ffrun's per-job tmpfs. */
    {.name = "unlink_when_attached",
     .type = MCA_BASE_VAR_TYPE_BOOL,
     .storage = &mca_btl_freeflow_component.unlink_when_attached,
     .default_number = 0,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Remove a rank's segment file as soon as every expected local peer has mapped it (nothing is left "
             "behind even if the launcher is killed too); otherwise at MPI_Finalize. Only for jobs that never "
             "call MPI_Comm_spawn: later processes cannot open an unlinked segment."},
    {.name = "report",
     .type = MCA_BASE_VAR_TYPE_INT,
     .storage = &mca_btl_freeflow_component.report,
     .default_number = -1,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_READONLY,
     .help = "Write report.<rank> into the shared directory at MPI_Finalize, saying which peers went through "
             "shared memory and why others did not (docs/btl-report.md). 0: never; any other value (the default "
             "-1, or 1): when the orchestrator's path table covers this rank. A rank it does not cover (no path "
             "table, as under plain mpirun, or a spawned job) writes none: there is no plan to report against."},
    {.name = "verbose",
     .type = MCA_BASE_VAR_TYPE_INT,
     .storage = &mca_btl_freeflow_component.verbose,
     .default_number = 0,
     .level = OPAL_INFO_LVL_5,
     .scope = MCA_BASE_VAR_SCOPE_LOCAL,
     .help = "Verbosity: 10 explains the reachability decision for every peer (path table, host identity, "
             "segment verification); 20 adds segment and ring set-up."},
};

void mca_btl_freeflow_register_params(const mca_base_component_t *version, const mca_btl_freeflow_param_t *params,
                                      size_t count)
{
    for (size_t i = 0; i < count; ++i) {
        const mca_btl_freeflow_param_t *p = &params[i];
        switch (p->type) {
        case MCA_BASE_VAR_TYPE_STRING: *(char **) p->storage = (char *) p->default_string; break;
        case MCA_BASE_VAR_TYPE_UNSIGNED_INT: *(unsigned int *) p->storage = (unsigned int) p->default_number; break;
        case MCA_BASE_VAR_TYPE_INT: *(int *) p->storage = (int) p->default_number; break;
        case MCA_BASE_VAR_TYPE_BOOL: *(bool *) p->storage = 0 != p->default_number; break;
        case MCA_BASE_VAR_TYPE_SIZE_T: *(size_t *) p->storage = (size_t) p->default_number; break;
        default: continue; /* no other type is used; an entry of one would have no default */
        }
        (void) mca_base_component_var_register(version, p->name, p->help, p->type, NULL, 0, MCA_BASE_VAR_FLAG_SETTABLE,
                                               p->level, p->scope, p->storage);
    }
}

static int component_register(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    mca_btl_base_module_t *btl = &mca_btl_freeflow_module.super;

    mca_btl_freeflow_help_init();
    (void) mca_base_var_group_component_register(&c->super.btl_version,
                                                 "Shared memory between isolated containers on one host");

    /* Sizes and the copy routine follow the CPU (ff_shm_tuning_choose, docs/btl.md "Large messages"):
     * read it once here, so that the defaults ompi_info shows are this machine's. */
    ff_cpu_info_read(&c->cpu);
    ff_shm_tuning_t automatic = {0};
    char error[256];
    if (FF_OK != ff_shm_tuning_choose(&c->cpu, &automatic, error, sizeof(error))) {
        automatic.fragment_size = 32u * 1024u; /* unreachable with zero inputs; keeps the defaults sane */
    }
    mca_btl_freeflow_register_params(&c->super.btl_version, component_params,
                                     sizeof(component_params) / sizeof(component_params[0]));
    mca_btl_freeflow_sock_register_params(&c->super.btl_version);
    mca_btl_freeflow_router_register_params(&c->super.btl_version);

    /* Above vader (MCA_BTL_EXCLUSIVITY_HIGH): when both are listed, only freeflow carries local traffic. */
    btl->btl_exclusivity = MCA_BTL_EXCLUSIVITY_HIGH + 1024;
    btl->btl_eager_limit = 16 * 1024;
    btl->btl_rndv_eager_limit = 32 * 1024;
    /* btl_freeflow_max_send_size is the fragment size of large messages: by default L2 / 32 (16-64 KiB) */
    btl->btl_max_send_size = automatic.fragment_size;
    btl->btl_rdma_pipeline_send_length = btl->btl_eager_limit;
    btl->btl_rdma_pipeline_frag_size = btl->btl_eager_limit;
    btl->btl_min_rdma_pipeline_size = INT_MAX;
    btl->btl_latency = 1;
    btl->btl_bandwidth = 40000; /* MB/s; only relative to other BTLs */
    btl->btl_flags = MCA_BTL_FLAGS_SEND | MCA_BTL_FLAGS_SEND_INPLACE;
    mca_btl_freeflow_rdma_register();
    return mca_btl_base_param_register(&c->super.btl_version, btl);
}

static int component_open(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    c->output = -1;
    if (c->verbose > 0) {
        c->output = opal_output_open(NULL);
        opal_output_set_verbosity(c->output, c->verbose);
    }
    OBJ_CONSTRUCT(&c->attached, opal_hash_table_t);
    OBJ_CONSTRUCT(&c->lock, opal_mutex_t);
    OBJ_CONSTRUCT(&c->completed, opal_list_t);
    OBJ_CONSTRUCT(&c->completed_lock, opal_mutex_t);
    OBJ_CONSTRUCT(&c->pending_endpoints, opal_list_t);
    OBJ_CONSTRUCT(&c->pending_lock, opal_mutex_t);
    OBJ_CONSTRUCT(&c->declines, opal_list_t);
    OBJ_CONSTRUCT(&c->endpoints, opal_list_t);
    c->segment = NULL;
    c->paths = NULL;
    c->dir = NULL;
    c->dirfd = -1;
    c->inbound = NULL;
    /* relaxed: before any other thread can see the component */
    atomic_store_explicit(&c->inbound_count, 0, memory_order_relaxed);
    c->inbound_capacity = 0;
    c->ring_cursor = 0;
    atomic_store_explicit(&c->completed_count, 0, memory_order_relaxed);
    atomic_store_explicit(&c->pending_count, 0, memory_order_relaxed);
    c->sock_active = false;
    c->router_active = false;
    return OPAL_SUCCESS;
}

static int component_close(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    OPAL_LIST_DESTRUCT(&c->declines);
    OBJ_DESTRUCT(&c->endpoints);
    OBJ_DESTRUCT(&c->pending_endpoints);
    OBJ_DESTRUCT(&c->pending_lock);
    OBJ_DESTRUCT(&c->completed);
    OBJ_DESTRUCT(&c->completed_lock);
    OBJ_DESTRUCT(&c->lock);
    OBJ_DESTRUCT(&c->attached);
    free(c->dir);
    c->dir = NULL;
    if (c->dirfd >= 0) {
        close(c->dirfd);
        c->dirfd = -1;
    }
    if (c->output >= 0) {
        opal_output_close(c->output);
        c->output = -1;
    }
    return OPAL_SUCCESS;
}

static bool is_writable_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && access(path, W_OK | X_OK) == 0;
}

/* Picks and opens the shared directory: btl_freeflow_dir, $FREEFLOW_DIR, ffrun's /run/freeflow, and for
 * plain mpirun a private /dev/shm/freeflow-<euid>-<job family> (not /dev/shm itself: any local user can plant files
 * there). Every directory must pass ff_dir_open's checks; the fd is what all later file operations use. */
static bool open_dir(mca_btl_freeflow_component_t *c)
{
    const char *param = c->dir_param;
    const char *env = getenv(FREEFLOW_DIR_ENV);
    const char *chosen = param && *param ? param : env && *env ? env : is_writable_dir(FFRUN_DIR) ? FFRUN_DIR : NULL;
    char reason[512], private_dir[256], scope[16];
    ff_status_t status;
    c->dir_is_private = false;
    if (chosen) {
        status = ff_dir_open(chosen, &c->dirfd, reason, sizeof(reason));
    } else {
        /* One directory per launcher job family (spawned jobs share it), removed when the job ends. */
        snprintf(scope, sizeof(scope), "%04x", (unsigned) (OPAL_PROC_MY_NAME.jobid >> 16));
        status = ff_dir_open_private(DEFAULT_PARENT_DIR, scope, private_dir, sizeof(private_dir), &c->dirfd, reason,
                                     sizeof(reason));
        chosen = private_dir;
        c->dir_is_private = FF_OK == status;
    }
    if (FF_OK != status) {
        MCA_BTL_FREEFLOW_SHOW_HELP(FF_ERR_UNTRUSTED == status ? "shared-dir-untrusted" : "shared-dir-unusable", chosen,
                                   ff_status_name(status), reason);
        c->dirfd = -1;
        return false;
    }
    c->dir = strdup(chosen);
    return NULL != c->dir;
}

/* Loads <dir>/paths if there is one. A broken or untrusted table disables nothing but is reported
 * loudly: the job then runs without the plan's guidance, and ffrun flags every pair that did not get shm.
 * The table decides paths and the job key, and switches reports on, so it must come from this user or
 * root (ffrun hands it to the job's user, mode 0400). */
static void load_path_table(mca_btl_freeflow_component_t *c)
{
    char error[512];
    ff_status_t status = ff_path_table_load_at(c->dirfd, PATH_TABLE_NAME, &c->paths, error, sizeof(error));
    if (FF_ERR_NOT_FOUND == status) {
        c->paths = NULL;
        return;
    }
    if (FF_OK != status) {
        MCA_BTL_FREEFLOW_SHOW_HELP("path-table-ignored", c->dir, PATH_TABLE_NAME, ff_status_name(status),
                                   error[0] ? error : strerror(errno), ff_status_describe(status));
        c->paths = NULL;
    }
}

/* The path table describes the job the launcher started (launched_job). */
bool mca_btl_freeflow_in_path_table(opal_jobid_t jobid, opal_vpid_t vpid)
{
    const ff_path_table_t *paths = mca_btl_freeflow_component.paths;
    return paths && jobid == mca_btl_freeflow_component.launched_job && vpid < ff_path_table_num_ranks(paths);
}

/* The job the launcher started, as opposed to one made by MPI_Comm_spawn: the one ffrun's plan covers. Open
 * MPI 4.1 starts every spawned process with its parent's port in OMPI_PARENT_PORT (ompi/dpm/dpm.c), so a
 * process without it is of the launched job, whatever its id: mpirun's local id 1, srun's hash of the
 * step's PMIx namespace. Only mpirun spawns (Slurm's PMIx plugin has no spawn), and a spawned process finds
 * the launched job as ORTE numbers it: local id 1 of its own job family. */
static opal_jobid_t launched_job(opal_jobid_t mine, bool *spawned)
{
    *spawned = NULL != getenv("OMPI_PARENT_PORT");
    return *spawned ? (mine & 0xffff0000u) | 1u : mine;
}

/* Completes the machine's choices with the parameters given (btl_freeflow_ring_size, _max_send_size,
 * _copy) and makes ff_copy use the chosen routine. False (freeflow disabled, with the reason) when a
 * given value cannot work. */
static bool choose_tuning(mca_btl_freeflow_component_t *c, mca_btl_base_module_t *btl)
{
    ff_copy_kind_t copy;
    if (FF_OK != ff_copy_kind_parse(c->copy_param, &copy)) {
        MCA_BTL_FREEFLOW_SHOW_HELP("bad-copy-routine", c->copy_param);
        return false;
    }
    c->tuning = (ff_shm_tuning_t){.ring_size = c->ring_size, .copy = copy};
    char error[256];
    ff_status_t status = ff_shm_tuning_choose(&c->cpu, &c->tuning, error, sizeof(error));
    if (FF_OK != status) {
        MCA_BTL_FREEFLOW_SHOW_HELP("bad-tuning", c->ring_size, c->copy_param, error);
        return false;
    }
    c->ring_size = c->tuning.ring_size;
    /* ob1 cuts large messages into max_send_size fragments; one must fit a ring record (a quarter) */
    if (btl->btl_max_send_size < FF_FRAGMENT_MIN) {
        MCA_BTL_FREEFLOW_SHOW_HELP("max-send-size-too-small", btl->btl_max_send_size, (unsigned) FF_FRAGMENT_MIN);
        return false;
    }
    c->tuning.fragment_size = (uint32_t) btl->btl_max_send_size;
    (void) ff_copy_use(c->tuning.copy, &c->cpu);
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: CPU %s (%s), L2 %u KiB (%s): ring %u, fragment %zu, copy %s", c->cpu.model,
           c->cpu.vendor, c->cpu.l2_bytes >> 10, c->cpu.cache_source, c->ring_size, btl->btl_max_send_size,
           ff_copy_kind_name(c->tuning.copy));
    return true;
}

static mca_btl_base_module_t **component_init(int *num_btls, bool enable_progress_threads, bool enable_mpi_threads)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    mca_btl_base_module_t *btl = &mca_btl_freeflow_module.super;
    const opal_process_name_t me = OPAL_PROC_MY_NAME;
    (void) enable_progress_threads;
    (void) enable_mpi_threads;
    *num_btls = 0;

    if (!choose_tuning(c, btl)) {
        return NULL;
    }
    if (!open_dir(c)) {
        return NULL;
    }
    ff_status_t status = ff_host_id_read(c->dir, &c->host);
    if (FF_OK != status) {
        MCA_BTL_FREEFLOW_SHOW_HELP("host-identity-unreadable", c->dir, ff_status_name(status), strerror(errno));
        return NULL;
    }
    load_path_table(c);
    bool spawned;
    c->launched_job = launched_job(me.jobid, &spawned);
    c->paths_apply_to_me = mca_btl_freeflow_in_path_table(me.jobid, me.vpid);
    if (c->paths) {
        c->key = *ff_path_table_job_key(c->paths);
    } else {
        /* Without an orchestrator, the launcher's job family (shared by spawned jobs) names the job. */
        ff_job_key_derive(0x66726565666c6f77ULL ^ (uint64_t) (me.jobid >> 16), &c->key);
    }
    c->my_id = mca_btl_freeflow_peer_id(me);

    /* Expected attachers: the plan's shm peers, or Open MPI's count of local peers in one namespace. */
    uint32_t expected = 0;
    if (c->paths_apply_to_me) {
        expected = ff_path_table_shm_peers(c->paths, me.vpid);
    } else if (!c->paths && opal_process_info.num_local_peers > 0) {
        expected = (uint32_t) opal_process_info.num_local_peers;
    }
    uint32_t max_rings = c->max_peers;
    if (0 == max_rings) {
        max_rings = expected + 16 > MIN_MAX_PEERS ? expected + 16 : MIN_MAX_PEERS;
    }

    ff_segment_config_t config = {
        .dir = c->dir,
        .key = c->key,
        .owner_id = c->my_id,
        .host = c->host,
        .ring_size = c->ring_size,
        .max_rings = max_rings,
        .expected_peers = c->unlink_when_attached ? expected : 0,
        .dir_fd = c->dirfd,
    };
    status = ff_segment_create(&config, &c->segment);
    if (FF_OK != status) {
        MCA_BTL_FREEFLOW_SHOW_HELP("segment-create-failed", c->dir, ff_status_name(status), ff_status_describe(status),
                                   strerror(errno));
        goto fail;
    }
    if (NULL != opal_pmix.register_cleanup) {
        /* the launcher removes the file if this rank dies before it is unlinked */
        opal_pmix.register_cleanup((char *) ff_segment_file(c->segment), false, false, false);
        /* The private directory goes too when the launched job ends, crashed or not. Spawned jobs
         * do not register it: their end must not pull it from under their parents. */
        if (c->dir_is_private && !spawned) {
            opal_pmix.register_cleanup(c->dir, true, false, false);
        }
    }
    FF_LOG(FF_VERBOSE_LIFECYCLE, "freeflow: %s created %s (ring %u bytes, up to %u peers, unlinked after %u attach)",
           OPAL_NAME_PRINT(me), ff_segment_file(c->segment), c->ring_size, max_rings, config.expected_peers);

    c->rings_claimed = ff_segment_claim_counter(c->segment);
    c->inbound_capacity = max_rings;
    c->inbound = calloc(max_rings, sizeof(*c->inbound));
    if (NULL == c->inbound) {
        goto fail;
    }
    if (OPAL_SUCCESS != opal_hash_table_init(&c->attached, 64)) {
        goto fail;
    }

    /* A fragment must fit a ring record (a quarter of the ring) with its headers. */
    const size_t largest = c->ring_size / 4 - 64;
    if (btl->btl_max_send_size > largest) btl->btl_max_send_size = largest;
    if (btl->btl_eager_limit > largest) btl->btl_eager_limit = largest;
    if (btl->btl_rndv_eager_limit > largest) btl->btl_rndv_eager_limit = largest;
    c->tuning.fragment_size = (uint32_t) btl->btl_max_send_size;
    if (OPAL_SUCCESS != mca_btl_freeflow_frag_lists_init()) {
        goto fail;
    }

    /* Path `h`: register with the host's agent before publishing the modex, so that a peer that reads
     * "registered" in it can count on it (btl_freeflow_sock.c explains why both sides then agree). */
    c->sock_active = mca_btl_freeflow_sock_wanted() && mca_btl_freeflow_sock_init();
    /* Path `r`, the same way: the route is open before the modex says so. */
    c->router_active = mca_btl_freeflow_router_wanted() && mca_btl_freeflow_router_init();
    /* without a path table for this rank (plain mpirun, a spawned job) other BTLs may carry any peer */
    const bool peers_unrung =
        !c->paths_apply_to_me ||
        mca_btl_freeflow_path_planned((1u << FF_PATH_HANDOFF) | (1u << FF_PATH_ROUTER) | (1u << FF_PATH_TCP));
    c->idle_sleep_bound_ns =
        peers_unrung && c->idle_sleep_unrung_ns < c->idle_sleep_ns ? c->idle_sleep_unrung_ns : c->idle_sleep_ns;
    if (c->idle_sleep_bound_ns == 0) {
        c->idle_sleep_bound_ns = 1; /* a wait of 0 would not sleep at all */
    }
    /* mpi_yield_when_idle is not known yet (MPI_Init sets it after the BTLs): said for either case */
    if (peers_unrung && c->idle_sleep_after > 0) {
        FF_LOG(FF_VERBOSE_DECISIONS,
               "freeflow: %s: idle sleeps (with mpi_yield_when_idle) last at most %u ns "
               "(btl_freeflow_idle_sleep_unrung_ns): no path table, or it plans h, r or t to some peer, whose "
               "messages do not ring the doorbell",
               OPAL_NAME_PRINT(OPAL_PROC_MY_NAME), c->idle_sleep_bound_ns);
    }

    mca_btl_freeflow_modex_t modex = {
        .version = MCA_BTL_FREEFLOW_MODEX_VERSION,
        .ring_size = c->ring_size,
        .host = c->host,
        .key = c->key,
        .owner_id = c->my_id,
        .flags = (c->sock_active ? MCA_BTL_FREEFLOW_MODEX_AGENT : 0u) |
                 (c->router_active ? MCA_BTL_FREEFLOW_MODEX_ROUTER : 0u),
    };
    int rc;
    /* Global scope: between containers every container is its own "node" to Open MPI, so co-location is
     * decided here, not by OPAL_PROC_ON_LOCAL_NODE. */
    OPAL_MODEX_SEND(rc, OPAL_PMIX_GLOBAL, &c->super.btl_version, &modex, sizeof(modex));
    if (OPAL_SUCCESS != rc) {
        goto fail;
    }

    mca_btl_base_module_t **btls = malloc(4 * sizeof(*btls)); /* shm, handoff, router, rdma */
    if (NULL == btls) {
        goto fail;
    }
    btls[0] = btl;
    *num_btls = 1;
    if (c->sock_active) {
        btls[(*num_btls)++] = &mca_btl_freeflow_sock_module.super;
    }
    if (c->router_active) {
        btls[(*num_btls)++] = &mca_btl_freeflow_router_module.super;
    }
    /* one-sided communication between containers (btl_freeflow_rdma.c) */
    if (mca_btl_freeflow_rdma_init()) {
        btls[(*num_btls)++] = &mca_btl_freeflow_rdma_module.super;
    }
    return btls;

fail:
    if (c->sock_active) {
        mca_btl_freeflow_sock_abandon();
        c->sock_active = false;
    }
    if (c->router_active) {
        mca_btl_freeflow_router_release();
        c->router_active = false;
    }
    free(c->inbound);
    c->inbound = NULL;
    ff_segment_close(c->segment);
    c->segment = NULL;
    ff_path_table_free(c->paths);
    c->paths = NULL;
    return NULL;
}

/*
 * Oversubscribed ranks (mpi_yield_when_idle) yield after every empty progress pass, but with the kernel's
 * fair scheduler a yield only reorders the caller's own cgroup: a rank alone in its container's cgroup
 * gets the core straight back and spins until the tick preempts it, while the rank it waits for, in
 * another container, waits for that core (4-rank collectives then cost a time slice per step). Sleeping
 * takes the rank off the run queue instead, on the doorbell of its segment: a local peer's commit wakes
 * it at once (btl_freeflow_idle.h), and the timeout bounds the wait for everything else (other BTLs,
 * ring room, the agent). Only after idle_sleep_after empty passes in a row, so a message that is about
 * to arrive is still met by polling.
 */
static void sleep_when_idle_and_oversubscribed(mca_btl_freeflow_component_t *c, int count)
{
    /* per thread: each polling thread counts its own empty passes */
    static _Thread_local unsigned int empty_passes;
    /* relaxed: a ring accepted by another thread only has to be seen by a later pass (no local peer has
     * sent yet: nothing to sleep for) */
    if (count > 0 || !opal_progress_yield_when_idle || 0 == c->idle_sleep_after ||
        0 == atomic_load_explicit(&c->inbound_count, memory_order_relaxed)) {
        empty_passes = 0;
        return;
    }
    if (++empty_passes < c->idle_sleep_after) {
        return;
    }
    empty_passes = 0;
    /* Dekker with the sender (freeflow.h, "Doorbell"): announce the sleep, then look at every ring once
     * more; a record committed meanwhile is either seen here or rings the doorbell. Several threads
     * may arm and disarm the one word: that only shortens a sleep or leaves it to its timeout. */
    ff_doorbell_arm(c->segment);
    if (mca_btl_freeflow_inbound_pending()) {
        ff_doorbell_disarm(c->segment);
        return;
    }
    (void) ff_doorbell_wait(c->segment, c->idle_sleep_bound_ns, NULL);
}

bool mca_btl_freeflow_path_planned(unsigned int kinds)
{
    const mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    if (!c->paths_apply_to_me) {
        return false;
    }
    const uint32_t me = OPAL_PROC_MY_NAME.vpid, n = ff_path_table_num_ranks(c->paths);
    for (uint32_t peer = 0; peer < n; ++peer) {
        const ff_path_kind_t kind = ff_path_table_path(c->paths, me, peer);
        if (kind < FF_PATH_KIND_COUNT && (kinds & (1u << kind))) {
            return true;
        }
    }
    return false;
}

static int component_progress(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    int count = mca_btl_freeflow_poll_inbound();
    /* relaxed: a new ring is picked up on this pass or the next; accept_rings synchronises properly */
    if (OPAL_UNLIKELY(atomic_load_explicit(c->rings_claimed, memory_order_relaxed) != c->ring_cursor)) {
        mca_btl_freeflow_accept_rings();
    }
    /* relaxed, the three below: hints only; the work is taken under its list's lock, and what another
     * thread queues meanwhile is seen on this pass or the next */
    if (OPAL_UNLIKELY(atomic_load_explicit(&c->pending_count, memory_order_relaxed))) {
        count += mca_btl_freeflow_flush_pending();
    }
    if (atomic_load_explicit(&c->completed_count, memory_order_relaxed)) {
        count += mca_btl_freeflow_run_completions();
    }
    if (OPAL_UNLIKELY(atomic_load_explicit(&mca_btl_freeflow_rdma_deferred_count, memory_order_relaxed))) {
        count += mca_btl_freeflow_rdma_progress();
    }
    if (OPAL_UNLIKELY(c->sock_active)) {
        count += mca_btl_freeflow_sock_progress();
    }
    if (OPAL_UNLIKELY(c->router_active)) {
        count += mca_btl_freeflow_router_progress(count);
    }
    sleep_when_idle_and_oversubscribed(c, count);
    return count;
}
