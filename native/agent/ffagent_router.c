/*
 * ffagent's `r` plane (docs/agent.md, "The `r` plane"): the FreeFlow router.
 *
 * Each rank with `r` pairs shares a sealed memfd with its host's agent (agent_proto.h: ff_route_shm_t):
 * an up ring (rank -> agent) and a down ring (agent -> rank). The agent takes records from up rings and
 * sends them as UCX active messages to the agent of the destination host; the receiving agent writes
 * them into the destination rank's down ring (eager data: one copy from UCX's buffer; rendezvous data:
 * received by UCX straight into the ring). Agents of one job find each other over the authenticated
 * agent-to-agent handshake (FF_PEER_LINK), which carries the UCX worker addresses and per-job tokens and
 * stays open as the link's liveness: its EOF (the peer agent died or dropped the job) ends the job's
 * routes on this host, so the ranks fail with an error instead of waiting.
 *
 * The rank is not trusted: its memory is sealed (no SIGBUS), the layout is our constants (the header is
 * only compared), every record header is bounds-checked by ff_ring_peek, a forged tail breaks the ring,
 * and a broken ring closes that rank's route, nothing else.
 *
 * CPU: nothing here blocks. While traffic flows the main loop polls (bounded by `router_spin_us` after
 * the last movement, yielding the CPU each pass); then every route is flagged "sleeping" (ranks ring the
 * doorbell on their connection), the UCX worker is armed and the loop blocks in epoll.
 */
#define _GNU_SOURCE
#include "ffagent.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <ucp/api/ucp.h>

#define AM_ID           7
#define MAX_INFLIGHT    64   /* sends in flight per route: enough to keep a link busy, bounded */
#define MAX_ROUTES      4096 /* all jobs together */
#define LINK_RETRY_MS   200
#define LINK_ATTEMPTS   25    /* 5 s: the peer agent may get the job a little after us */
#define EAGER_ALIGN_MIN 1024u /* payloads from this size start on a cache line in the ring */
/* Eager data held for one rank whose down ring is full. ob1's flow control keeps a working rank far
 * below this; a rank that stops taking its messages while peers keep sending loses its route instead of
 * growing the agent without bound. Rendezvous messages wait at their sender and do not count. */
#define MAX_BACKLOG_BYTES (64ull << 20)

unsigned router_spin_us = 0; /* measured: polling only delays the ranks on 2 vCPUs (docs/agent.md) */

/* Header of every active message between agents. `token` is the receiver's token for the job. */
struct am_hdr {
    uint64_t token;
    uint64_t src_owner;
    uint64_t dst_owner;
    uint32_t tag;
    uint32_t zero;
};

enum link_state { L_NONE, L_CONNECTING, L_EXCHANGING, L_UP, L_DEAD };

struct link {
    struct job *job;
    uint32_t host; /* index in the job's host list */
    enum link_state state;
    struct conn *conn;
    ucp_ep_h ep;
    uint64_t remote_token;
    uint8_t *blob;
    size_t blob_len;
    unsigned attempts;
    uint64_t retry_at;
    char where[64];
};

struct inflight {
    struct route *route;
    struct am_hdr hdr; /* UCX reads it until completion */
    uint64_t end_pos;
    bool done;
};

/* Data for a rank that did not fit its down ring yet (backlog), or a rendezvous receive in progress. */
struct delivery {
    struct delivery *next;
    struct route *route;
    uint64_t src_owner;
    uint32_t len;
    uint8_t tag;
    bool rndv;     /* desc is a rendezvous descriptor: ucp_am_recv_data_nbx fetches the data */
    void *desc;    /* UCX-held data (persistent eager or rendezvous), released or received later */
    uint8_t *copy; /* our copy when UCX could not keep the data */
    uint8_t *slot; /* rendezvous in progress: the reserved record */
};

struct route {
    struct route *next; /* job->routes, or the closing list */
    struct job *job;
    struct conn *conn;
    uint64_t owner;
    pid_t pid;
    ff_route_shm_t *shm;
    ff_ring_rx_t up; /* its tail is up_private: the shared tail moves only when sends completed */
    uint64_t up_private;
    ff_ring_tx_t down;
    struct inflight fl[MAX_INFLIGHT];
    unsigned fl_head, fl_count;
    struct delivery *backlog, *backlog_tail;
    unsigned receiving;     /* rendezvous receives writing into the down ring */
    uint64_t backlog_bytes; /* eager bytes held in `backlog` */
    bool wants_room;        /* our copy of shm->agent_wants_room: the shared word is the rank's to overwrite */
    bool waiting_link;
    bool closing;
    uint64_t msgs_up, bytes_up, msgs_down, bytes_down;
};

static struct {
    ucp_context_h context;
    ucp_worker_h worker;
    uint8_t *address;
    size_t address_len;
    struct conn *efd_conn;
    struct route *closing;
    unsigned nroutes;
    uint64_t last_movement_ns;
    unsigned drops_logged;
} R;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static ucs_status_t am_recv(void *arg, const void *header, size_t header_length, void *data, size_t length,
                            const ucp_am_recv_param_t *param);

bool router_init(char *err, size_t errlen)
{
    /* UCX starts with the first route or link: an agent that only hands sockets off never loads its
     * transports (threads, descriptors). */
    (void) err;
    (void) errlen;
    return true;
}

/* Starts UCX if it is not running yet; false (logged) if it cannot. */
static bool ucx_failed(const char *err)
{
    logf_("router: cannot start UCX: %s; router routes are refused", err);
    if (R.worker) {
        ucp_worker_destroy(R.worker);
        R.worker = NULL;
    }
    if (R.context) {
        ucp_cleanup(R.context);
        R.context = NULL;
    }
    return false;
}

/*
 * The devices UCX may use: the interface that holds our underlay address (the one peers list for us) and
 * every RDMA port. Without this, UCX's tcp transport may connect over any interface of the host's network
 * namespace, the overlay's bridge and VXLAN device included, and the router's traffic would take the
 * overlay it exists to avoid. Returns false when the underlay address is on no interface (listening on
 * any address: then UCX keeps its own choice, and the log says so).
 */
static bool underlay_devices(char *out, size_t size)
{
    if (g.listen_addr.sin_addr.s_addr == htonl(INADDR_ANY)) {
        return false;
    }
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0) {
        return false;
    }
    bool found = false;
    for (const struct ifaddrs *ifa = list; ifa != NULL && !found; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr != NULL && ifa->ifa_addr->sa_family == AF_INET &&
            ((const struct sockaddr_in *) (const void *) ifa->ifa_addr)->sin_addr.s_addr ==
                g.listen_addr.sin_addr.s_addr &&
            strlen(ifa->ifa_name) < size) {
            snprintf(out, size, "%s", ifa->ifa_name);
            found = true;
        }
    }
    freeifaddrs(list);
    if (!found) {
        return false;
    }
    /* RDMA ports (<device>:<port>) stay allowed: they are the reason for the router where they exist */
    DIR *devices = opendir("/sys/class/infiniband");
    for (struct dirent *dev; devices != NULL && (dev = readdir(devices)) != NULL;) {
        if (dev->d_name[0] == '.') {
            continue;
        }
        char ports_path[512];
        snprintf(ports_path, sizeof(ports_path), "/sys/class/infiniband/%s/ports", dev->d_name);
        DIR *ports = opendir(ports_path);
        for (struct dirent *port; ports != NULL && (port = readdir(ports)) != NULL;) {
            if (port->d_name[0] == '.') {
                continue;
            }
            const size_t used = strlen(out);
            const int n = snprintf(out + used, size - used, ",%s:%s", dev->d_name, port->d_name);
            if (n < 0 || (size_t) n >= size - used) {
                out[used] = '\0'; /* no room: keep the list we have */
            }
        }
        if (ports != NULL) {
            closedir(ports);
        }
    }
    if (devices != NULL) {
        closedir(devices);
    }
    return true;
}

static bool ucx_start(void)
{
    if (R.worker) {
        return true;
    }
    char err[160];
    const size_t errlen = sizeof(err);
    ucp_config_t *config;
    ucs_status_t st = ucp_config_read(NULL, NULL, &config);
    if (st != UCS_OK) {
        snprintf(err, errlen, "UCX configuration: %s", ucs_status_string(st));
        return ucx_failed(err);
    }
    /* One agent per host: agents never share memory with each other. Without this UCX would pick its
     * shared-memory transports between agents of simulated hosts on one machine (a fake result); with it,
     * RDMA transports are used where a port is active and tcp elsewhere. UCX_TLS overrides. */
    if (!getenv("UCX_TLS")) {
        ucp_config_modify(config, "TLS", "^sm");
    }
    char devices[1024] = "";
    if (getenv("UCX_NET_DEVICES")) {
        snprintf(devices, sizeof(devices), "%s (UCX_NET_DEVICES)", getenv("UCX_NET_DEVICES"));
    } else if (underlay_devices(devices, sizeof(devices))) {
        ucp_config_modify(config, "NET_DEVICES", devices);
    } else {
        snprintf(devices, sizeof(devices), "UCX's choice (the underlay address is on no interface)");
    }
    ucp_params_t params = {.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_NAME,
                           .features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
                           .name = "ffagent"};
    st = ucp_init(&params, config, &R.context);
    ucp_config_release(config);
    if (st != UCS_OK) {
        snprintf(err, errlen, "UCX init: %s", ucs_status_string(st));
        return ucx_failed(err);
    }
    ucp_worker_params_t wp = {.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE | UCP_WORKER_PARAM_FIELD_EVENTS,
                              .thread_mode = UCS_THREAD_MODE_SINGLE,
                              .events = UCP_WAKEUP_RX | UCP_WAKEUP_TX | UCP_WAKEUP_RMA | UCP_WAKEUP_TAG_RECV};
    st = ucp_worker_create(R.context, &wp, &R.worker);
    if (st != UCS_OK) {
        snprintf(err, errlen, "UCX worker: %s", ucs_status_string(st));
        return ucx_failed(err);
    }
    ucp_address_t *addr;
    st = ucp_worker_get_address(R.worker, &addr, &R.address_len);
    if (st != UCS_OK || R.address_len > FF_LINK_ADDRESS_MAX) {
        snprintf(err, errlen, "UCX worker address: %s (%zu bytes)", ucs_status_string(st), R.address_len);
        return ucx_failed(err);
    }
    R.address = malloc(R.address_len);
    memcpy(R.address, addr, R.address_len);
    ucp_worker_release_address(R.worker, addr);
    ucp_am_handler_param_t hp = {.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_FLAGS |
                                               UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG,
                                 .id = AM_ID,
                                 .flags = UCP_AM_FLAG_WHOLE_MSG | UCP_AM_FLAG_PERSISTENT_DATA,
                                 .cb = am_recv,
                                 .arg = NULL};
    st = ucp_worker_set_am_recv_handler(R.worker, &hp);
    int efd = -1;
    if (st == UCS_OK) {
        st = ucp_worker_get_efd(R.worker, &efd);
    }
    if (st != UCS_OK) {
        snprintf(err, errlen, "UCX handler/event fd: %s", ucs_status_string(st));
        return ucx_failed(err);
    }
    /* The worker owns efd: conn_close must never close it, so the conn gets a duplicate. */
    R.efd_conn = conn_add(K_UCP, dup(efd), EPOLLIN);
    if (!R.efd_conn) {
        snprintf(err, errlen, "epoll on the UCX event fd: %s", strerror(errno));
        return ucx_failed(err);
    }
    logf_("router: UCX worker ready (address %zu bytes, transports %s, devices %s)", R.address_len,
          getenv("UCX_TLS") ? getenv("UCX_TLS") : "all but shared memory", devices);
    return true;
}

/* ---- routes ---------------------------------------------------------------------------------------- */

static void route_free(struct route *r)
{
    munmap(r->shm, FF_ROUTE_BYTES);
    free(r);
    R.nroutes--;
}

static void delivery_drop(struct delivery *d)
{
    if (d->desc) {
        ucp_am_data_release(R.worker, d->desc); /* rendezvous: tells the sender we do not want it */
    }
    free(d->copy);
    free(d);
}

/* Ends a rank's route with a log line; the rank sees EOF on its connection and fails its job. */
static void route_fail(struct route *r, const char *why)
{
    if (r->closing || !r->conn) {
        return;
    }
    logf_("job=%s owner=%016llx pid=%d: router route closed: %s", r->job ? r->job->id : "?",
          (unsigned long long) r->owner, (int) r->pid, why);
    conn_close(r->conn); /* -> router_route_closed */
}

static void retire(struct route *r)
{
    uint64_t pos = 0;
    bool moved = false;
    while (r->fl_count && r->fl[r->fl_head].done) {
        pos = r->fl[r->fl_head].end_pos;
        r->fl_head = (r->fl_head + 1) % MAX_INFLIGHT;
        r->fl_count--;
        moved = true;
    }
    if (moved && !r->closing) {
        /* release: UCX has finished reading these records before the rank may overwrite them */
        atomic_store_explicit(&r->shm->up_tail, pos, memory_order_release);
    }
}

static void maybe_free_closing(void)
{
    struct route **pp = &R.closing;
    while (*pp) {
        struct route *r = *pp;
        if (r->fl_count == 0 && r->receiving == 0) {
            *pp = r->next;
            route_free(r);
        } else {
            pp = &r->next;
        }
    }
}

void router_route_open(struct conn *c, int memfd)
{
    struct job *job = c->job;
    struct stat st;
    int seals = memfd >= 0 ? fcntl(memfd, F_GET_SEALS) : -1;
    const char *bad = NULL;
    ff_agent_refusal_t why = FF_AGENT_BAD_REQUEST;
    if (memfd < 0) {
        bad = "no shared memory descriptor attached";
    } else if (fstat(memfd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != (off_t) FF_ROUTE_BYTES) {
        bad = "the shared memory is not a regular file of the router's size (another freeflow version?)";
    } else if (seals < 0 || !(seals & F_SEAL_SHRINK) || !(seals & F_SEAL_GROW)) {
        bad = "the shared memory is not sealed against resizing";
    } else if (R.nroutes >= MAX_ROUTES) {
        bad = "too many routes", why = FF_AGENT_LIMIT;
    } else if (!ucx_start()) {
        bad = "UCX could not start (the agent's log says why)", why = FF_AGENT_INTERNAL;
    } else {
        for (struct conn *k = g.conns; k; k = k->next) {
            if (k->kind == K_RANK && k->job == job && k->owner == c->owner) {
                break;
            }
            if (!k->next) {
                bad = "the owner id is not registered";
            }
        }
    }
    void *map = MAP_FAILED;
    if (!bad) {
        map = mmap(NULL, FF_ROUTE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (map == MAP_FAILED) {
            bad = "mmap failed";
        }
    }
    if (memfd >= 0) {
        close(memfd);
    }
    ff_route_shm_t *shm = map;
    if (!bad) {
        /* Compared, never used: the layout is this agent's own constants. */
        ff_route_shm_t h;
        memcpy(&h, shm, offsetof(ff_route_shm_t, pad0));
        if (h.magic != FF_ROUTE_MAGIC || h.version != FF_ROUTE_VERSION || h.ring_size != FF_ROUTE_RING_SIZE ||
            h.header_bytes != FF_ROUTE_HEADER_BYTES) {
            bad = "the shared memory has another magic or layout version (rank and agent are different freeflow "
                  "versions)";
        } else if (h.owner_id != c->owner || !ff_ct_equal(h.key, job->key.bytes, 16)) {
            bad = "the shared memory names another owner or job";
        }
    }
    struct route *r = bad ? NULL : calloc(1, sizeof(*r));
    if (!bad && !r) {
        bad = "out of memory", why = FF_AGENT_INTERNAL;
    }
    if (bad) {
        if (map != MAP_FAILED) {
            munmap(map, FF_ROUTE_BYTES);
        }
        job_refuse(c, why, bad);
        return;
    }
    uint8_t *base = map;
    r->job = job;
    r->conn = c;
    r->owner = c->owner;
    r->pid = c->pid;
    r->shm = shm;
    r->up = (ff_ring_rx_t){.data = base + FF_ROUTE_UP_OFFSET,
                           .tail = (_Atomic uint64_t *) &r->up_private,
                           .size = FF_ROUTE_RING_SIZE,
                           .max_payload = FF_ROUTE_MAX_PAYLOAD};
    r->down = (ff_ring_tx_t){.data = base + FF_ROUTE_DOWN_OFFSET,
                             .tail = &shm->down_tail,
                             .size = FF_ROUTE_RING_SIZE,
                             .max_payload = FF_ROUTE_MAX_PAYLOAD};
    if (!job_send(c, FF_JOB_REPLY, FF_AGENT_OK, -1, 0, 0)) {
        munmap(map, FF_ROUTE_BYTES);
        free(r);
        conn_close(c);
        return;
    }
    R.nroutes++;
    c->kind = K_ROUTE;
    c->deadline = 0;
    c->route = r;
    r->next = job->routes;
    job->routes = r;
    logf_("job=%s owner=%016llx pid=%d: router route opened", job->id, (unsigned long long) r->owner, (int) r->pid);
    /* The lower host index of each pair connects the link, as soon as the job is used on this host. */
    for (unsigned i = 0; i < job->npeers; ++i) {
        struct link *l = &job->links[i];
        if (l->host > job->host && l->state == L_NONE && !l->retry_at) {
            l->retry_at = now_ms();
        }
    }
}

void router_route_event(struct conn *c)
{
    char buf[64];
    for (;;) {
        const ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            continue; /* doorbells: waking us was their whole job */
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        logf_("job=%s owner=%016llx pid=%d: router route closed by the rank (exited or crashed)",
              c->job ? c->job->id : "?", (unsigned long long) c->owner, (int) c->pid);
        conn_close(c);
        return;
    }
}

void router_route_closed(struct conn *c)
{
    struct route *r = c->route;
    if (!r) {
        return;
    }
    c->route = NULL;
    r->conn = NULL;
    r->closing = true;
    if (r->job) {
        for (struct route **pp = &r->job->routes; *pp; pp = &(*pp)->next) {
            if (*pp == r) {
                *pp = r->next;
                break;
            }
        }
        logf_("job=%s owner=%016llx: router carried %llu messages (%llu bytes) out, %llu (%llu bytes) in", r->job->id,
              (unsigned long long) r->owner, (unsigned long long) r->msgs_up, (unsigned long long) r->bytes_up,
              (unsigned long long) r->msgs_down, (unsigned long long) r->bytes_down);
    }
    r->job = NULL;
    while (r->backlog) {
        struct delivery *d = r->backlog;
        r->backlog = d->next;
        delivery_drop(d);
    }
    /* UCX may still read its up ring (sends) or write its down ring (receives): unmapped when they end. */
    r->next = R.closing;
    R.closing = r;
    /* freed by router_poll (maybe_free_closing): a caller may still be walking the lists */
}

static struct route *find_route(const struct job *job, uint64_t owner)
{
    for (struct route *r = job->routes; r; r = r->next) {
        if (r->owner == owner) {
            return r;
        }
    }
    return NULL;
}

/* ---- links ----------------------------------------------------------------------------------------- */

static struct link *job_link(struct job *job, uint32_t host)
{
    for (unsigned i = 0; i < job->npeers; ++i) {
        if (job->links && job->links[i].host == host) {
            return &job->links[i];
        }
    }
    return NULL;
}

void router_job_added(struct job *job)
{
    getrandom(&job->token, sizeof(job->token), 0);
    job->links = calloc(job->npeers ? job->npeers : 1, sizeof(*job->links));
    for (unsigned i = 0; job->links && i < job->npeers; ++i) {
        job->links[i].job = job;
        job->links[i].host = job->peers[i].index;
        job->links[i].state = job->peers[i].index == job->host ? L_DEAD : L_NONE;
        addr_format(&job->peers[i].addr, job->links[i].where, sizeof(job->links[i].where));
    }
}

static void ep_close(struct link *l)
{
    if (l->ep) {
        ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS, .flags = UCP_EP_CLOSE_FLAG_FORCE};
        ucs_status_ptr_t req = ucp_ep_close_nbx(l->ep, &p);
        if (req && !UCS_PTR_IS_ERR(req)) {
            ucp_request_free(req); /* completes in the background; we no longer need to know */
        }
        l->ep = NULL;
    }
}

/* Ends a link for good: its UCX endpoint and the agent connection that carried its set-up. */
static void link_close(struct link *l)
{
    l->state = L_DEAD;
    ep_close(l);
    if (l->conn) {
        struct conn *c = l->conn;
        l->conn = NULL;
        c->link = NULL;
        conn_close(c);
    }
}

/* A link that was up (or could not be made) is gone: every route of the job on this host ends, so its
 * ranks fail with an error naming the agent instead of waiting for data that cannot come. */
static void link_lost(struct link *l, const char *why)
{
    struct job *job = l->job;
    logf_("job=%s router link to host %u (%s) lost: %s; closing the job's routes on this host", job->id, l->host,
          l->where, why);
    link_close(l);
    while (job->routes) {
        route_fail(job->routes, "its job lost a router link to another host's agent");
    }
}

void router_job_removed(struct job *job)
{
    while (job->routes) {
        route_fail(job->routes, "the job was removed");
    }
    for (unsigned i = 0; job->links && i < job->npeers; ++i) {
        struct link *l = &job->links[i];
        link_close(l);
        free(l->blob);
    }
    free(job->links);
    job->links = NULL;
}

static void ep_error(void *arg, ucp_ep_h ep, ucs_status_t status)
{
    struct link *l = arg;
    (void) ep;
    if (l->state == L_UP) {
        char why[96];
        snprintf(why, sizeof(why), "UCX endpoint error: %s", ucs_status_string(status));
        link_lost(l, why);
    }
}

static void link_start(struct link *l)
{
    struct job *job = l->job;
    const struct peer *p = find_peer(job, l->host);
    char err[160];
    l->attempts++;
    l->retry_at = 0;
    struct conn *c = p ? peer_connect(job, p, true, err, sizeof(err)) : NULL;
    if (!c) {
        logf_("job=%s router link to host %u (%s): connect failed: %s", job->id, l->host, l->where,
              p ? err : "no peer");
        l->state = L_NONE;
        l->retry_at = now_ms() + LINK_RETRY_MS;
        return;
    }
    c->link = l;
    l->conn = c;
    l->state = L_CONNECTING;
}

void router_link_accepted(struct conn *c)
{
    struct job *job = c->job;
    if (!ucx_start()) {
        conn_close(c);
        return;
    }
    struct link *l = c->link ? c->link : job_link(job, c->peer_host);
    if (!l || l->host == job->host) {
        logf_("job=%s peer=%s: router link for host %u refused: not a peer host", job->id, c->where, c->peer_host);
        c->link = NULL;
        conn_close(c);
        return;
    }
    if (l->conn && l->conn != c) {
        /* A newer link from the same host (its agent retried or restarted): it replaces ours. */
        struct conn *old = l->conn;
        old->link = NULL;
        l->conn = NULL;
        conn_close(old);
        ep_close(l);
    }
    c->link = l;
    c->is_link = true;
    l->conn = c;
    l->state = L_EXCHANGING;
    if (c->kind == K_IN) {
        g.inbound--; /* no longer a handshake in progress */
    }
    c->kind = K_LINK;
    c->in_len = 0;
    c->deadline = now_ms() + HANDSHAKE_MS;
    conn_events(c, EPOLLIN);
    uint8_t head[FF_LINK_BLOB_HEADER];
    ff_put32(head, FF_LINK_BLOB_MAGIC);
    ff_put32(head + 4, (uint32_t) R.address_len);
    ff_put32(head + 8, (uint32_t) (job->token >> 32));
    ff_put32(head + 12, (uint32_t) job->token);
    struct iovec iov[2] = {{head, sizeof(head)}, {R.address, R.address_len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    /* A fresh connection's send buffer takes the whole blob (<= 8 KiB + 16). */
    if (sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t) (sizeof(head) + R.address_len)) {
        logf_("job=%s router link to host %u (%s): sending our address failed", job->id, l->host, c->where);
        conn_close(c);
        return;
    }
    free(l->blob);
    l->blob = malloc(FF_LINK_BLOB_HEADER + FF_LINK_ADDRESS_MAX);
    l->blob_len = 0;
    if (!l->blob) {
        conn_close(c);
    }
}

void router_link_event(struct conn *c)
{
    struct link *l = c->link;
    if (!l) {
        conn_close(c);
        return;
    }
    if (l->state == L_UP) {
        char buf[64];
        const ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            link_lost(l, "the peer agent closed the link (it died or removed the job)");
        } else if (n > 0) {
            link_lost(l, "the peer agent sent data on the link after the handshake");
        }
        return;
    }
    size_t want = FF_LINK_BLOB_HEADER;
    if (l->blob_len >= FF_LINK_BLOB_HEADER) {
        want += ff_get32(l->blob + 4);
    }
    const ssize_t n = recv(c->fd, l->blob + l->blob_len, want - l->blob_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        logf_("job=%s router link to host %u (%s): closed during the address exchange", l->job->id, l->host, c->where);
        conn_close(c);
        return;
    }
    l->blob_len += (size_t) n;
    if (l->blob_len == FF_LINK_BLOB_HEADER && (ff_get32(l->blob) != FF_LINK_BLOB_MAGIC || ff_get32(l->blob + 4) == 0 ||
                                               ff_get32(l->blob + 4) > FF_LINK_ADDRESS_MAX)) {
        logf_("job=%s router link to host %u (%s): malformed address message", l->job->id, l->host, c->where);
        conn_close(c);
        return;
    }
    if (l->blob_len < FF_LINK_BLOB_HEADER || l->blob_len < FF_LINK_BLOB_HEADER + ff_get32(l->blob + 4)) {
        return;
    }
    l->remote_token = (uint64_t) ff_get32(l->blob + 8) << 32 | ff_get32(l->blob + 12);
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                                        UCP_EP_PARAM_FIELD_ERR_HANDLER,
                          .address = (const ucp_address_t *) (l->blob + FF_LINK_BLOB_HEADER),
                          .err_mode = UCP_ERR_HANDLING_MODE_PEER,
                          .err_handler = {.cb = ep_error, .arg = l}};
    const ucs_status_t st = ucp_ep_create(R.worker, &ep, &l->ep);
    if (st != UCS_OK) {
        l->ep = NULL;
        logf_("job=%s router link to host %u (%s): UCX endpoint: %s", l->job->id, l->host, c->where,
              ucs_status_string(st));
        conn_close(c);
        return;
    }
    l->state = L_UP;
    l->attempts = 0;
    c->deadline = 0;
    logf_("job=%s router link to host %u (%s) up", l->job->id, l->host, l->where);
}

void router_link_closed(struct conn *c)
{
    struct link *l = c->link;
    c->link = NULL;
    if (!l || l->conn != c) {
        return;
    }
    l->conn = NULL;
    if (l->state == L_UP) {
        link_lost(l, "the peer agent closed the link (it died or removed the job)");
        return;
    }
    if (l->state == L_DEAD) {
        return;
    }
    ep_close(l);
    /* The handshake or the address exchange failed. The initiator retries for a while (the peer may not
     * have the job yet); then the job cannot use this link. */
    if (l->host > l->job->host && l->attempts < LINK_ATTEMPTS) {
        l->state = L_NONE;
        l->retry_at = now_ms() + LINK_RETRY_MS;
    } else if (l->host > l->job->host) {
        link_lost(l, "the peer agent could not be reached or authenticated (its log says why)");
    } else {
        l->state = L_NONE; /* the peer initiates; it retries */
    }
}

uint64_t router_next_deadline(void)
{
    uint64_t next = 0;
    for (int i = 0; i < MAX_JOBS; ++i) {
        struct job *job = g.jobs[i];
        for (unsigned k = 0; job && job->links && k < job->npeers; ++k) {
            const uint64_t t = job->links[k].retry_at;
            if (t && (!next || t < next)) {
                next = t;
            }
        }
    }
    return next;
}

void router_timers(uint64_t now)
{
    for (int i = 0; i < MAX_JOBS; ++i) {
        struct job *job = g.jobs[i];
        for (unsigned k = 0; job && job->links && k < job->npeers; ++k) {
            struct link *l = &job->links[k];
            if (l->retry_at && l->retry_at <= now && l->state == L_NONE) {
                link_start(l);
            }
        }
    }
}

/* ---- data ------------------------------------------------------------------------------------------ */

static void send_done(void *request, ucs_status_t status, void *user_data)
{
    struct inflight *f = user_data;
    f->done = true;
    if (status != UCS_OK && f->route->conn) {
        logf_("router: send to owner %016llx failed: %s", (unsigned long long) f->hdr.dst_owner,
              ucs_status_string(status));
    }
    ucp_request_free(request);
    retire(f->route);
}

static bool route_pump(struct route *r)
{
    bool moved = false;
    r->waiting_link = false;
    while (r->fl_count < MAX_INFLIGHT && !r->closing) {
        ff_ring_record_t rec;
        if (!ff_ring_peek(&r->up, &rec)) {
            if (r->up.broken) {
                route_fail(r, "its up ring holds a record header no freeflow rank writes");
            }
            break;
        }
        ff_route_up_hdr_t uh;
        if (rec.len < sizeof(uh)) {
            route_fail(r, "a record in its up ring is shorter than the routing header");
            break;
        }
        memcpy(&uh, rec.data, sizeof(uh));
        struct link *l = job_link(r->job, uh.dst_host);
        if (!l || uh.dst_host == r->job->host) {
            route_fail(r, "a record is addressed to a host that is not another host of the job");
            break;
        }
        if (l->state != L_UP) {
            if (l->state == L_DEAD) {
                route_fail(r, "a record is addressed to a host whose link is lost");
                break;
            }
            if (l->state == L_NONE && l->host > r->job->host && !l->retry_at) {
                l->retry_at = now_ms();
            }
            r->waiting_link = true;
            break;
        }
        struct inflight *f = &r->fl[(r->fl_head + r->fl_count) % MAX_INFLIGHT];
        f->route = r;
        f->hdr =
            (struct am_hdr){.token = l->remote_token, .src_owner = r->owner, .dst_owner = uh.dst_owner, .tag = rec.tag};
        f->done = false;
        const uint32_t len = rec.len - (uint32_t) sizeof(uh);
        ff_ring_consume(&r->up); /* our private position only: the shared tail waits for completion */
        f->end_pos = r->up.pos;
        r->fl_count++;
        r->msgs_up++;
        r->bytes_up += len;
        ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
                                 .cb.send = send_done,
                                 .user_data = f};
        ucs_status_ptr_t sp =
            ucp_am_send_nbx(l->ep, AM_ID, &f->hdr, sizeof(f->hdr), (uint8_t *) rec.data + sizeof(uh), len, &p);
        if (sp == NULL) {
            f->done = true;
        } else if (UCS_PTR_IS_ERR(sp)) {
            f->done = true;
            char why[96];
            snprintf(why, sizeof(why), "UCX send: %s", ucs_status_string(UCS_PTR_STATUS(sp)));
            link_lost(l, why);
        }
        moved = true;
    }
    retire(r);
    return moved;
}

static void recv_done(void *request, ucs_status_t status, size_t length, void *user_data)
{
    struct delivery *d = user_data;
    struct route *r = d->route;
    const uint32_t total = (uint32_t) sizeof(ff_route_down_hdr_t) + d->len;
    if (!r->closing) {
        if (status == UCS_OK && length == d->len) {
            ff_ring_commit(&r->down, d->slot, total, total, d->tag);
            r->msgs_down++;
            r->bytes_down += d->len;
        } else {
            ff_ring_cancel(&r->down, d->slot, total);
            route_fail(r, "a rendezvous receive from a peer agent failed");
        }
    }
    r->receiving--;
    ucp_request_free(request);
    free(d);
}

/* Writes one message into the rank's down ring, or starts receiving it there. False when the ring has
 * no room (the caller keeps it). `data` is the eager payload (NULL for rendezvous). */
static bool deliver(struct route *r, struct delivery *d, const void *data)
{
    const uint32_t total = (uint32_t) sizeof(ff_route_down_hdr_t) + d->len;
    uint8_t *slot =
        ff_ring_reserve_placed(&r->down, total, d->len >= EAGER_ALIGN_MIN, (uint32_t) sizeof(ff_route_down_hdr_t));
    if (!slot) {
        if (r->down.broken) {
            route_fail(r, "its down ring's consumer position is impossible (overwritten)");
            return true; /* dropped: the route is gone */
        }
        return false;
    }
    const ff_route_down_hdr_t dh = {.src_owner = d->src_owner};
    memcpy(slot, &dh, sizeof(dh));
    if (!d->rndv) {
        ff_copy(slot + sizeof(dh), data, d->len);
        ff_ring_commit(&r->down, slot, total, total, d->tag);
        r->msgs_down++;
        r->bytes_down += d->len;
        return true;
    }
    struct delivery *rd = malloc(sizeof(*rd));
    if (!rd) {
        ff_ring_cancel(&r->down, slot, total);
        route_fail(r, "out of memory");
        return true;
    }
    *rd = *d;
    rd->slot = slot;
    rd->desc = NULL;
    rd->copy = NULL;
    ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
                             .cb.recv_am = recv_done,
                             .user_data = rd};
    /* Rendezvous: UCX fetches the data straight into the rank's ring (no copy in the agent). */
    ucs_status_ptr_t sp = ucp_am_recv_data_nbx(R.worker, d->desc, slot + sizeof(dh), d->len, &p);
    d->desc = NULL; /* UCX owns it now, whatever the outcome */
    if (sp == NULL) {
        ff_ring_commit(&r->down, slot, total, total, d->tag);
        r->msgs_down++;
        r->bytes_down += d->len;
        free(rd);
    } else if (UCS_PTR_IS_ERR(sp)) {
        ff_ring_cancel(&r->down, slot, total);
        free(rd);
        route_fail(r, "a rendezvous receive could not start");
    } else {
        r->receiving++;
    }
    return true;
}

static void want_room(struct route *r, bool want)
{
    r->wants_room = want;
    atomic_store_explicit(&r->shm->agent_wants_room, want ? 1u : 0u, memory_order_relaxed);
    /* seq_cst: the flag is visible before we look at the tail again (the rank: tail, fence, flag) */
    atomic_thread_fence(memory_order_seq_cst);
}

static bool drain_backlog(struct route *r)
{
    bool moved = false;
    for (int pass = 0; pass < 2 && r->backlog && !r->closing; ++pass) {
        while (r->backlog && !r->closing) {
            struct delivery *d = r->backlog;
            const void *data = d->copy ? d->copy : d->desc;
            if (!deliver(r, d, d->rndv ? NULL : data)) {
                break;
            }
            r->backlog = d->next;
            if (!r->backlog) {
                r->backlog_tail = NULL;
            }
            if (!d->rndv) {
                r->backlog_bytes -= d->len;
            }
            if (!d->rndv && d->desc) {
                ucp_am_data_release(R.worker, d->desc);
            }
            free(d->copy);
            free(d);
            moved = true;
        }
        if (r->closing) {
            return moved;
        }
        /* First pass left some: ask for a doorbell, then look once more (the rank may have freed room
         * between our check and the flag). */
        want_room(r, r->backlog != NULL);
    }
    return moved;
}

static struct route *route_by_token(uint64_t token, uint64_t owner)
{
    for (int i = 0; i < MAX_JOBS; ++i) {
        if (g.jobs[i] && g.jobs[i]->token == token) {
            return find_route(g.jobs[i], owner);
        }
    }
    return NULL;
}

static ucs_status_t am_recv(void *arg, const void *header, size_t header_length, void *data, size_t length,
                            const ucp_am_recv_param_t *param)
{
    (void) arg;
    const bool rndv = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV;
    const bool persistent = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_DATA;
    struct am_hdr h;
    struct route *r = NULL;
    if (header_length == sizeof(h)) {
        memcpy(&h, header, sizeof(h));
        r = route_by_token(h.token, h.dst_owner);
    }
    if (!r || length > FF_ROUTE_MAX_PAYLOAD - sizeof(ff_route_down_hdr_t) || h.tag > 255) {
        if (R.drops_logged < 16) {
            R.drops_logged++;
            logf_("router: dropped a message of %zu bytes for owner %016llx: %s", length,
                  header_length == sizeof(h) ? (unsigned long long) h.dst_owner : 0ull,
                  !r ? "no such job or route here (ended, or not ours)" : "too large");
        }
        return UCS_OK; /* rendezvous: UCX tells the sender it was not taken */
    }
    R.last_movement_ns = 0; /* see router_poll: something arrived */
    struct delivery d = {.route = r,
                         .src_owner = h.src_owner,
                         .len = (uint32_t) length,
                         .tag = (uint8_t) h.tag,
                         .rndv = rndv,
                         .desc = rndv ? data : NULL};
    if (!r->backlog && deliver(r, &d, rndv ? NULL : data)) {
        return rndv ? UCS_INPROGRESS : UCS_OK;
    }
    if (!rndv && r->backlog_bytes + length > MAX_BACKLOG_BYTES) {
        route_fail(r, "the rank does not take its messages: 64 MiB wait for room in its ring");
        return UCS_OK;
    }
    struct delivery *q = malloc(sizeof(*q));
    if (!q) {
        route_fail(r, "out of memory queueing data for a full ring");
        return UCS_OK;
    }
    *q = d;
    if (!rndv) {
        if (persistent) {
            q->desc = data; /* UCX keeps it until ucp_am_data_release */
        } else {
            q->copy = malloc(length ? length : 1);
            if (!q->copy) {
                free(q);
                route_fail(r, "out of memory queueing data for a full ring");
                return UCS_OK;
            }
            memcpy(q->copy, data, length);
        }
    }
    if (!rndv) {
        r->backlog_bytes += length;
    }
    if (r->backlog_tail) {
        r->backlog_tail->next = q;
    } else {
        r->backlog = q;
    }
    r->backlog_tail = q;
    want_room(r, true);
    return q->desc ? UCS_INPROGRESS : UCS_OK;
}

bool router_poll(void)
{
    if (!R.worker) {
        return false;
    }
    bool moved = false;
    while (ucp_worker_progress(R.worker)) {
        moved = true;
    }
    for (int i = 0; i < MAX_JOBS; ++i) {
        struct job *job = g.jobs[i];
        if (!job) {
            continue;
        }
        for (struct route *r = job->routes; r; r = r->next) {
            /* A route closed while we walk leads into the closing list: stop there (next pass goes on). */
            if (r->closing) {
                break;
            }
            if (r->backlog) {
                moved |= drain_backlog(r);
            }
            moved |= route_pump(r);
        }
    }
    while (ucp_worker_progress(R.worker)) {
        moved = true;
    }
    maybe_free_closing();
    const uint64_t t = now_ns();
    if (moved || R.last_movement_ns == 0) {
        R.last_movement_ns = t;
        return true;
    }
    if (t - R.last_movement_ns < (uint64_t) router_spin_us * 1000u) {
        sched_yield(); /* spinning: let the ranks (or the other agent) have the CPU first */
        return true;
    }
    return false;
}

static void flag_sleeping(uint32_t v)
{
    for (int i = 0; i < MAX_JOBS; ++i) {
        for (struct route *r = g.jobs[i] ? g.jobs[i]->routes : NULL; r; r = r->next) {
            atomic_store_explicit(&r->shm->agent_sleeping, v, memory_order_relaxed);
        }
    }
}

bool router_prepare_sleep(void)
{
    if (!R.worker) {
        return true;
    }
    flag_sleeping(1);
    /* seq_cst: the flags are visible before we look at the rings (ranks: commit, fence, flag) */
    atomic_thread_fence(memory_order_seq_cst);
    for (int i = 0; i < MAX_JOBS; ++i) {
        for (struct route *r = g.jobs[i] ? g.jobs[i]->routes : NULL; r; r = r->next) {
            ff_ring_record_t rec;
            const bool pending_up = !r->waiting_link && r->fl_count < MAX_INFLIGHT && ff_ring_peek(&r->up, &rec);
            /* Our own copy, not the shared word: a rank clearing that word must not keep us awake. */
            const bool pending_down = r->backlog && !r->wants_room;
            if (pending_up || pending_down) {
                flag_sleeping(0);
                return false;
            }
        }
    }
    if (ucp_worker_arm(R.worker) != UCS_OK) {
        flag_sleeping(0);
        return false; /* UCX has events to progress first */
    }
    return true;
}

void router_woke(void)
{
    flag_sleeping(0);
    R.last_movement_ns = 0; /* spin a little after every wake-up: more usually follows */
}

void router_fini(void)
{
    maybe_free_closing();
    for (int spins = 0; R.closing && spins < 1000; ++spins) {
        ucp_worker_progress(R.worker);
        maybe_free_closing();
    }
    if (R.worker) {
        ucp_worker_destroy(R.worker);
    }
    if (R.context) {
        ucp_cleanup(R.context);
    }
    free(R.address);
}
