/* Shared between ffagent.c (control, job sockets, agent-to-agent handshakes) and ffagent_router.c (the
 * `r` plane): the agent's connections, jobs and global state. Private to native/agent/. */
#ifndef FFAGENT_H
#define FFAGENT_H

#include "agent_proto.h"
#include "freeflow.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Bounds: everything the agent holds is limited, so a hostile or broken client cannot exhaust it. */
#define MAX_JOBS               256
#define MAX_PEERS              256
#define MAX_RANKS_PER_JOB      1024
#define MAX_PENDING_PER_JOB    64
#define MAX_INBOUND_HANDSHAKES 256
#define MAX_CONTROL_CONNS      32
#define MAX_CONNS              8192 /* every socket the agent holds, listeners included */
#define CTL_LINE_MAX           8192
#define HANDSHAKE_MS           3000 /* connect + authenticate with a peer agent */
#define FIRST_MESSAGE_MS       5000

enum kind {
    K_SIGNAL,
    K_CTL_LISTEN,
    K_CTL,
    K_PEER_LISTEN,
    K_JOB_LISTEN,
    K_JOB_NEW, /* accepted on agent.sock, first message not read yet */
    K_RANK,    /* a registered rank: pushes go here */
    K_REQUEST, /* a rank waiting for a channel; partner is its K_OUT */
    K_OUT,     /* our TCP connection to a peer agent, in handshake */
    K_IN,      /* a peer agent's TCP connection to us, in handshake */
    K_ROUTE,   /* a rank's router connection: doorbells; its shared memory is conn->route */
    K_LINK,    /* an authenticated TCP connection to a peer agent carrying a router link (liveness) */
    K_UCP,     /* the UCX worker's event descriptor */
};

enum { S_CONNECTING, S_WAIT_CHALLENGE, S_WAIT_ACCEPT, S_WAIT_HELLO, S_WAIT_AUTH };

struct job;

struct conn {
    enum kind kind;
    int fd;
    bool dead;
    struct job *job;
    struct conn *prev, *next; /* all live connections */
    struct conn *grave;       /* freed after the current batch of events */
    uint64_t deadline;        /* ms, 0: none */
    /* K_JOB_*: peer credentials */
    uid_t uid;
    pid_t pid;
    uint64_t owner;
    /* K_CTL */
    char *line;
    size_t line_len;
    /* K_REQUEST / K_OUT / K_IN */
    struct conn *partner;
    int state;
    uint64_t peer_owner;
    uint32_t peer_host;
    uint8_t in[FF_PEER_MSG_SIZE];
    size_t in_len;
    uint8_t hello[FF_PEER_MSG_SIZE];
    uint8_t nonce[FF_PEER_NONCE_SIZE];
    char where[64]; /* "10.250.0.2:7470" */
    /* router: K_ROUTE's rings; K_OUT/K_IN/K_LINK of a link */
    struct route *route;
    struct link *link;
    bool is_link;
    /* probe (the control command `probe`): K_OUT/K_IN of a FF_PEER_PROBE handshake; a K_OUT reports its
     * outcome to probe_ctl when it closes. K_CTL: the answer being collected, NULL when none. */
    bool is_probe;
    ff_agent_refusal_t probe_reason;
    struct conn *probe_ctl;
    struct probe_answer *probe;
};

struct peer {
    uint32_t index;
    struct sockaddr_in addr;
};

struct job {
    char id[FF_PEER_JOB_ID_MAX + 1];
    ff_job_key_t key;
    char dir[96]; /* <dir>/agent.sock must fit a unix socket address (108 bytes) on the client side */
    int dirfd;
    uid_t uid;
    gid_t gid;
    uint32_t host;
    struct peer peers[MAX_PEERS];
    unsigned npeers;
    struct conn *listener;
    struct conn *lease; /* control connection whose end removes the job (ffrun's lifetime), or NULL */
    unsigned ranks, pending;
    /* router (ffagent_router.c) */
    uint64_t token;     /* peers put it in every active message to us; random, told only over links */
    struct link *links; /* one per entry of peers[], made at the first route of the job */
    struct route *routes;
};

struct agent_state {
    int epfd;
    FILE *log;
    struct conn *conns;
    struct conn *grave;
    struct job *jobs[MAX_JOBS];
    char control_path[108];
    char pid_file[4096];
    struct sockaddr_in listen_addr;
    unsigned inbound, controls, nconns;
    int spare_fd; /* held open so that, out of descriptors, a connection can still be accepted and shed */
    bool stop;
};
extern struct agent_state g;

void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ms(void);
struct conn *conn_add(enum kind kind, int fd, uint32_t events);
void conn_events(struct conn *c, uint32_t events);
void conn_close(struct conn *c);
const struct peer *find_peer(const struct job *job, uint32_t index);
bool job_send(struct conn *c, uint16_t type, ff_agent_refusal_t reason, int fd, uint64_t peer_owner,
              uint32_t peer_host);
void job_refuse(struct conn *c, ff_agent_refusal_t reason, const char *detail);
void addr_format(const struct sockaddr_in *a, char *buf, size_t len);
/* Starts an authenticated connection to a peer agent (K_OUT); with `link` set it is a router link. */
struct conn *peer_connect(struct job *job, const struct peer *p, bool link, char *err, size_t errlen);

/* ffagent_router.c */
extern unsigned router_spin_us; /* --spin-us: polling after the last movement before blocking */
bool router_init(char *err, size_t errlen);
void router_fini(void);
void router_job_added(struct job *job);
void router_job_removed(struct job *job);
void router_route_open(struct conn *c, int memfd);
void router_route_event(struct conn *c);
void router_route_closed(struct conn *c);
void router_link_accepted(struct conn *c); /* a link's handshake ended with ACCEPT: exchange addresses */
void router_link_event(struct conn *c);    /* K_LINK readable */
void router_link_closed(struct conn *c);   /* a link's connection closed (or its handshake failed) */
/* One pass of forwarding; true if anything moved. */
bool router_poll(void);
/* Before blocking: true if the agent may block now (the UCX worker is armed, every ring empty and
 * every route flagged for doorbells). */
bool router_prepare_sleep(void);
void router_woke(void);
/* Earliest router deadline in ms (link retries), 0 if none. */
uint64_t router_next_deadline(void);
void router_timers(uint64_t now);

#endif
