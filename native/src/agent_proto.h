/* Private to the core and ffagent: the wire formats of the agent protocols (docs/agent.md). */
#ifndef FREEFLOW_AGENT_PROTO_H
#define FREEFLOW_AGENT_PROTO_H

#include "freeflow.h"

#include <stdint.h>

#define FF_AGENT_SOCKET_NAME "agent.sock"

/* ---- Job socket (<shared dir>/agent.sock): AF_UNIX SOCK_SEQPACKET, one fixed-size message per packet,
 * host byte order (both ends are on one host). SEQPACKET keeps message boundaries and attaches a passed
 * descriptor to exactly the message that names it. */
#define FF_JOB_MAGIC 0x4a414646u /* "FFAJ" little-endian */
#define FF_JOB_VERSION 1u

enum {
    FF_JOB_REGISTER = 1, /* rank -> agent: key, owner_id. Reply: FF_JOB_REPLY. Then pushes follow. */
    FF_JOB_CONNECT = 2,  /* rank -> agent (own connection): key, owner_id, peer_owner_id, peer_host */
    FF_JOB_REPLY = 3,    /* agent -> rank: reason; with a descriptor for an accepted CONNECT */
    FF_JOB_INCOMING = 4, /* agent -> rank (registration): descriptor, peer_owner_id, peer_host */
};

typedef struct ff_job_msg {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t reason;   /* ff_agent_refusal_t in replies */
    uint32_t peer_host;
    uint64_t owner_id;
    uint64_t peer_owner_id;
    uint8_t key[16];
    uint8_t reserved[16];
} ff_job_msg_t;

_Static_assert(sizeof(ff_job_msg_t) == 64, "job socket messages are 64 bytes");

/* ---- Agent to agent over TCP (underlay): fixed 136-byte messages, network byte order. */
#define FF_PEER_MAGIC 0x46464132u /* "FFA2" */
#define FF_PEER_VERSION 1u
#define FF_PEER_MSG_SIZE 136u
#define FF_PEER_JOB_ID_MAX 32u
#define FF_PEER_NONCE_SIZE 32u

enum {
    FF_PEER_HELLO = 1,     /* initiator: job, hosts, owners, nonce_i */
    FF_PEER_CHALLENGE = 2, /* responder: nonce_r, mac_r = HMAC(key, "ffagent-1 responder" | hello | nonce_r) */
    FF_PEER_AUTH = 3,      /* initiator: mac_i = HMAC(key, "ffagent-1 initiator" | hello | nonce_r) */
    FF_PEER_ACCEPT = 4,    /* responder: the target rank gets the other end next; data may follow */
    FF_PEER_REFUSE = 5,    /* either side: reason; then close */
};

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

#endif
