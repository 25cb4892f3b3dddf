/*
 * ffagent: the per-host freeflow agent (docs/agent.md).
 *
 * One process per host, in the host's network namespace (the underlay), serving every job on the host:
 *   - a control socket (root only) through which launchers add and remove jobs;
 *   - per job, <shared dir>/agent.sock, where the job's ranks (uid checked, job key proved) register and
 *     ask for channels to ranks on other hosts;
 *   - a TCP listener on the underlay where peer agents ask to reach ranks here.
 * A channel is a TCP connection between the two agents, authenticated both ways with the job key
 * (HMAC-SHA256 challenge-response), whose two ends are then passed to the two ranks (SCM_RIGHTS). The
 * agents close their copies: data never passes through an agent.
 *
 * Single-threaded epoll loop; every socket non-blocking; the loop blocks in epoll_wait (no polling: the
 * agent moves no data, so there is nothing to spin for). Every message is a fixed size no larger than
 * 136 bytes, sent on a socket with nothing queued ahead of it, so a send completes at once or the
 * connection is treated as failed: no output buffering and no unbounded state.
 */
#define _GNU_SOURCE
#include "ff_cli.h"
#include "ffagent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct agent_state g = {.epfd = -1, .spare_fd = -1};

/* ---- logging ------------------------------------------------------------------------------------- */

void logf_(const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(g.log, "%s.%03ldZ ffagent[%d] ", stamp, ts.tv_nsec / 1000000, (int) getpid());
    va_list ap;
    va_start(ap, fmt);
    vfprintf(g.log, fmt, ap);
    va_end(ap);
    fputc('\n', g.log);
    fflush(g.log);
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* ---- connections --------------------------------------------------------------------------------- */

struct conn *conn_add(enum kind kind, int fd, uint32_t events)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    c->kind = kind;
    c->fd = fd;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        logf_("epoll_ctl add failed: %s", strerror(errno));
        close(fd);
        free(c);
        return NULL;
    }
    c->next = g.conns;
    if (g.conns) {
        g.conns->prev = c;
    }
    g.conns = c;
    g.nconns++;
    return c;
}

void conn_events(struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(g.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void job_remove(struct job *job, const char *why);
static void probe_report(struct conn *out);

/* Closes now; the memory waits in the grave until the current batch of epoll events is processed, since
 * a later event of the same batch may still point at it (it is then skipped: dead). */
void conn_close(struct conn *c)
{
    if (!c || c->dead) {
        return;
    }
    c->dead = true;
    g.nconns--;
    close(c->fd); /* also removes it from the epoll set */
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        g.conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->grave = g.grave;
    g.grave = c;
    if (c->kind == K_RANK && c->job) {
        c->job->ranks--;
    }
    if (c->kind == K_REQUEST && c->job) {
        c->job->pending--;
    }
    if (c->kind == K_IN) {
        g.inbound--;
    }
    if (c->kind == K_ROUTE) {
        router_route_closed(c);
    }
    if (c->is_link) {
        router_link_closed(c);
    }
    if (c->kind == K_OUT && c->is_probe) {
        probe_report(c);
    }
    if (c->kind == K_CTL) {
        g.controls--;
        free(c->line);
        c->line = NULL;
        if (c->probe) {
            for (struct conn *o = g.conns; o; o = o->next) {
                if (o->probe_ctl == c) {
                    o->probe_ctl = NULL; /* the launcher left: nobody wants the answer */
                }
            }
            free(c->probe);
            c->probe = NULL;
        }
        for (int i = 0; i < MAX_JOBS; ++i) {
            if (g.jobs[i] && g.jobs[i]->lease == c) {
                job_remove(g.jobs[i], "its launcher's control connection closed (launcher exited or was killed)");
            }
        }
    }
    struct conn *partner = c->partner;
    c->partner = NULL;
    if (partner) {
        partner->partner = NULL;
        conn_close(partner);
    }
    c->job = NULL;
}

static void bury(void)
{
    while (g.grave) {
        struct conn *c = g.grave;
        g.grave = c->grave;
        free(c);
    }
}

static struct conn *find_rank(const struct job *job, uint64_t owner)
{
    for (struct conn *c = g.conns; c; c = c->next) {
        if (c->kind == K_RANK && c->job == job && c->owner == owner) {
            return c;
        }
    }
    return NULL;
}

static struct job *find_job(const char *id)
{
    for (int i = 0; i < MAX_JOBS; ++i) {
        if (g.jobs[i] && strcmp(g.jobs[i]->id, id) == 0) {
            return g.jobs[i];
        }
    }
    return NULL;
}

const struct peer *find_peer(const struct job *job, uint32_t index)
{
    for (unsigned i = 0; i < job->npeers; ++i) {
        if (job->peers[i].index == index) {
            return &job->peers[i];
        }
    }
    return NULL;
}

void addr_format(const struct sockaddr_in *a, char *buf, size_t len)
{
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
}

/* ---- job socket messages --------------------------------------------------------------------------- */

/* Sends a reply (and maybe a descriptor) on a SEQPACKET job connection. Never blocks. */
bool job_send(struct conn *c, uint16_t type, ff_agent_refusal_t reason, int fd, uint64_t peer_owner, uint32_t peer_host)
{
    ff_job_msg_t m = {.magic = FF_JOB_MAGIC,
                      .version = FF_JOB_VERSION,
                      .type = type,
                      .reason = reason,
                      .peer_host = peer_host,
                      .peer_owner_id = peer_owner};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    }
    return sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t) sizeof(m);
}

void job_refuse(struct conn *c, ff_agent_refusal_t reason, const char *detail)
{
    logf_("job=%s pid=%d uid=%u owner=%016llx refused: %s (%s)", c->job ? c->job->id : "?", (int) c->pid,
          (unsigned) c->uid, (unsigned long long) c->owner, ff_agent_refusal_name(reason), detail);
    job_send(c, FF_JOB_REPLY, reason, -1, 0, 0);
    conn_close(c);
}

/* ---- agent-to-agent messages ------------------------------------------------------------------------ */

static bool peer_send(struct conn *c, const ff_peer_msg_t *m, uint8_t *copy)
{
    uint8_t buf[FF_PEER_MSG_SIZE];
    ff_peer_msg_encode(m, buf);
    if (copy) {
        memcpy(copy, buf, sizeof(buf));
    }
    return send(c->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t) sizeof(buf);
}

static void peer_refuse(struct conn *c, ff_agent_refusal_t reason, const char *detail)
{
    logf_("job=%s peer=%s src=%016llx dst=%016llx refused incoming channel: %s (%s)", c->job ? c->job->id : "?",
          c->where, (unsigned long long) c->peer_owner, (unsigned long long) c->owner, ff_agent_refusal_name(reason),
          detail);
    ff_peer_msg_t m = {.type = FF_PEER_REFUSE, .reason = reason};
    peer_send(c, &m, NULL);
    conn_close(c);
}

/* Ends a rank's channel request with a refusal: the rank gets the reason, the TCP connection closes. */
static void request_fail(struct conn *out, ff_agent_refusal_t reason, const char *detail)
{
    struct conn *req = out->partner;
    out->probe_reason = reason;
    logf_("job=%s owner=%016llx -> peer owner=%016llx host=%u (%s) failed: %s (%s)", out->job ? out->job->id : "?",
          (unsigned long long) out->owner, (unsigned long long) out->peer_owner, out->peer_host, out->where,
          ff_agent_refusal_name(reason), detail);
    if (req) {
        job_send(req, FF_JOB_REPLY, reason, -1, 0, 0);
    }
    conn_close(out); /* closes the partner request too */
}

static bool read_peer_msg(struct conn *c, ff_peer_msg_t *m, bool *eof)
{
    /* Read at most the rest of one message: after ACCEPT the stream carries the ranks' data, which must
     * stay in the socket for them. */
    *eof = false;
    const ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        *eof = true;
        return false;
    }
    if (n < 0) {
        return false;
    }
    c->in_len += (size_t) n;
    if (c->in_len < sizeof(c->in)) {
        return false;
    }
    c->in_len = 0;
    if (!ff_peer_msg_decode(c->in, m)) {
        m->type = 0;
    }
    return true;
}

/* Our side: a rank asked for a channel; the TCP connect to the peer agent has progressed. */
static void out_event(struct conn *out, uint32_t events)
{
    struct job *job = out->job;
    if (out->state == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(out->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            request_fail(out, FF_AGENT_PEER_UNREACHABLE, strerror(err ? err : ECONNREFUSED));
            return;
        }
        const int one = 1;
        setsockopt(out->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        ff_peer_msg_t hello = {.type = out->is_link    ? FF_PEER_LINK
                                       : out->is_probe ? FF_PEER_PROBE
                                                       : FF_PEER_HELLO,
                               .from_host = job->host,
                               .to_host = out->peer_host,
                               .src_owner = out->owner,
                               .dst_owner = out->peer_owner};
        snprintf(hello.job, sizeof(hello.job), "%s", job->id);
        if (getrandom(hello.nonce, sizeof(hello.nonce), 0) != (ssize_t) sizeof(hello.nonce)) {
            request_fail(out, FF_AGENT_INTERNAL, "getrandom failed");
            return;
        }
        if (!peer_send(out, &hello, out->hello)) {
            request_fail(out, FF_AGENT_PEER_UNREACHABLE, "sending hello failed");
            return;
        }
        out->state = S_WAIT_CHALLENGE;
        conn_events(out, EPOLLIN);
        return;
    }
    ff_peer_msg_t m;
    bool eof;
    if (!read_peer_msg(out, &m, &eof)) {
        if (eof) {
            request_fail(out, FF_AGENT_PEER_UNREACHABLE, "the peer agent closed the connection during the handshake");
        }
        return;
    }
    if (m.type == FF_PEER_REFUSE) {
        const ff_agent_refusal_t reason =
            m.reason > 0 && m.reason < FF_AGENT_REFUSAL_COUNT ? (ff_agent_refusal_t) m.reason : FF_AGENT_BAD_REQUEST;
        request_fail(out, reason, "refused by the peer agent");
        return;
    }
    if (out->state == S_WAIT_CHALLENGE && m.type == FF_PEER_CHALLENGE) {
        uint8_t expected[FF_SHA256_SIZE];
        ff_peer_mac(&job->key, "responder", out->hello, m.nonce, expected);
        if (!ff_ct_equal(expected, m.mac, sizeof(expected))) {
            request_fail(out, FF_AGENT_PEER_AUTH_FAILED, "the peer agent's MAC does not match the job key");
            return;
        }
        ff_peer_msg_t auth = {.type = FF_PEER_AUTH};
        ff_peer_mac(&job->key, "initiator", out->hello, m.nonce, auth.mac);
        if (!peer_send(out, &auth, NULL)) {
            request_fail(out, FF_AGENT_PEER_UNREACHABLE, "sending auth failed");
            return;
        }
        out->state = S_WAIT_ACCEPT;
        return;
    }
    if (out->state == S_WAIT_ACCEPT && m.type == FF_PEER_ACCEPT && out->is_probe) {
        out->probe_reason = FF_AGENT_OK;
        conn_close(out); /* reports to the waiting control connection */
        return;
    }
    if (out->state == S_WAIT_ACCEPT && m.type == FF_PEER_ACCEPT && out->is_link) {
        router_link_accepted(out);
        return;
    }
    if (out->state == S_WAIT_ACCEPT && m.type == FF_PEER_ACCEPT) {
        struct conn *req = out->partner;
        epoll_ctl(g.epfd, EPOLL_CTL_DEL, out->fd, NULL);
        if (req && job_send(req, FF_JOB_REPLY, FF_AGENT_OK, out->fd, out->peer_owner, out->peer_host)) {
            logf_("job=%s handoff: owner=%016llx -> owner=%016llx host=%u via %s: socket passed to pid %d", job->id,
                  (unsigned long long) out->owner, (unsigned long long) out->peer_owner, out->peer_host, out->where,
                  (int) req->pid);
        } else {
            logf_("job=%s handoff: owner=%016llx -> owner=%016llx: the requester is gone, closing", job->id,
                  (unsigned long long) out->owner, (unsigned long long) out->peer_owner);
        }
        conn_close(out); /* our copy; the rank holds its own now */
        return;
    }
    request_fail(out, FF_AGENT_BAD_REQUEST, "unexpected message from the peer agent");
}

/* Their side: a peer agent asks to reach one of our ranks. */
static void in_event(struct conn *in)
{
    ff_peer_msg_t m;
    bool eof;
    if (!read_peer_msg(in, &m, &eof)) {
        if (eof) {
            logf_("peer=%s closed during the handshake", in->where);
            conn_close(in);
        }
        return;
    }
    if (in->state == S_WAIT_HELLO) {
        if (m.type != FF_PEER_HELLO && m.type != FF_PEER_LINK && m.type != FF_PEER_PROBE) {
            peer_refuse(in, FF_AGENT_BAD_REQUEST, "expected hello");
            return;
        }
        in->is_link = m.type == FF_PEER_LINK;
        in->is_probe = m.type == FF_PEER_PROBE;
        in->peer_owner = m.src_owner;
        in->owner = m.dst_owner;
        in->peer_host = m.from_host;
        struct job *job = find_job(m.job);
        if (!job) {
            peer_refuse(in, FF_AGENT_UNKNOWN_JOB, m.job);
            return;
        }
        in->job = job;
        const struct peer *p = find_peer(job, m.from_host);
        struct sockaddr_in src;
        socklen_t len = sizeof(src);
        getpeername(in->fd, (struct sockaddr *) &src, &len);
        if (m.to_host != job->host) {
            peer_refuse(in, FF_AGENT_HOST_NOT_ALLOWED, "the request names another host index than ours");
            return;
        }
        /* Only agents of hosts in this job's list, and only from the address listed for that host. */
        if (!p || p->addr.sin_addr.s_addr != src.sin_addr.s_addr) {
            peer_refuse(in, FF_AGENT_HOST_NOT_ALLOWED, "the source host is not in the job's host list");
            return;
        }
        /* The MACs cover the hello exactly as the initiator sent it (still in the input buffer). */
        memcpy(in->hello, in->in, sizeof(in->hello));
        ff_peer_msg_t challenge = {.type = FF_PEER_CHALLENGE};
        if (getrandom(challenge.nonce, sizeof(challenge.nonce), 0) != (ssize_t) sizeof(challenge.nonce)) {
            peer_refuse(in, FF_AGENT_INTERNAL, "getrandom failed");
            return;
        }
        memcpy(in->nonce, challenge.nonce, sizeof(in->nonce));
        ff_peer_mac(&job->key, "responder", in->hello, in->nonce, challenge.mac);
        if (!peer_send(in, &challenge, NULL)) {
            logf_("job=%s peer=%s: sending the challenge failed", job->id, in->where);
            conn_close(in);
            return;
        }
        in->state = S_WAIT_AUTH;
        return;
    }
    struct job *job = in->job;
    if (m.type != FF_PEER_AUTH) {
        peer_refuse(in, FF_AGENT_BAD_REQUEST, "expected auth");
        return;
    }
    uint8_t expected[FF_SHA256_SIZE];
    ff_peer_mac(&job->key, "initiator", in->hello, in->nonce, expected);
    if (!ff_ct_equal(expected, m.mac, sizeof(expected))) {
        peer_refuse(in, FF_AGENT_BAD_KEY, "the peer agent's MAC does not match the job key");
        return;
    }
    if (in->is_probe) {
        /* Both agents have the job and the key, and the underlay carries the handshake: that is all a
         * probe asks. */
        ff_peer_msg_t accept = {.type = FF_PEER_ACCEPT};
        const bool sent = peer_send(in, &accept, NULL);
        logf_("job=%s probe from host %u (%s): %s", job->id, in->peer_host, in->where,
              sent ? "handshake completed" : "sending accept failed");
        conn_close(in);
        return;
    }
    if (in->is_link) {
        ff_peer_msg_t accept = {.type = FF_PEER_ACCEPT};
        if (!peer_send(in, &accept, NULL)) {
            logf_("job=%s peer=%s: sending accept failed", job->id, in->where);
            conn_close(in);
            return;
        }
        router_link_accepted(in);
        return;
    }
    struct conn *rank = find_rank(job, in->owner);
    if (!rank) {
        peer_refuse(in, FF_AGENT_UNKNOWN_RANK, "target owner not registered here");
        return;
    }
    /* ACCEPT goes out before the rank has the socket, so it precedes any data the rank writes. */
    ff_peer_msg_t accept = {.type = FF_PEER_ACCEPT};
    if (!peer_send(in, &accept, NULL)) {
        logf_("job=%s peer=%s: sending accept failed", job->id, in->where);
        conn_close(in);
        return;
    }
    const int one = 1;
    setsockopt(in->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    epoll_ctl(g.epfd, EPOLL_CTL_DEL, in->fd, NULL);
    if (job_send(rank, FF_JOB_INCOMING, FF_AGENT_OK, in->fd, in->peer_owner, in->peer_host)) {
        logf_("job=%s handoff: owner=%016llx host=%u (%s) -> owner=%016llx: socket passed to pid %d", job->id,
              (unsigned long long) in->peer_owner, in->peer_host, in->where, (unsigned long long) in->owner,
              (int) rank->pid);
    } else {
        /* The peer already has ACCEPT; closing makes its rank see EOF on the new socket at once. */
        logf_("job=%s handoff to owner=%016llx failed: %s (%s); closing the channel", job->id,
              (unsigned long long) in->owner, ff_agent_refusal_name(FF_AGENT_RANK_BUSY), strerror(errno));
    }
    conn_close(in);
}

/* ---- job sockets ------------------------------------------------------------------------------------ */

/* accept4 that never leaves a listener readable forever: at the connection bound, or out of
 * descriptors (EMFILE/ENFILE, where a level-triggered epoll would otherwise report the same pending
 * connection again and again: a busy loop), the connection is accepted and closed at once, using the
 * spare descriptor if need be. Returns -1 when nothing (more) is pending. */
static int accept_bounded(int lfd, struct sockaddr *addr, socklen_t *len, const char *what)
{
    for (;;) {
        int fd = accept4(lfd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0 && g.nconns < MAX_CONNS) {
            return fd;
        }
        if (fd < 0 && errno == EINTR) {
            continue;
        }
        if (fd < 0 && errno != EMFILE && errno != ENFILE) {
            return -1; /* EAGAIN: nothing pending; other errors concern that one connection */
        }
        if (fd < 0) {
            /* Out of descriptors: free the spare, take the connection into it, drop it, and only then
             * take the spare back (in the other order the spare would be lost for the next time). */
            if (g.spare_fd >= 0) {
                close(g.spare_fd);
            }
            fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                close(fd);
            }
            g.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                return -1;
            }
        } else {
            close(fd);
        }
        logf_("%s: connection shed: %u connections open (bound %d) or out of descriptors", what, g.nconns, MAX_CONNS);
    }
}

static void job_accept(struct conn *listener)
{
    for (;;) {
        const int fd = accept_bounded(listener->fd, NULL, NULL, listener->job->id);
        if (fd < 0) {
            return;
        }
        struct job *job = listener->job;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            close(fd);
            continue;
        }
        struct conn *c = conn_add(K_JOB_NEW, fd, EPOLLIN);
        if (!c) {
            continue;
        }
        c->job = job;
        c->uid = cred.uid;
        c->pid = cred.pid;
        c->deadline = now_ms() + FIRST_MESSAGE_MS;
        /* The uid is checked when the first message arrives, so the refusal reaches a client that is
         * still sending (refusing here would show it only a broken pipe). */
    }
}

/* Starts a TCP connection to a peer agent, from our underlay address (the one peers list for us); the
 * handshake continues in out_event. NULL with `err` (and errno ENOMEM for our own failures). */
struct conn *peer_connect(struct job *job, const struct peer *p, bool link, char *err, size_t errlen)
{
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        errno = ENOMEM;
        return NULL;
    }
    if (g.listen_addr.sin_addr.s_addr != htonl(INADDR_ANY)) {
        struct sockaddr_in local = g.listen_addr;
        local.sin_port = 0;
        if (bind(fd, (struct sockaddr *) &local, sizeof(local)) != 0) {
            snprintf(err, errlen, "bind: %s", strerror(errno));
            close(fd);
            errno = ENOMEM;
            return NULL;
        }
    }
    if (connect(fd, (const struct sockaddr *) &p->addr, sizeof(p->addr)) != 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        errno = ECONNREFUSED;
        return NULL;
    }
    struct conn *out = conn_add(K_OUT, fd, EPOLLOUT);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    out->job = job;
    out->state = S_CONNECTING;
    out->peer_host = p->index;
    out->is_link = link;
    out->deadline = now_ms() + HANDSHAKE_MS;
    addr_format(&p->addr, out->where, sizeof(out->where));
    return out;
}

static void connect_request(struct conn *c, const ff_job_msg_t *m)
{
    struct job *job = c->job;
    if (!find_rank(job, m->owner_id)) {
        job_refuse(c, FF_AGENT_NOT_REGISTERED, "the requester's owner id is not registered");
        return;
    }
    const struct peer *p = find_peer(job, m->peer_host);
    if (!p) {
        job_refuse(c, FF_AGENT_HOST_NOT_ALLOWED, "the peer host is not in the job's host list");
        return;
    }
    if (job->pending >= MAX_PENDING_PER_JOB) {
        job_refuse(c, FF_AGENT_LIMIT, "too many channel requests in progress for this job");
        return;
    }
    char err[160];
    struct conn *out = peer_connect(job, p, false, err, sizeof(err));
    if (!out) {
        job_refuse(c, errno == ENOMEM ? FF_AGENT_INTERNAL : FF_AGENT_PEER_UNREACHABLE, err);
        return;
    }
    c->kind = K_REQUEST;
    c->owner = m->owner_id;
    c->deadline = 0; /* the K_OUT's deadline covers the request */
    job->pending++;
    out->owner = m->owner_id;
    out->peer_owner = m->peer_owner_id;
    out->partner = c;
    c->partner = out;
}

static void job_event(struct conn *c)
{
    ff_job_msg_t m;
    /* One descriptor may come with the message (ROUTE_OPEN's memfd); the kernel closes any beyond the
     * control buffer, and every path below closes `passed` unless it keeps it. */
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
    const ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    int passed = -1;
    if (n > 0) {
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
                memcpy(&passed, CMSG_DATA(cm), sizeof(int));
            }
        }
    }
    if (passed >= 0 && (n != (ssize_t) sizeof(m) || m.type != FF_JOB_ROUTE_OPEN)) {
        close(passed);
        passed = -1;
    }
    if (n <= 0) {
        if (c->kind == K_RANK) {
            logf_("job=%s owner=%016llx pid=%d: registration closed (rank exited or crashed)", c->job->id,
                  (unsigned long long) c->owner, (int) c->pid);
        } else if (c->kind == K_REQUEST) {
            logf_("job=%s owner=%016llx: requester left before its channel was ready; cancelling", c->job->id,
                  (unsigned long long) c->owner);
        }
        conn_close(c);
        return;
    }
    if (c->kind != K_JOB_NEW) {
        job_refuse(c, FF_AGENT_BAD_REQUEST, "no messages are expected on this connection now");
        return;
    }
    c->owner = m.owner_id;
    const char *bad = NULL;
    ff_agent_refusal_t why = FF_AGENT_OK;
    char detail[96];
    if (c->uid != c->job->uid) {
        snprintf(detail, sizeof(detail), "uid %u is not the job's uid %u", (unsigned) c->uid, (unsigned) c->job->uid);
        bad = detail, why = FF_AGENT_BAD_UID;
    } else if (n != (ssize_t) sizeof(m) || m.magic != FF_JOB_MAGIC || m.version != FF_JOB_VERSION) {
        bad = "malformed message or another protocol version", why = FF_AGENT_BAD_REQUEST;
    } else if (!ff_ct_equal(m.key, c->job->key.bytes, sizeof(m.key))) {
        bad = "the job key does not match", why = FF_AGENT_BAD_KEY;
    }
    if (bad) {
        if (passed >= 0) {
            close(passed);
        }
        job_refuse(c, why, bad);
        return;
    }
    if (m.type == FF_JOB_ROUTE_OPEN) {
        router_route_open(c, passed); /* takes `passed` */
        return;
    }
    if (m.type == FF_JOB_REGISTER) {
        struct conn *old = find_rank(c->job, m.owner_id);
        if (old) {
            job_refuse(c, FF_AGENT_DUPLICATE_OWNER, "owner id already registered");
            return;
        }
        if (c->job->ranks >= MAX_RANKS_PER_JOB) {
            job_refuse(c, FF_AGENT_LIMIT, "too many ranks registered for this job");
            return;
        }
        if (!job_send(c, FF_JOB_REPLY, FF_AGENT_OK, -1, 0, 0)) {
            conn_close(c);
            return;
        }
        c->kind = K_RANK;
        c->deadline = 0;
        c->job->ranks++;
        logf_("job=%s owner=%016llx pid=%d uid=%u registered", c->job->id, (unsigned long long) c->owner, (int) c->pid,
              (unsigned) c->uid);
        return;
    }
    if (m.type == FF_JOB_CONNECT) {
        connect_request(c, &m);
        return;
    }
    job_refuse(c, FF_AGENT_BAD_REQUEST, "unknown message type");
}

/* Opens the job's shared directory without following any symlink on the way: the directory is the job's
 * (possibly writable by the job's user), and the agent is root. */
static int open_dir_nofollow(const char *dir)
{
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
    long fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        fd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); /* kernels before 5.6: last component */
    }
    return (int) fd;
}

static bool job_socket_create(struct job *job, char *err, size_t errlen)
{
    job->dirfd = open_dir_nofollow(job->dir);
    if (job->dirfd < 0) {
        snprintf(err, errlen, "cannot open the shared directory %s without following symlinks: %s", job->dir,
                 strerror(errno));
        return false;
    }
    struct stat st;
    if (fstatat(job->dirfd, FF_AGENT_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode) || st.st_uid != 0) {
            snprintf(err, errlen, "%s/%s exists and is not an agent's socket (a symlink or a file): remove it",
                     job->dir, FF_AGENT_SOCKET_NAME);
            return false;
        }
        unlinkat(job->dirfd, FF_AGENT_SOCKET_NAME, 0); /* stale, from an agent that died */
    }
    const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    /* Bind through the directory descriptor, so a directory swapped for a symlink after the open above
     * cannot redirect the socket elsewhere. The umask (0177) makes it 0600 from the start. */
    snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", job->dirfd, FF_AGENT_SOCKET_NAME);
    if (fd < 0 || bind(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "cannot create %s/%s: %s", job->dir, FF_AGENT_SOCKET_NAME, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    /* Give it to the job's user; NOFOLLOW and the checks make sure we chown the socket we made. */
    if (fstatat(job->dirfd, FF_AGENT_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode) ||
        st.st_nlink != 1 || fchownat(job->dirfd, FF_AGENT_SOCKET_NAME, job->uid, job->gid, AT_SYMLINK_NOFOLLOW) != 0) {
        snprintf(err, errlen, "cannot hand %s/%s to uid %u: %s", job->dir, FF_AGENT_SOCKET_NAME, (unsigned) job->uid,
                 strerror(errno));
        close(fd);
        unlinkat(job->dirfd, FF_AGENT_SOCKET_NAME, 0);
        return false;
    }
    job->listener = conn_add(K_JOB_LISTEN, fd, EPOLLIN);
    if (!job->listener) {
        snprintf(err, errlen, "out of memory");
        unlinkat(job->dirfd, FF_AGENT_SOCKET_NAME, 0);
        return false;
    }
    job->listener->job = job;
    return true;
}

static void job_remove(struct job *job, const char *why)
{
    router_job_removed(job);
    unsigned closed = 0;
    for (struct conn *c = g.conns; c; c = c->next) {
        if (c->job == job && c->kind != K_JOB_LISTEN) {
            conn_close(c);
            ++closed;
        }
    }
    conn_close(job->listener);
    struct stat st;
    if (job->dirfd >= 0) {
        if (fstatat(job->dirfd, FF_AGENT_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode)) {
            unlinkat(job->dirfd, FF_AGENT_SOCKET_NAME, 0);
        }
        close(job->dirfd);
    }
    logf_("job=%s removed: %s; closed %u connection(s), removed %s/%s", job->id, why, closed, job->dir,
          FF_AGENT_SOCKET_NAME);
    for (int i = 0; i < MAX_JOBS; ++i) {
        if (g.jobs[i] == job) {
            g.jobs[i] = NULL;
        }
    }
    memset(&job->key, 0, sizeof(job->key));
    free(job);
}

/* ---- control socket --------------------------------------------------------------------------------- */

static bool valid_job_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > FF_PEER_JOB_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; ++i) {
        const char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_')) {
            return false;
        }
    }
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > UINT32_MAX || *s == '-') {
        return false;
    }
    *out = (uint32_t) v;
    return true;
}

static bool parse_endpoint(char *text, struct sockaddr_in *out)
{
    char *colon = strrchr(text, ':');
    uint32_t port = 0;
    if (!colon) {
        return false;
    }
    *colon = 0;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    const bool ok =
        inet_pton(AF_INET, text, &out->sin_addr) == 1 && parse_u32(colon + 1, &port) && port > 0 && port < 65536;
    *colon = ':';
    out->sin_port = htons((uint16_t) port);
    return ok;
}

/* add <job> key=<32 hex> dir=<abs path> uid=<n> gid=<n> host=<index> peers=<i>@<ip>:<port>,... [lease=1] */
static void ctl_add(struct conn *c, char *args, char *reply, size_t len)
{
    struct job *job = calloc(1, sizeof(*job));
    if (!job) {
        snprintf(reply, len, "error no-memory");
        return;
    }
    job->dirfd = -1;
    bool have[6] = {false};
    bool lease = false;
    char *save;
    char *id = strtok_r(args, " ", &save);
    for (char *tok = strtok_r(NULL, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(reply, len, "error bad-argument '%.64s' is not name=value", tok);
            goto fail;
        }
        *eq++ = 0;
        uint32_t v;
        if (!strcmp(tok, "key") && ff_job_key_parse(eq, &job->key) == FF_OK) {
            have[0] = true;
        } else if (!strcmp(tok, "dir") && eq[0] == '/' && strlen(eq) < sizeof(job->dir)) {
            snprintf(job->dir, sizeof(job->dir), "%s", eq);
            have[1] = true;
        } else if (!strcmp(tok, "uid") && parse_u32(eq, &v)) {
            job->uid = v, have[2] = true;
        } else if (!strcmp(tok, "gid") && parse_u32(eq, &v)) {
            job->gid = v, have[3] = true;
        } else if (!strcmp(tok, "host") && parse_u32(eq, &v)) {
            job->host = v, have[4] = true;
        } else if (!strcmp(tok, "lease") && !strcmp(eq, "1")) {
            lease = true;
        } else if (!strcmp(tok, "peers")) {
            char *psave;
            for (char *p = strtok_r(eq, ",", &psave); p; p = strtok_r(NULL, ",", &psave)) {
                char *at = strchr(p, '@');
                struct peer *peer = &job->peers[job->npeers];
                if (job->npeers >= MAX_PEERS || !at || (*at = 0, !parse_u32(p, &peer->index)) ||
                    !parse_endpoint(at + 1, &peer->addr) || find_peer(job, peer->index)) {
                    snprintf(reply, len,
                             "error bad-argument peers: each is <index>@<ipv4>:<port>, distinct, at most %d",
                             MAX_PEERS);
                    goto fail;
                }
                job->npeers++;
            }
            have[5] = true;
        } else {
            snprintf(reply, len, "error bad-argument %.32s=%.64s (dir: absolute, under 96 bytes; key: 32 hex digits)",
                     tok, eq);
            goto fail;
        }
    }
    if (!id || !valid_job_id(id)) {
        snprintf(reply, len, "error bad-argument job id must be 1-%d of [a-z0-9_-]", FF_PEER_JOB_ID_MAX);
        goto fail;
    }
    for (int i = 0; i < 6; ++i) {
        if (!have[i]) {
            static const char *const names[6] = {"key", "dir", "uid", "gid", "host", "peers"};
            snprintf(reply, len, "error bad-argument missing %s=", names[i]);
            goto fail;
        }
    }
    snprintf(job->id, sizeof(job->id), "%s", id);
    if (find_job(id)) {
        snprintf(reply, len, "error exists job %s is already registered (remove it first)", id);
        goto fail;
    }
    int slot = -1;
    for (int i = 0; i < MAX_JOBS && slot < 0; ++i) {
        if (!g.jobs[i]) {
            slot = i;
        }
    }
    if (slot < 0) {
        snprintf(reply, len, "error limit at most %d jobs", MAX_JOBS);
        goto fail;
    }
    char err[512];
    if (!job_socket_create(job, err, sizeof(err))) {
        snprintf(reply, len, "error socket %s", err);
        goto fail;
    }
    job->lease = lease ? c : NULL;
    g.jobs[slot] = job;
    router_job_added(job);
    logf_("job=%s added: dir=%s uid=%u gid=%u host=%u peers=%u%s", job->id, job->dir, (unsigned) job->uid,
          (unsigned) job->gid, job->host, job->npeers, lease ? " lease=control-connection" : "");
    snprintf(reply, len, "ok %s/%s", job->dir, FF_AGENT_SOCKET_NAME);
    return;
fail:
    logf_("control: add refused: %s", reply);
    if (job->dirfd >= 0) {
        close(job->dirfd);
    }
    memset(&job->key, 0, sizeof(job->key));
    free(job);
}

/* The answer to `probe <job>` being collected on a control connection. */
struct probe_peer {
    uint32_t host;
    ff_agent_refusal_t reason; /* FF_AGENT_OK: reached */
};
struct probe_answer {
    unsigned waiting, count;
    struct probe_peer peers[MAX_PEERS];
};

static void probe_record(struct probe_answer *a, uint32_t host, ff_agent_refusal_t reason)
{
    if (a->count < MAX_PEERS) {
        a->peers[a->count].host = host;
        a->peers[a->count].reason = reason;
        a->count++;
    }
}

static void ctl_reply(struct conn *c, const char *reply);
static void ctl_process(struct conn *c);

/* One line per probe: `ok reached=<hosts> unreached=<host>:<refusal>,...` (either list may be empty). */
static void probe_answer_send(struct conn *ctl)
{
    struct probe_answer *a = ctl->probe;
    /* in host order, whatever order the handshakes ended in */
    char reached[6 * MAX_PEERS + 1] = "", unreached[48 * MAX_PEERS + 1] = "";
    size_t reached_len = 0, unreached_len = 0;
    for (unsigned i = 1; i < a->count; ++i) { /* insertion sort: at most MAX_PEERS entries */
        for (unsigned j = i; j > 0 && a->peers[j - 1].host > a->peers[j].host; --j) {
            const struct probe_peer swap = a->peers[j];
            a->peers[j] = a->peers[j - 1];
            a->peers[j - 1] = swap;
        }
    }
    for (unsigned i = 0; i < a->count; ++i) {
        const unsigned host = (unsigned) a->peers[i].host;
        if (FF_AGENT_OK == a->peers[i].reason) {
            reached_len += (size_t) snprintf(reached + reached_len, sizeof(reached) - reached_len, "%s%u",
                                             reached_len ? "," : "", host);
        } else {
            unreached_len +=
                (size_t) snprintf(unreached + unreached_len, sizeof(unreached) - unreached_len, "%s%u:%s",
                                  unreached_len ? "," : "", host, ff_agent_refusal_name(a->peers[i].reason));
        }
    }
    char reply[sizeof(reached) + sizeof(unreached) + 32];
    snprintf(reply, sizeof(reply), "ok reached=%s unreached=%s", reached, unreached);
    free(a);
    ctl->probe = NULL;
    ctl_reply(ctl, reply);
    if (!ctl->dead) {
        ctl_process(ctl); /* lines that arrived while the probe ran */
    }
}

/* A probe's K_OUT closes (handshake done, refused, failed or timed out): its outcome goes to the control
 * connection that asked, which answers once every peer has reported. */
static void probe_report(struct conn *out)
{
    struct conn *ctl = out->probe_ctl;
    out->probe_ctl = NULL;
    logf_("job=%s probe of host %u (%s): %s", out->job ? out->job->id : "?", out->peer_host, out->where,
          FF_AGENT_OK == out->probe_reason ? "handshake completed" : ff_agent_refusal_name(out->probe_reason));
    if (!ctl || !ctl->probe) {
        return;
    }
    probe_record(ctl->probe, out->peer_host, out->probe_reason);
    if (0 == --ctl->probe->waiting) {
        probe_answer_send(ctl);
    }
}

/* `probe <job>`: this agent runs the authenticated handshake (FF_PEER_PROBE) with the agent of every
 * other host of the job, at once, each bounded by HANDSHAKE_MS; the reply names the hosts reached and
 * why the others were not. False when it answered at once (into `reply`). */
static bool ctl_probe(struct conn *c, const char *id, char *reply, size_t len)
{
    struct job *job = id ? find_job(id) : NULL;
    if (!job) {
        snprintf(reply, len, "error unknown-job %s", id ? id : "(none)");
        return false;
    }
    struct probe_answer *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(reply, len, "error internal out of memory");
        return false;
    }
    c->probe = a;
    a->waiting = 1; /* held until every handshake has started, so none can answer early */
    for (unsigned i = 0; i < job->npeers; ++i) {
        const struct peer *p = &job->peers[i];
        if (p->index == job->host) {
            continue;
        }
        char err[160];
        struct conn *out = peer_connect(job, p, false, err, sizeof(err));
        if (!out) {
            logf_("job=%s probe of host %u: %s", job->id, (unsigned) p->index, err);
            probe_record(a, p->index, errno == ENOMEM ? FF_AGENT_INTERNAL : FF_AGENT_PEER_UNREACHABLE);
            continue;
        }
        out->is_probe = true;
        out->probe_reason = FF_AGENT_PEER_UNREACHABLE; /* unless it completes */
        out->probe_ctl = c;
        a->waiting++;
    }
    if (0 == --a->waiting) {
        probe_answer_send(c);
    }
    return true;
}

static void ctl_line(struct conn *c, char *line)
{
    char reply[1024];
    char *save;
    char *copy = strdup(line);
    char *cmd = copy ? strtok_r(copy, " ", &save) : NULL;
    if (!cmd) {
        snprintf(reply, sizeof(reply), "error bad-request empty line");
    } else if (!strcmp(cmd, "add")) {
        ctl_add(c, line + strspn(line, " ") + 3, reply, sizeof(reply)); /* the text after "add" */
    } else if (!strcmp(cmd, "remove")) {
        char *id = strtok_r(NULL, " ", &save);
        struct job *job = id ? find_job(id) : NULL;
        if (job) {
            job_remove(job, "removed by the launcher");
            snprintf(reply, sizeof(reply), "ok");
        } else {
            snprintf(reply, sizeof(reply), "error unknown-job %s", id ? id : "(none)");
        }
    } else if (!strcmp(cmd, "list")) {
        size_t used = (size_t) snprintf(reply, sizeof(reply), "ok");
        for (int i = 0; i < MAX_JOBS && used < sizeof(reply) - 64; ++i) {
            if (g.jobs[i]) {
                used += (size_t) snprintf(reply + used, sizeof(reply) - used, " %s:ranks=%u", g.jobs[i]->id,
                                          g.jobs[i]->ranks);
            }
        }
    } else if (!strcmp(cmd, "ping")) {
        snprintf(reply, sizeof(reply), "ok ffagent protocol %u", FF_PEER_VERSION);
    } else if (!strcmp(cmd, "probe")) {
        const bool later = ctl_probe(c, strtok_r(NULL, " ", &save), reply, sizeof(reply));
        free(copy);
        if (!later) {
            ctl_reply(c, reply);
        }
        return;
    } else {
        snprintf(reply, sizeof(reply), "error bad-request unknown command '%s' (add, remove, list, ping, probe)", cmd);
    }
    free(copy);
    ctl_reply(c, reply);
}

static void ctl_reply(struct conn *c, const char *reply)
{
    const size_t n = strlen(reply);
    /* one send with the newline: a reply is one line */
    char *line = malloc(n + 1);
    if (!line) {
        conn_close(c);
        return;
    }
    memcpy(line, reply, n);
    line[n] = '\n';
    if (send(c->fd, line, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t) (n + 1)) {
        conn_close(c);
    }
    free(line);
}

/* Runs the complete lines received, in order; stops while a probe's answer is outstanding (replies stay
 * in the order of the commands). */
static void ctl_process(struct conn *c)
{
    char *nl;
    while (!c->dead && !c->probe && (nl = memchr(c->line, '\n', c->line_len))) {
        /* taken out of the buffer first: a probe answered at once runs this again from inside ctl_line */
        char line[CTL_LINE_MAX];
        const size_t used = (size_t) (nl - c->line) + 1;
        memcpy(line, c->line, used - 1);
        line[used - 1] = 0;
        memmove(c->line, c->line + used, c->line_len - used);
        c->line_len -= used;
        ctl_line(c, line);
    }
}

static void ctl_event(struct conn *c)
{
    const ssize_t n = recv(c->fd, c->line + c->line_len, CTL_LINE_MAX - c->line_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->line_len += (size_t) n;
    ctl_process(c);
    if (c->dead) {
        return;
    }
    if (c->line_len == CTL_LINE_MAX) {
        const char *msg = "error bad-request line longer than 8192 bytes\n";
        send(c->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
        conn_close(c);
    }
}

static void ctl_accept(struct conn *listener)
{
    for (;;) {
        const int fd = accept_bounded(listener->fd, NULL, NULL, "control");
        if (fd < 0) {
            return;
        }
        struct ucred cred = {.pid = 0, .uid = (uid_t) -1, .gid = (gid_t) -1};
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
            logf_("control: refused pid=%d uid=%u: only root may add or remove jobs", (int) cred.pid,
                  (unsigned) cred.uid);
            close(fd);
            continue;
        }
        if (g.controls >= MAX_CONTROL_CONNS) {
            logf_("control: refused pid=%d: %d control connections open", (int) cred.pid, MAX_CONTROL_CONNS);
            close(fd);
            continue;
        }
        struct conn *c = conn_add(K_CTL, fd, EPOLLIN);
        if (c) {
            c->line = malloc(CTL_LINE_MAX);
            if (!c->line) {
                conn_close(c);
                continue;
            }
            c->pid = cred.pid;
            g.controls++;
        }
    }
}

static void peer_accept(struct conn *listener)
{
    for (;;) {
        struct sockaddr_in src;
        socklen_t len = sizeof(src);
        const int fd = accept_bounded(listener->fd, (struct sockaddr *) &src, &len, "peer listener");
        if (fd < 0) {
            return;
        }
        char where[64];
        addr_format(&src, where, sizeof(where));
        if (g.inbound >= MAX_INBOUND_HANDSHAKES) {
            logf_("peer=%s refused: %d handshakes in progress", where, MAX_INBOUND_HANDSHAKES);
            close(fd);
            continue;
        }
        struct conn *c = conn_add(K_IN, fd, EPOLLIN);
        if (c) {
            g.inbound++;
            c->state = S_WAIT_HELLO;
            c->deadline = now_ms() + HANDSHAKE_MS;
            snprintf(c->where, sizeof(c->where), "%s", where);
        }
    }
}

/* ---- main ----------------------------------------------------------------------------------------- */

static int die(const char *fmt, const char *arg)
{
    fprintf(stderr, "ffagent: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 1;
}

/* The control directory must be root's alone: anyone who can write to it could replace the socket. */
static int check_control_dir(const char *path)
{
    char dir[108];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        return die("--control %s: give an absolute path inside a root-only directory", path);
    }
    *slash = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return die("cannot create the control directory: %s", strerror(errno));
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
        return die("the control directory %s must be a real directory owned by root, not writable by group or "
                   "others (chmod 700)",
                   dir);
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return die("%s exists and is not a socket: remove it", path);
        }
        unlink(path); /* stale, from an agent that died */
    }
    return 0;
}

/* --spin-us and FFAGENT_SPIN_US: microseconds, at most an hour (router_spin_us * 1000 must fit). */
static const long SPIN_US_MAX = 3600L * 1000 * 1000;

int main(int argc, char **argv)
{
    const char *control = NULL, *listen_at = NULL, *log_path = NULL, *pid_file = NULL;
    long spin_us = 0;
    bool spin_set = false;
    g.log = stderr;
    const ff_option options[] = {
        {"control", FF_OPT_STRING, &control, 0, 0, "the control socket, in a directory only root may write",
         .required = true, .value_name = "PATH"},
        {"listen", FF_OPT_STRING, &listen_at, 0, 0, "the underlay address other hosts' agents reach", .required = true,
         .value_name = "IPV4:PORT"},
        {"log", FF_OPT_STRING, &log_path, 0, 0, "append the log to this file instead of stderr", .value_name = "PATH"},
        {"pid-file", FF_OPT_STRING, &pid_file, 0, 0, "write the agent's pid here once it listens",
         .value_name = "PATH"},
        {"spin-us", FF_OPT_LONG, &spin_us, 0, SPIN_US_MAX,
         "microseconds the router polls after traffic before it blocks (or FFAGENT_SPIN_US)", .given = &spin_set,
         .value_name = "US"},
        {0},
    };
    const ff_cli cli = {.program = "ffagent",
                        .usage = "--control <root-only dir>/control.sock --listen <underlay ipv4>:<port> [options]",
                        .about = "The per-host freeflow agent; see docs/agent.md.",
                        .tables = {options}};
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, true);
    if (status != FF_CLI_PROCEED) {
        return status;
    }
    if (pid_file && strlen(pid_file) >= sizeof(g.pid_file)) {
        return ff_cli_refusef(&cli, "--pid-file %s: path too long", pid_file);
    }
    snprintf(g.pid_file, sizeof(g.pid_file), "%s", pid_file ? pid_file : "");
    /* The launcher's environment can set the default (ffrun passes its own on): for measurements. */
    const char *spin_env = getenv("FFAGENT_SPIN_US");
    if (spin_env && !spin_set && !ff_parse_whole(spin_env, 0, SPIN_US_MAX, &spin_us)) {
        return ff_cli_refusef(&cli, "FFAGENT_SPIN_US wants microseconds from 0 to %ld, got '%s'", SPIN_US_MAX,
                              spin_env);
    }
    router_spin_us = (unsigned) spin_us;
    if (geteuid() != 0) {
        return die("must run as root (it chowns job sockets and checks peers' credentials)%s", "");
    }
    if (strlen(control) >= sizeof(g.control_path)) {
        return die("--control %s: path too long for a unix socket", control);
    }
    snprintf(g.control_path, sizeof(g.control_path), "%s", control);
    char endpoint[128];
    snprintf(endpoint, sizeof(endpoint), "%s", listen_at);
    if (!parse_endpoint(endpoint, &g.listen_addr)) {
        return die("--listen %s: expected <ipv4>:<port>", listen_at);
    }
    if (log_path) {
        const int lfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        g.log = lfd >= 0 ? fdopen(lfd, "a") : NULL;
        if (!g.log) {
            g.log = stderr;
            return die("cannot open the log file: %s", strerror(errno));
        }
    }
    if (check_control_dir(control)) {
        return 1;
    }
    umask(0177); /* every socket the agent creates from here on starts as 0600 */
    /* Room for MAX_CONNS sockets if the hard limit allows; plus the spare for shedding. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < MAX_CONNS + 64) {
        nofile.rlim_cur = nofile.rlim_max < MAX_CONNS + 64 ? nofile.rlim_max : MAX_CONNS + 64;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    g.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    g.epfd = epoll_create1(EPOLL_CLOEXEC);
    const int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (g.epfd < 0 || sfd < 0 || !conn_add(K_SIGNAL, sfd, EPOLLIN)) {
        return die("epoll/signalfd: %s", strerror(errno));
    }

    const int cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un caddr = {.sun_family = AF_UNIX};
    snprintf(caddr.sun_path, sizeof(caddr.sun_path), "%s", control);
    if (cfd < 0 || bind(cfd, (struct sockaddr *) &caddr, sizeof(caddr)) != 0 || listen(cfd, 16) != 0 ||
        !conn_add(K_CTL_LISTEN, cfd, EPOLLIN)) {
        return die("cannot listen on the control socket: %s", strerror(errno));
    }
    const int pfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (pfd >= 0) {
        setsockopt(pfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (pfd < 0 || bind(pfd, (struct sockaddr *) &g.listen_addr, sizeof(g.listen_addr)) != 0 || listen(pfd, 128) != 0 ||
        !conn_add(K_PEER_LISTEN, pfd, EPOLLIN)) {
        unlink(control);
        return die("cannot listen for peer agents on --listen: %s (is the address on this host's network?)",
                   strerror(errno));
    }
    char rerr[256];
    if (!router_init(rerr, sizeof(rerr))) {
        unlink(control);
        return die("%s", rerr);
    }
    if (g.pid_file[0]) {
        FILE *pf = fopen(g.pid_file, "w");
        if (pf) {
            fprintf(pf, "%d\n", (int) getpid());
            fclose(pf);
        }
    }
    logf_("started: control=%s listen=%s", control, listen_at);

    struct epoll_event events[64];
    while (!g.stop) {
        uint64_t next = 0;
        for (struct conn *c = g.conns; c; c = c->next) {
            if (c->deadline && (!next || c->deadline < next)) {
                next = c->deadline;
            }
        }
        const uint64_t rnext = router_next_deadline();
        if (rnext && (!next || rnext < next)) {
            next = rnext;
        }
        const uint64_t now = now_ms();
        int timeout = !next ? -1 : next <= now ? 0 : (int) (next - now);
        /* Traffic flowing: poll without blocking for a while (router_poll keeps the spin short); idle:
         * block until a doorbell, a UCX event or a socket wakes us. */
        const bool moved = router_poll();
        const bool sleeping = !moved && router_prepare_sleep();
        if (!sleeping) {
            timeout = 0;
        }
        const int n = epoll_wait(g.epfd, events, 64, timeout);
        if (sleeping) {
            router_woke();
        }
        for (int i = 0; i < n; ++i) {
            struct conn *c = events[i].data.ptr;
            if (c->dead) {
                continue;
            }
            switch (c->kind) {
            case K_SIGNAL: {
                struct signalfd_siginfo si;
                if (read(c->fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                    logf_("signal %u from pid %u: stopping", si.ssi_signo, si.ssi_pid);
                    g.stop = true;
                }
                break;
            }
            case K_CTL_LISTEN: ctl_accept(c); break;
            case K_CTL: ctl_event(c); break;
            case K_PEER_LISTEN: peer_accept(c); break;
            case K_JOB_LISTEN: job_accept(c); break;
            case K_JOB_NEW:
            case K_RANK:
            case K_REQUEST: job_event(c); break;
            case K_OUT: out_event(c, events[i].events); break;
            case K_IN: in_event(c); break;
            case K_ROUTE: router_route_event(c); break;
            case K_LINK: router_link_event(c); break;
            case K_UCP: break; /* router_poll progresses the worker */
            }
        }
        const uint64_t t = now_ms();
        router_timers(t);
        for (struct conn *c = g.conns; c; c = c->next) {
            if (c->dead || !c->deadline || c->deadline > t) {
                continue;
            }
            if (c->kind == K_OUT) {
                request_fail(c, FF_AGENT_PEER_UNREACHABLE, "timed out connecting to or authenticating the peer agent");
            } else {
                logf_("job=%s %s: timed out in a handshake, closing", c->job ? c->job->id : "?",
                      c->kind == K_IN ? c->where : "job socket client");
                conn_close(c);
            }
        }
        bury();
    }
    for (int i = 0; i < MAX_JOBS; ++i) {
        if (g.jobs[i]) {
            job_remove(g.jobs[i], "the agent is stopping");
        }
    }
    router_fini();
    unlink(control);
    if (g.pid_file[0]) {
        unlink(g.pid_file);
    }
    logf_("stopped");
    return 0;
}
