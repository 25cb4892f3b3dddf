/* The rank's side of the `r` plane: a sealed memfd with two rings, shared with the host's ffagent. */
#define _GNU_SOURCE
#include "agent_proto.h"
#include "freeflow.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct ff_route {
    ff_route_shm_t *shm;
    int fd; /* the doorbell connection to the agent */
    ff_ring_tx_t up;
    ff_ring_rx_t down;
    bool down_pending;    /* a peeked record not consumed yet */
    unsigned yield_after; /* empty polling passes before yielding the CPU; 0: never */
    unsigned empty_passes;
    char where[120]; /* the agent's job socket, to name it in errors */
    char error[512];
};

uint32_t ff_route_max_message(void)
{
    return FF_ROUTE_MAX_PAYLOAD - (uint32_t) sizeof(ff_route_up_hdr_t);
}

ff_status_t ff_route_open(ff_agent_conn_t *conn, ff_route_t **out, ff_agent_refusal_t *reason)
{
    if (!conn || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    ff_route_t *r = calloc(1, sizeof(*r));
    if (!r) {
        return FF_ERR_NO_MEMORY;
    }
    r->fd = -1;
    const int memfd = memfd_create("freeflow-route", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    void *map = MAP_FAILED;
    ff_status_t status = FF_OK;
    /* Sealed before the agent sees it: the agent maps it too, and a file that could shrink under a
     * mapping would let this process crash the agent with SIGBUS. */
    if (memfd < 0 || ftruncate(memfd, FF_ROUTE_BYTES) != 0 ||
        fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
        (map = mmap(NULL, FF_ROUTE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0)) == MAP_FAILED) {
        snprintf(r->error, sizeof(r->error), "freeflow router: cannot create the shared memory for the agent: %s",
                 strerror(errno));
        fprintf(stderr, "%s\n", r->error);
        status = FF_ERR_SYSTEM;
        goto fail;
    }
    r->shm = map;
    r->shm->magic = FF_ROUTE_MAGIC;
    r->shm->version = FF_ROUTE_VERSION;
    memcpy(r->shm->key, ff_agent_job_key(conn)->bytes, 16);
    r->shm->owner_id = ff_agent_owner_id(conn);
    r->shm->ring_size = FF_ROUTE_RING_SIZE;
    r->shm->header_bytes = FF_ROUTE_HEADER_BYTES;
    uint8_t *base = map;
    r->up = (ff_ring_tx_t){.data = base + FF_ROUTE_UP_OFFSET,
                           .tail = &r->shm->up_tail,
                           .size = FF_ROUTE_RING_SIZE,
                           .max_payload = FF_ROUTE_MAX_PAYLOAD};
    r->down = (ff_ring_rx_t){.data = base + FF_ROUTE_DOWN_OFFSET,
                             .tail = &r->shm->down_tail,
                             .size = FF_ROUTE_RING_SIZE,
                             .max_payload = FF_ROUTE_MAX_PAYLOAD};
    status = ff_agent_route_request(conn, memfd, &r->fd, reason, r->error, sizeof(r->error));
    if (status != FF_OK) {
        fprintf(stderr, "freeflow: %s\n", r->error);
        goto fail;
    }
    close(memfd); /* the mapping and the agent's copy keep the memory */
    const int flags = fcntl(r->fd, F_GETFL);
    fcntl(r->fd, F_SETFL, flags | O_NONBLOCK);
    snprintf(r->where, sizeof(r->where), "%s", ff_agent_socket_path(conn));
    *out = r;
    return FF_OK;
fail:
    if (map != MAP_FAILED) {
        munmap(map, FF_ROUTE_BYTES);
    }
    if (memfd >= 0) {
        close(memfd);
    }
    free(r);
    return status;
}

void *ff_route_reserve(ff_route_t *r, uint64_t dst_owner, uint32_t dst_host, uint32_t len)
{
    if (len > ff_route_max_message()) {
        return NULL;
    }
    /* Bulk payloads start on a cache line (fast copies on both sides); small ones pack densely. */
    uint8_t *p = ff_ring_reserve_placed(&r->up, (uint32_t) sizeof(ff_route_up_hdr_t) + len, len >= 1024,
                                        (uint32_t) sizeof(ff_route_up_hdr_t));
    if (!p) {
        return NULL;
    }
    const ff_route_up_hdr_t hdr = {.dst_owner = dst_owner, .dst_host = dst_host};
    memcpy(p, &hdr, sizeof(hdr));
    return p + sizeof(hdr);
}

static void doorbell(ff_route_t *r)
{
    const char bell = 1;
    /* EAGAIN: doorbells are already queued, and one wakes the agent as well as many. */
    (void) send(r->fd, &bell, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void ff_route_commit(ff_route_t *r, void *data, uint32_t reserved, uint32_t len, uint8_t tag)
{
    uint8_t *p = (uint8_t *) data - sizeof(ff_route_up_hdr_t);
    ff_ring_commit(&r->up, p, reserved + (uint32_t) sizeof(ff_route_up_hdr_t),
                   len + (uint32_t) sizeof(ff_route_up_hdr_t), tag);
    /* seq_cst fence: the commit (a release store) is ordered before the load of the agent's flag; the
     * agent stores the flag, fences, then looks at the ring (Dekker), so one of us sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->shm->agent_sleeping, memory_order_relaxed)) {
        doorbell(r);
    }
}

bool ff_route_peek(ff_route_t *r, ff_route_msg_t *msg)
{
    ff_ring_record_t rec;
    if (!ff_ring_peek(&r->down, &rec)) {
        return false;
    }
    if (rec.len < sizeof(ff_route_down_hdr_t)) {
        ff_ring_rx_break(&r->down, r->down.pos, rec.len);
        return false;
    }
    ff_route_down_hdr_t hdr;
    memcpy(&hdr, rec.data, sizeof(hdr));
    msg->data = (const uint8_t *) rec.data + sizeof(hdr);
    msg->len = rec.len - (uint32_t) sizeof(hdr);
    msg->tag = rec.tag;
    msg->src_owner = hdr.src_owner;
    return true;
}

void ff_route_consume(ff_route_t *r)
{
    ff_ring_consume(&r->down);
    atomic_thread_fence(memory_order_seq_cst); /* the tail store before the flag load: see commit */
    if (atomic_load_explicit(&r->shm->agent_wants_room, memory_order_relaxed)) {
        doorbell(r);
    }
}

bool ff_route_sent_all(ff_route_t *r)
{
    return ff_ring_tx_drained(&r->up);
}

ff_status_t ff_route_check(ff_route_t *r)
{
    if (r->down.broken || r->up.broken) {
        snprintf(r->error, sizeof(r->error),
                 "the router memory shared with the host's ffagent (%s) holds values no agent writes (%s ring): "
                 "another process of this job overwrote it",
                 r->where, r->down.broken ? "down" : "up");
        return FF_ERR_CORRUPT;
    }
    char buf[16];
    const ssize_t n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        snprintf(r->error, sizeof(r->error),
                 "the host's ffagent (%s) closed this rank's router connection: the agent died, removed this job, "
                 "or lost its link to a peer host's agent (see the agents' logs)",
                 r->where);
        errno = EPIPE;
        return FF_ERR_SYSTEM;
    }
    return FF_OK;
}

void ff_route_set_yield(ff_route_t *r, unsigned spin_passes)
{
    r->yield_after = spin_passes;
    r->empty_passes = 0;
}

bool ff_route_poll_pass(ff_route_t *r, bool moved)
{
    if (moved || r->yield_after == 0) {
        r->empty_passes = 0;
        return false;
    }
    if (r->empty_passes < r->yield_after) {
        ++r->empty_passes;
        return false;
    }
    /* With nothing else runnable here this returns at once (one syscall); with an agent runnable on
     * this CPU the agent runs now, instead of after the scheduler preempts a rank that never sleeps. */
    sched_yield();
    return true;
}

int ff_route_fd(const ff_route_t *r)
{
    return r ? r->fd : -1;
}

const char *ff_route_error(const ff_route_t *r)
{
    return r ? r->error : "no route";
}

void ff_route_close(ff_route_t *r)
{
    if (!r) {
        return;
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    munmap(r->shm, FF_ROUTE_BYTES);
    free(r);
}
