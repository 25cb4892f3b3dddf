/* The rank's side of the ffagent job socket (<shared dir>/agent.sock): register, connect, accept. */
#define _GNU_SOURCE
#include "agent_proto.h"
#include "freeflow.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct ff_agent_conn {
    int fd; /* registration connection: pushes arrive here; EOF means the agent is gone */
    char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    ff_job_key_t key;
    uint64_t owner_id;
    bool nonblocking;
    int timeout_ms;
    char error[320];
};

static const struct {
    const char *name;
    const char *text;
} refusals[FF_AGENT_REFUSAL_COUNT] = {
    {"FF_AGENT_OK", "accepted"},
    {"FF_AGENT_BAD_KEY", "the request did not prove the job key: the rank has another job's key"},
    {"FF_AGENT_BAD_UID", "the caller's uid is not the uid the job was registered with"},
    {"FF_AGENT_UNKNOWN_JOB", "the agent has no such job: the launcher did not register it there, or removed it"},
    {"FF_AGENT_UNKNOWN_RANK", "the target rank is not registered with its host's agent (not started yet, or gone)"},
    {"FF_AGENT_NOT_REGISTERED", "register this rank's owner id (ff_agent_register) before asking for channels"},
    {"FF_AGENT_DUPLICATE_OWNER", "another live registration of this job already has this owner id"},
    {"FF_AGENT_HOST_NOT_ALLOWED", "the peer host is not in this job's host list on one of the agents"},
    {"FF_AGENT_PEER_UNREACHABLE", "the peer host's agent did not answer over the host network (not running, "
                                  "wrong address in the job's host list, or a firewall)"},
    {"FF_AGENT_PEER_AUTH_FAILED", "the peer agent could not prove the job key: it is not serving this job"},
    {"FF_AGENT_BAD_REQUEST", "malformed message or another protocol version: agent and core differ"},
    {"FF_AGENT_LIMIT", "the agent reached a bound on connections or pending requests; retry later"},
    {"FF_AGENT_RANK_BUSY", "the target rank does not drain its registration connection"},
    {"FF_AGENT_INTERNAL", "a system call failed in an agent; its log names it"},
};

const char *ff_agent_refusal_name(ff_agent_refusal_t reason)
{
    return (unsigned) reason < FF_AGENT_REFUSAL_COUNT ? refusals[reason].name : "FF_AGENT_UNKNOWN_REFUSAL";
}

const char *ff_agent_refusal_describe(ff_agent_refusal_t reason)
{
    return (unsigned) reason < FF_AGENT_REFUSAL_COUNT ? refusals[reason].text : "unknown refusal";
}

static ff_status_t fail(ff_agent_conn_t *conn, int err, const char *what)
{
    if (conn) {
        snprintf(conn->error, sizeof(conn->error), "ffagent (%s): %s: %s", conn->path, what, strerror(err));
    }
    errno = err;
    return err == ENOENT ? FF_ERR_NOT_FOUND : FF_ERR_SYSTEM;
}

static ff_status_t refused(ff_agent_conn_t *conn, ff_agent_refusal_t reason, ff_agent_refusal_t *out)
{
    if (out) {
        *out = reason;
    }
    snprintf(conn->error, sizeof(conn->error), "ffagent (%s) refused: %s (%s)", conn->path,
             ff_agent_refusal_name(reason), ff_agent_refusal_describe(reason));
    return FF_ERR_FOREIGN_JOB;
}

static int open_job_socket(ff_agent_conn_t *conn)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, conn->path, sizeof(addr.sun_path));
    if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0) {
        const int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static void fill(const ff_agent_conn_t *conn, ff_job_msg_t *m, uint16_t type)
{
    memset(m, 0, sizeof(*m));
    m->magic = FF_JOB_MAGIC;
    m->version = FF_JOB_VERSION;
    m->type = type;
    m->owner_id = conn->owner_id;
    memcpy(m->key, conn->key.bytes, sizeof(m->key));
}

/* Receives one message and maybe a descriptor; returns bytes, 0 at EOF, -1 with errno. Extra descriptors
 * (a misbehaving sender) are closed so they cannot leak. */
static ssize_t recv_msg(int fd, ff_job_msg_t *m, int *passed, int flags)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } control;
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
    *passed = -1;
    ssize_t n;
    do {
        n = recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; ++i) {
                int got;
                memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (*passed < 0) {
                    *passed = got;
                } else {
                    close(got);
                }
            }
        }
    }
    if (n > 0 && ((size_t) n != sizeof(*m) || m->magic != FF_JOB_MAGIC || m->version != FF_JOB_VERSION)) {
        if (*passed >= 0) {
            close(*passed);
            *passed = -1;
        }
        errno = EPROTO;
        return -1;
    }
    return n;
}

static int wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r;
}

static void set_fd_mode(const ff_agent_conn_t *conn, int fd)
{
    /* O_NONBLOCK lives in the open file description that the agent created and passed on; the agent has
     * closed its copy, so setting it here affects nobody else. */
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) {
        fcntl(fd, F_SETFL, conn->nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
    }
}

ff_status_t ff_agent_register(const char *shared_dir, const ff_job_key_t *key, uint64_t owner_id, ff_agent_conn_t **out,
                              ff_agent_refusal_t *reason)
{
    if (!shared_dir || !key || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    ff_agent_conn_t *conn = calloc(1, sizeof(*conn));
    if (!conn) {
        return FF_ERR_NO_MEMORY;
    }
    if ((size_t) snprintf(conn->path, sizeof(conn->path), "%s/%s", shared_dir, FF_AGENT_SOCKET_NAME) >=
        sizeof(conn->path)) {
        free(conn);
        return FF_ERR_INVALID_ARGUMENT;
    }
    conn->key = *key;
    conn->owner_id = owner_id;
    conn->timeout_ms = 10000;
    ff_status_t status = FF_OK;
    conn->fd = open_job_socket(conn);
    if (conn->fd < 0) {
        status = fail(conn, errno,
                      "cannot connect to the agent's job socket (is ffagent running and is the job "
                      "registered with it?)");
        goto out;
    }
    ff_job_msg_t m;
    fill(conn, &m, FF_JOB_REGISTER);
    if (send(conn->fd, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t) sizeof(m)) {
        status = fail(conn, errno, "sending the registration");
        goto out;
    }
    const int r = wait_readable(conn->fd, conn->timeout_ms);
    if (r <= 0) {
        status = fail(conn, r == 0 ? ETIMEDOUT : errno, "waiting for the registration reply");
        goto out;
    }
    int passed;
    const ssize_t n = recv_msg(conn->fd, &m, &passed, 0);
    if (passed >= 0) {
        close(passed);
    }
    if (n <= 0) {
        status = fail(conn, n == 0 ? EPIPE : errno, "reading the registration reply (the agent closed the connection)");
        goto out;
    }
    if (m.type != FF_JOB_REPLY) {
        status = fail(conn, EPROTO, "unexpected message type in the registration reply");
        goto out;
    }
    if (reason) {
        *reason = (ff_agent_refusal_t) m.reason;
    }
    if (m.reason != FF_AGENT_OK) {
        status = refused(conn, (ff_agent_refusal_t) m.reason, reason);
        goto out;
    }
out:
    if (status != FF_OK) {
        /* The caller has no handle to ask, so the sentence goes to stderr, the only place it can go. */
        fprintf(stderr, "freeflow: %s\n", conn->error);
        if (conn->fd >= 0) {
            close(conn->fd);
        }
        free(conn);
        return status;
    }
    *out = conn;
    return FF_OK;
}

ff_status_t ff_agent_connect_start(ff_agent_conn_t *conn, uint64_t peer_owner_id, uint32_t peer_host, int *pending)
{
    if (!conn || !pending) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    *pending = -1;
    const int s = open_job_socket(conn);
    if (s < 0) {
        return fail(conn, errno, "cannot connect to the agent's job socket (did the agent die?)");
    }
    ff_job_msg_t m;
    fill(conn, &m, FF_JOB_CONNECT);
    m.peer_owner_id = peer_owner_id;
    m.peer_host = peer_host;
    if (send(s, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t) sizeof(m)) {
        const ff_status_t status = fail(conn, errno, "sending the connect request");
        close(s);
        return status;
    }
    *pending = s;
    return FF_OK;
}

ff_status_t ff_agent_connect_finish(ff_agent_conn_t *conn, int pending, int *fd, ff_agent_refusal_t *reason)
{
    if (!conn || !fd || pending < 0) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    *fd = -1;
    if (reason) {
        *reason = FF_AGENT_OK;
    }
    ff_status_t status = FF_OK;
    ff_job_msg_t m;
    int passed;
    const ssize_t n = recv_msg(pending, &m, &passed, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return FF_ERR_NOT_READY; /* the agents are still connecting and authenticating */
    }
    if (n <= 0) {
        status = fail(conn, n == 0 ? EPIPE : errno, "reading the connect reply (the agent closed the connection)");
    } else if (m.type != FF_JOB_REPLY || (m.reason == FF_AGENT_OK) != (passed >= 0)) {
        if (passed >= 0) {
            close(passed);
        }
        status = fail(conn, EPROTO, "malformed connect reply");
    } else if (m.reason != FF_AGENT_OK) {
        status = refused(conn, (ff_agent_refusal_t) m.reason, reason);
    } else {
        set_fd_mode(conn, passed);
        *fd = passed;
    }
    close(pending);
    return status;
}

ff_status_t ff_agent_connect(ff_agent_conn_t *conn, uint64_t peer_owner_id, uint32_t peer_host, int *fd,
                             ff_agent_refusal_t *reason)
{
    if (!conn || !fd) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    *fd = -1;
    if (reason) {
        *reason = FF_AGENT_OK;
    }
    int pending;
    const ff_status_t started = ff_agent_connect_start(conn, peer_owner_id, peer_host, &pending);
    if (started != FF_OK) {
        return started;
    }
    const int r = wait_readable(pending, conn->timeout_ms);
    if (r <= 0) {
        const ff_status_t status =
            fail(conn, r == 0 ? ETIMEDOUT : errno, "waiting for the agent to connect to the peer host");
        close(pending);
        return status;
    }
    return ff_agent_connect_finish(conn, pending, fd, reason);
}

ff_status_t ff_agent_accept(ff_agent_conn_t *conn, int *fd, uint64_t *peer_owner_id, uint32_t *peer_host)
{
    if (!conn || !fd) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    *fd = -1;
    ff_job_msg_t m;
    int passed;
    const ssize_t n = recv_msg(conn->fd, &m, &passed, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return FF_ERR_NOT_READY;
    }
    if (n <= 0) {
        return fail(conn, n == 0 ? EPIPE : errno,
                    "the registration connection closed: the host's ffagent died or removed this job");
    }
    if (m.type != FF_JOB_INCOMING || passed < 0) {
        if (passed >= 0) {
            close(passed);
        }
        return fail(conn, EPROTO, "unexpected message on the registration connection");
    }
    set_fd_mode(conn, passed);
    *fd = passed;
    if (peer_owner_id) {
        *peer_owner_id = m.peer_owner_id;
    }
    if (peer_host) {
        *peer_host = m.peer_host;
    }
    return FF_OK;
}

int ff_agent_fd(const ff_agent_conn_t *conn)
{
    return conn ? conn->fd : -1;
}

void ff_agent_set_nonblocking(ff_agent_conn_t *conn, bool nonblocking)
{
    if (conn) {
        conn->nonblocking = nonblocking;
    }
}

void ff_agent_set_timeout(ff_agent_conn_t *conn, int timeout_ms)
{
    if (conn) {
        conn->timeout_ms = timeout_ms;
    }
}

const char *ff_agent_error(const ff_agent_conn_t *conn)
{
    return conn ? conn->error : "no connection";
}

void ff_agent_close(ff_agent_conn_t *conn)
{
    if (conn) {
        close(conn->fd);
        free(conn);
    }
}

/* For agent_route.c (declared in agent_proto.h): opens a connection of its own to agent.sock, sends
 * ROUTE_OPEN with the sealed memfd attached and waits for the reply. On success `*route_fd` is that
 * connection: it carries doorbells from now on, and its EOF means the agent is gone. */
ff_status_t ff_agent_route_request(ff_agent_conn_t *conn, int memfd, int *route_fd, ff_agent_refusal_t *reason,
                                   char *error, size_t error_len)
{
    *route_fd = -1;
    if (reason) {
        *reason = FF_AGENT_OK;
    }
    const int s = open_job_socket(conn);
    ff_status_t status = FF_OK;
    if (s < 0) {
        status = fail(conn, errno, "cannot connect to the agent's job socket for the router (did the agent die?)");
        snprintf(error, error_len, "%s", conn->error);
        return status;
    }
    ff_job_msg_t m;
    fill(conn, &m, FF_JOB_ROUTE_OPEN);
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof(control));
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &memfd, sizeof(int));
    int passed = -1;
    ssize_t n = -1;
    int r = 0;
    if (sendmsg(s, &msg, MSG_NOSIGNAL) != (ssize_t) sizeof(m)) {
        status = fail(conn, errno, "sending the router request");
    } else if ((r = wait_readable(s, conn->timeout_ms)) <= 0) {
        status = fail(conn, r == 0 ? ETIMEDOUT : errno, "waiting for the agent to attach the router memory");
    } else if ((n = recv_msg(s, &m, &passed, 0)) <= 0) {
        status = fail(conn, n == 0 ? EPIPE : errno, "reading the router reply (the agent closed the connection)");
    } else if (m.type != FF_JOB_REPLY) {
        status = fail(conn, EPROTO, "unexpected message type in the router reply");
    } else if (m.reason != FF_AGENT_OK) {
        status = refused(conn, (ff_agent_refusal_t) m.reason, reason);
    }
    if (passed >= 0) {
        close(passed);
    }
    if (status != FF_OK) {
        snprintf(error, error_len, "%s", conn->error);
        close(s);
        return status;
    }
    *route_fd = s;
    return FF_OK;
}

const char *ff_agent_socket_path(const ff_agent_conn_t *conn)
{
    return conn->path;
}

uint64_t ff_agent_owner_id(const ff_agent_conn_t *conn)
{
    return conn->owner_id;
}

const ff_job_key_t *ff_agent_job_key(const ff_agent_conn_t *conn)
{
    return &conn->key;
}
