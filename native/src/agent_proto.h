/* Private to the core and ffagent: the wire formats of the agent protocols (docs/agent.md). */
#ifndef FREEFLOW_AGENT_PROTO_H
#define FREEFLOW_AGENT_PROTO_H

#include "freeflow.h"

#include <stdint.h>

#define FF_AGENT_SOCKET_NAME "agent.sock"

/* ---- Job socket (<shared dir>/agent.sock): AF_UNIX SOCK_SEQPACKET, one fixed-size message per packet,
 * host byte order (both ends are on one host). SEQPACKET keeps message boundaries and attaches a passed
 * descriptor to exactly the message that names it. */
#define FF_JOB_MAGIC   0x4a414646u /* "FFAJ" little-endian */
#define FF_JOB_VERSION 1u

enum {
    FF_JOB_REGISTER = 1,   /* rank -> agent: key, owner_id. Reply: FF_JOB_REPLY. Then pushes follow. */
    FF_JOB_CONNECT = 2,    /* rank -> agent (own connection): key, owner_id, peer_owner_id, peer_host */
    FF_JOB_REPLY = 3,      /* agent -> rank: reason; with a descriptor for an accepted CONNECT */
    FF_JOB_INCOMING = 4,   /* agent -> rank (registration): descriptor, peer_owner_id, peer_host */
    FF_JOB_ROUTE_OPEN = 5, /* rank -> agent (own connection): key, owner_id, a sealed memfd (ff_route_shm_t).
                            * Reply: FF_JOB_REPLY. The connection then carries 1-byte doorbells, rank -> agent. */
};

typedef struct ff_job_msg {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t reason; /* ff_agent_refusal_t in replies */
    uint32_t peer_host;
    uint64_t owner_id;
    uint64_t peer_owner_id;
    uint8_t key[16];
    uint8_t reserved[16];
} ff_job_msg_t;

_Static_assert(sizeof(ff_job_msg_t) == 64, "job socket messages are 64 bytes");

/* ---- Agent to agent over TCP (underlay): fixed 136-byte messages, network byte order. */
#define FF_PEER_MAGIC      0x46464132u /* "FFA2" */
#define FF_PEER_VERSION    1u
#define FF_PEER_MSG_SIZE   136u
#define FF_PEER_JOB_ID_MAX 32u
#define FF_PEER_NONCE_SIZE 32u

enum {
    FF_PEER_HELLO = 1,     /* initiator: job, hosts, owners, nonce_i */
    FF_PEER_CHALLENGE = 2, /* responder: nonce_r, mac_r = HMAC(key, "ffagent-1 responder" | hello | nonce_r) */
    FF_PEER_AUTH = 3,      /* initiator: mac_i = HMAC(key, "ffagent-1 initiator" | hello | nonce_r) */
    FF_PEER_ACCEPT = 4,    /* responder: the target rank gets the other end next; data may follow */
    FF_PEER_REFUSE = 5,    /* either side: reason; then close */
    FF_PEER_LINK = 6,      /* initiator, instead of HELLO: a router link for the job (owners 0); after ACCEPT
                            * both sides write an ff_link_blob and keep the connection as the link's liveness */
    FF_PEER_PROBE = 7,     /* initiator, instead of HELLO: reachability before the plan (owners 0); the
                            * handshake runs as for HELLO, ACCEPT ends it and both sides close */
};

/* After ACCEPT of a FF_PEER_LINK: magic u32, address length u32, token u64 (network byte order), then the
 * sender's ucp worker address. The token is what the receiver puts in the header of every active message
 * to the sender, which finds the job by it; it is random and crosses only this authenticated connection. */
#define FF_LINK_BLOB_MAGIC  0x46465558u /* "FFUX" */
#define FF_LINK_BLOB_HEADER 16u
#define FF_LINK_ADDRESS_MAX 8192u

typedef struct ff_peer_msg {
    uint16_t type;
    uint32_t reason;
    uint32_t from_host;
    uint32_t to_host;
    uint64_t src_owner;
    uint64_t dst_owner;
    char job[FF_PEER_JOB_ID_MAX + 1];
    uint8_t nonce[FF_PEER_NONCE_SIZE];
    uint8_t mac[FF_SHA256_SIZE];
} ff_peer_msg_t;

/* Layout: magic u32, version u16, type u16, reason u32, from_host u32, to_host u32, zero u32,
 * src_owner u64, dst_owner u64, job[32] (NUL-padded), nonce[32], mac[32]. */
static inline void ff_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}
static inline uint32_t ff_get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static inline void ff_peer_msg_encode(const ff_peer_msg_t *m, uint8_t out[FF_PEER_MSG_SIZE])
{
    for (unsigned i = 0; i < FF_PEER_MSG_SIZE; ++i) {
        out[i] = 0;
    }
    ff_put32(out, FF_PEER_MAGIC);
    out[4] = 0;
    out[5] = FF_PEER_VERSION;
    out[6] = (uint8_t) (m->type >> 8);
    out[7] = (uint8_t) m->type;
    ff_put32(out + 8, m->reason);
    ff_put32(out + 12, m->from_host);
    ff_put32(out + 16, m->to_host);
    ff_put32(out + 24, (uint32_t) (m->src_owner >> 32));
    ff_put32(out + 28, (uint32_t) m->src_owner);
    ff_put32(out + 32, (uint32_t) (m->dst_owner >> 32));
    ff_put32(out + 36, (uint32_t) m->dst_owner);
    for (unsigned i = 0; i < FF_PEER_JOB_ID_MAX && m->job[i]; ++i) {
        out[40 + i] = (uint8_t) m->job[i];
    }
    for (unsigned i = 0; i < FF_PEER_NONCE_SIZE; ++i) {
        out[72 + i] = m->nonce[i];
        out[104 + i] = m->mac[i];
    }
}

/* False for a wrong magic or version. */
static inline bool ff_peer_msg_decode(const uint8_t in[FF_PEER_MSG_SIZE], ff_peer_msg_t *m)
{
    if (ff_get32(in) != FF_PEER_MAGIC || in[4] != 0 || in[5] != FF_PEER_VERSION) {
        return false;
    }
    m->type = (uint16_t) (in[6] << 8 | in[7]);
    m->reason = ff_get32(in + 8);
    m->from_host = ff_get32(in + 12);
    m->to_host = ff_get32(in + 16);
    m->src_owner = (uint64_t) ff_get32(in + 24) << 32 | ff_get32(in + 28);
    m->dst_owner = (uint64_t) ff_get32(in + 32) << 32 | ff_get32(in + 36);
    for (unsigned i = 0; i < FF_PEER_JOB_ID_MAX; ++i) {
        m->job[i] = (char) in[40 + i];
    }
    m->job[FF_PEER_JOB_ID_MAX] = 0;
    for (unsigned i = 0; i < FF_PEER_NONCE_SIZE; ++i) {
        m->nonce[i] = in[72 + i];
        m->mac[i] = in[104 + i];
    }
    return true;
}

/* The MACs of the handshake. `role` is "responder" or "initiator", so one side's MAC can never be
 * reflected back as the other's; the encoded hello carries the initiator's nonce and binds the job, the
 * hosts and the owners; nonce_r is the responder's fresh nonce. */
static inline void ff_peer_mac(const ff_job_key_t *key, const char *role, const uint8_t hello[FF_PEER_MSG_SIZE],
                               const uint8_t nonce_r[FF_PEER_NONCE_SIZE], uint8_t mac[FF_SHA256_SIZE])
{
    ff_hmac_sha256_t ctx;
    ff_hmac_sha256_init(&ctx, key->bytes, sizeof(key->bytes));
    static const char prefix[] = "ffagent-1 ";
    ff_hmac_sha256_update(&ctx, prefix, sizeof(prefix) - 1);
    unsigned n = 0;
    while (role[n]) {
        ++n;
    }
    ff_hmac_sha256_update(&ctx, role, n);
    ff_hmac_sha256_update(&ctx, hello, FF_PEER_MSG_SIZE);
    ff_hmac_sha256_update(&ctx, nonce_r, FF_PEER_NONCE_SIZE);
    ff_hmac_sha256_final(&ctx, mac);
}

/* ---- The `r` plane: a rank's shared memory with its host's agent (docs/agent.md, "The `r` plane").
 *
 * One memfd per rank, made by the rank, sized FF_ROUTE_BYTES and sealed against shrinking and growing
 * (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) before it is passed to the agent, so the agent's mapping can
 * never be truncated under it (SIGBUS). No file is created in the shared directory: nothing can be
 * planted, and nothing is left when the processes end. Two rings (the core's ff_ring_* records):
 *   up   (rank -> agent): record = ff_route_up_hdr_t + data; tag = the BTL's tag;
 *   down (agent -> rank): record = ff_route_down_hdr_t + data.
 * The agent copies the layout values from its own constants, never from the header (it only checks that
 * the header says the same), and bounds-checks every record header (ff_ring_peek). */
#define FF_ROUTE_MAGIC        0x54524646u /* "FFRT" */
#define FF_ROUTE_VERSION      1u
#define FF_ROUTE_RING_SIZE    (4u << 20)
#define FF_ROUTE_HEADER_BYTES 4096u
#define FF_ROUTE_UP_OFFSET    FF_ROUTE_HEADER_BYTES
#define FF_ROUTE_DOWN_OFFSET  (FF_ROUTE_HEADER_BYTES + FF_ROUTE_RING_SIZE)
#define FF_ROUTE_BYTES        (FF_ROUTE_HEADER_BYTES + 2u * FF_ROUTE_RING_SIZE)
#define FF_ROUTE_MAX_PAYLOAD  (FF_ROUTE_RING_SIZE / 4u)

typedef struct ff_route_up_hdr {
    uint64_t dst_owner;
    uint32_t dst_host;
    uint32_t zero;
} ff_route_up_hdr_t;

typedef struct ff_route_down_hdr {
    uint64_t src_owner;
} ff_route_down_hdr_t;

typedef struct ff_route_shm {
    uint32_t magic;
    uint32_t version;
    uint8_t key[16];
    uint64_t owner_id;
    uint32_t ring_size;
    uint32_t header_bytes;
    uint8_t pad0[64 - 40];
    _Atomic uint64_t up_tail; /* written by the agent: bytes of the up ring it released */
    uint8_t pad1[56];
    _Atomic uint64_t down_tail; /* written by the rank: bytes of the down ring it released */
    uint8_t pad2[56];
    /* Written by the agent. sleeping: it is about to block and wants a doorbell for the next up record;
     * wants_room: it holds data for this rank that did not fit and wants a doorbell when the rank frees
     * room. Each side stores, then a seq_cst fence, then loads the other side's word (Dekker), so that
     * either the agent sees the new record / freed room or the rank sees the flag. */
    _Atomic uint32_t agent_sleeping;
    _Atomic uint32_t agent_wants_room;
    uint8_t pad3[56];
} ff_route_shm_t;

_Static_assert(sizeof(ff_route_shm_t) <= FF_ROUTE_HEADER_BYTES, "route header fits its page");

/* Core-internal (agent_client.c, used by agent_route.c). */
ff_status_t ff_agent_route_request(ff_agent_conn_t *conn, int memfd, int *route_fd, ff_agent_refusal_t *reason,
                                   char *error, size_t error_len);
const char *ff_agent_socket_path(const ff_agent_conn_t *conn);
uint64_t ff_agent_owner_id(const ff_agent_conn_t *conn);
const ff_job_key_t *ff_agent_job_key(const ff_agent_conn_t *conn);

#endif
