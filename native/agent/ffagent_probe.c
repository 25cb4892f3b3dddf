/*
 * ffagent_probe: a rank-like client of ffagent for the namespace tests and the benchmark. It uses only
 * the public client API (ff_agent_*), the way the BTL will.
 *
 *   serve <dir> <keyhex> <owner> [count]     register, then echo on `count` (default 1) handed-off sockets
 *   call  <dir> <keyhex> <owner> <peer owner> <peer host> [bytes]
 *                                            register, connect, send `bytes` (default 1 MiB) and check the echo
 *   hold  <dir> <keyhex> <owner>             register, then wait until the agent closes the registration
 *   bench-serve <dir> <keyhex> <owner>       register, accept one socket, run the benchmark's passive side
 *   bench-call  <dir> <keyhex> <owner> <peer owner> <peer host>
 *   tcp-serve <ip:port> | tcp-call <ip:port> the same benchmark over a plain TCP connection
 *   route-echo <dir> <keyhex> <owner> <peer host> <messages>
 *                                            register, open a router route, send every message received
 *                                            back to its sender (on <peer host>), `messages` of them
 *   route-call <dir> <keyhex> <owner> <peer owner> <peer host> <bytes>
 *                                            register, open a route, send `bytes` in 64 KiB messages
 *                                            through the routers, check the echo: "ok bytes=N"
 *   route-hold <dir> <keyhex> <owner>        register, open a route, wait until the agent closes it
 *   route-ping <dir> <keyhex> <owner> <peer owner> <peer host> <iterations> <first> [<yield after>]
 *                                            8-byte ping-pong through the routers; `first` 1 starts and
 *                                            prints "lat_us=<median half round trip>" (receives spin;
 *                                            with `yield after` N > 0 they yield the CPU after N empty
 *                                            polls, as the BTL does: ff_route_poll_pass), and prints
 *                                            "yields=<times it yielded>"
 * Output: one line per result on stdout. "registered" is printed (and flushed) once the agent accepted
 * the registration, so a test can start the next step. Exit status: 0 ok, 3 refused (prints
 * "refused <FF_AGENT_...>"), 1 any other failure (message on stderr).
 */
#define _GNU_SOURCE
#include "freeflow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static int fail(const char *what)
{
    fprintf(stderr, "ffagent_probe: %s: %s\n", what, strerror(errno));
    return 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* A number operand (decimal or 0x hex); anything else ends the run with exit status 2, naming it. */
static uint64_t parse_u64(const char *s)
{
    char *end;
    errno = 0;
    const unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "ffagent_probe: '%s' is not a number (see the usage at the top of ffagent_probe.c)\n", s);
        exit(2);
    }
    return v;
}

/* With `spin`, a receive spins on MSG_DONTWAIT a little, then blocks in poll: spinning alone collapses
 * when more runnable processes than the 2 vCPUs compete (4 ms time slices), blocking alone pays the
 * vCPU wake-up (about 40 us here). */
#define SPIN_TRIES 2000

/* Moves all `len` bytes between `buf` and the socket (receive: into buf); false when the peer closed or
 * the socket failed. A spinning receive retries EAGAIN SPIN_TRIES times, then sleeps in poll. */
static bool move_full(int fd, uint8_t *p, size_t len, bool receive, bool spin)
{
    int tries = 0;
    while (len) {
        const ssize_t n = receive ? recv(fd, p, len, spin ? MSG_DONTWAIT : 0) : send(fd, p, len, MSG_NOSIGNAL);
        if (receive && n < 0 && errno == EAGAIN && ++tries >= SPIN_TRIES) {
            struct pollfd w = {.fd = fd, .events = POLLIN};
            poll(&w, 1, -1);
            tries = 0;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= (size_t) n;
    }
    return true;
}

static bool read_full(int fd, void *buf, size_t len, bool spin)
{
    return move_full(fd, buf, len, true, spin);
}

static bool write_full(int fd, const void *buf, size_t len)
{
    return move_full(fd, (uint8_t *) buf, len, false, false); /* a send never writes into buf */
}

static uint8_t pattern(uint64_t seed, size_t i)
{
    return (uint8_t) ((i * 131u) ^ (seed * 7u) ^ (i >> 9));
}

static ff_agent_conn_t *do_register(const char *dir, const char *keyhex, uint64_t owner)
{
    ff_job_key_t key;
    if (ff_job_key_parse(keyhex, &key) != FF_OK) {
        fprintf(stderr, "ffagent_probe: bad key %s\n", keyhex);
        exit(1);
    }
    ff_agent_conn_t *conn;
    ff_agent_refusal_t reason = FF_AGENT_OK;
    const ff_status_t s = ff_agent_register(dir, &key, owner, &conn, &reason);
    if (s == FF_ERR_FOREIGN_JOB) {
        printf("refused %s\n", ff_agent_refusal_name(reason));
        exit(3);
    }
    if (s != FF_OK) {
        fprintf(stderr, "ffagent_probe: register: %s\n", ff_status_name(s));
        exit(1);
    }
    printf("registered\n");
    fflush(stdout);
    return conn;
}

/* Waits for one handed-off socket, as a BTL progress loop would: poll the registration fd. */
static int wait_incoming(ff_agent_conn_t *conn, uint64_t *peer, uint32_t *host)
{
    for (;;) {
        struct pollfd p = {.fd = ff_agent_fd(conn), .events = POLLIN};
        if (poll(&p, 1, 20000) <= 0) {
            fprintf(stderr, "ffagent_probe: no channel arrived within 20 s\n");
            return -1;
        }
        int fd;
        const ff_status_t s = ff_agent_accept(conn, &fd, peer, host);
        if (s == FF_OK) {
            return fd;
        }
        if (s != FF_ERR_NOT_READY) {
            fprintf(stderr, "ffagent_probe: %s\n", ff_agent_error(conn));
            return -1;
        }
    }
}

/* `nonblocking`: the way a progress loop would, start the request, poll, finish; else the blocking call.
 * The tests use the first (call), the benchmark the second (bench-call), so both are exercised. */
static int connect_peer(ff_agent_conn_t *conn, uint64_t peer, uint32_t host, bool nonblocking)
{
    int fd = -1;
    ff_agent_refusal_t reason = FF_AGENT_OK;
    ff_status_t s;
    if (nonblocking) {
        int pending;
        s = ff_agent_connect_start(conn, peer, host, &pending);
        int polls = 0;
        while (s == FF_OK) {
            struct pollfd p = {.fd = pending, .events = POLLIN};
            poll(&p, 1, 100);
            ++polls;
            s = ff_agent_connect_finish(conn, pending, &fd, &reason);
            if (s != FF_ERR_NOT_READY) {
                break;
            }
            if (polls > 100) {
                fprintf(stderr, "ffagent_probe: no answer to the connect request within 10 s\n");
                exit(1);
            }
            s = FF_OK;
        }
    } else {
        s = ff_agent_connect(conn, peer, host, &fd, &reason);
    }
    if (s == FF_ERR_FOREIGN_JOB) {
        printf("refused %s\n", ff_agent_refusal_name(reason));
        fflush(stdout);
        exit(3);
    }
    if (s != FF_OK) {
        fprintf(stderr, "ffagent_probe: connect: %s: %s\n", ff_status_name(s), ff_agent_error(conn));
        exit(1);
    }
    return fd;
}

/* Echo protocol: u64 length, then that many bytes in CHUNK pieces, each echoed back before the next. */
static int echo_serve(int fd, uint64_t peer, uint32_t host)
{
    uint64_t total;
    if (!read_full(fd, &total, sizeof(total), false)) {
        return fail("reading the length");
    }
    static uint8_t buf[CHUNK];
    uint64_t done = 0;
    while (done < total) {
        const size_t n = total - done < CHUNK ? (size_t) (total - done) : CHUNK;
        if (!read_full(fd, buf, n, false) || !write_full(fd, buf, n)) {
            return fail("echo");
        }
        done += n;
    }
    printf("served peer=%016llx host=%u bytes=%llu\n", (unsigned long long) peer, host, (unsigned long long) total);
    fflush(stdout);
    close(fd);
    return 0;
}

static int echo_call(int fd, uint64_t seed, uint64_t total)
{
    static uint8_t out[CHUNK], in[CHUNK];
    if (!write_full(fd, &total, sizeof(total))) {
        return fail("sending the length");
    }
    for (uint64_t done = 0; done < total;) {
        const size_t n = total - done < CHUNK ? (size_t) (total - done) : CHUNK;
        for (size_t i = 0; i < n; ++i) {
            out[i] = pattern(seed, done + i);
        }
        if (!write_full(fd, out, n) || !read_full(fd, in, n, false)) {
            return fail("exchanging data");
        }
        if (memcmp(in, out, n) != 0) {
            fprintf(stderr, "ffagent_probe: echoed bytes differ at offset %llu\n", (unsigned long long) done);
            return 1;
        }
        done += n;
    }
    printf("ok bytes=%llu\n", (unsigned long long) total);
    return 0;
}

/* ---- benchmark: 8 B ping-pong (spin-then-block receive), then 4 MiB messages streamed. */
#define PP_ITERS 5000
#define PP_WARM  500
#define BW_MSG   (4u << 20)
#define BW_COUNT 16

static double setup_us = -1; /* bench-call: how long the channel took to set up */

static int bench(int fd, bool active)
{
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char small[8] = {0};
    double t0 = 0;
    for (int i = 0; i < PP_WARM + PP_ITERS; ++i) {
        if (i == PP_WARM) {
            t0 = now_s();
        }
        if (active) {
            if (!write_full(fd, small, 8) || !read_full(fd, small, 8, true)) {
                return fail("ping-pong");
            }
        } else if (!read_full(fd, small, 8, true) || !write_full(fd, small, 8)) {
            return fail("ping-pong");
        }
    }
    const double lat_us = (now_s() - t0) / PP_ITERS / 2 * 1e6;
    uint8_t *buf = malloc(BW_MSG);
    if (!buf) {
        return fail("malloc");
    }
    memset(buf, 1, BW_MSG);
    double bw = 0;
    if (active) {
        const double t1 = now_s();
        for (int i = 0; i < BW_COUNT; ++i) {
            if (!write_full(fd, buf, BW_MSG)) {
                return fail("stream");
            }
        }
        if (!read_full(fd, small, 1, true)) {
            return fail("stream ack");
        }
        bw = (double) BW_MSG * BW_COUNT / (now_s() - t1) / 1e9;
        if (setup_us >= 0) {
            printf("lat_us=%.2f bw_GBps=%.3f setup_us=%.0f\n", lat_us, bw, setup_us);
        } else {
            printf("lat_us=%.2f bw_GBps=%.3f\n", lat_us, bw);
        }
    } else {
        for (int i = 0; i < BW_COUNT; ++i) {
            if (!read_full(fd, buf, BW_MSG, true)) {
                return fail("stream");
            }
        }
        if (!write_full(fd, small, 1)) {
            return fail("stream ack");
        }
    }
    free(buf);
    close(fd);
    return 0;
}

static bool parse_endpoint(const char *text, struct sockaddr_in *out)
{
    char ip[64];
    snprintf(ip, sizeof(ip), "%s", text);
    char *colon = strrchr(ip, ':');
    if (!colon) {
        return false;
    }
    *colon = 0;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t) atoi(colon + 1));
    return inet_pton(AF_INET, ip, &out->sin_addr) == 1;
}

/* ---- the `r` plane: through the agents' routers ---- */

static uint8_t pattern_byte(uint64_t i)
{
    return (uint8_t) (i * 7u + 13u + (i >> 16));
}

/* Waits for a message: spins on the ring a little, then sleeps 50 us at a time (the probe is a test
 * client, not a benchmark). Fails if the agent closes the route or nothing arrives for 10 s. */
static bool route_wait(ff_route_t *route, ff_route_msg_t *msg)
{
    const double deadline = now_s() + 10;
    for (unsigned spins = 0;; ++spins) {
        if (ff_route_peek(route, msg)) {
            return true;
        }
        if (ff_route_check(route) != FF_OK) {
            printf("agent-gone %s\n", ff_route_error(route));
            fflush(stdout);
            return false;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "ffagent_probe: nothing arrived through the router in 10 s\n");
            return false;
        }
        if (spins > 2000) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
}

static void *route_reserve_wait(ff_route_t *route, uint64_t dst, uint32_t host, uint32_t len)
{
    void *p;
    while (!(p = ff_route_reserve(route, dst, host, len))) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
        if (ff_route_check(route) != FF_OK) {
            return NULL;
        }
    }
    return p;
}

static ff_route_t *open_route(ff_agent_conn_t *conn)
{
    ff_route_t *route;
    ff_agent_refusal_t why = FF_AGENT_OK;
    if (ff_route_open(conn, &route, &why) != FF_OK) {
        if (why != FF_AGENT_OK) {
            printf("refused %s\n", ff_agent_refusal_name(why));
            exit(3);
        }
        fprintf(stderr, "ffagent_probe: cannot open the route\n");
        exit(1);
    }
    printf("routed\n");
    fflush(stdout);
    return route;
}

static int route_echo(ff_route_t *route, uint32_t peer_host, long messages)
{
    uint64_t bytes = 0;
    for (long i = 0; i < messages; ++i) {
        ff_route_msg_t m;
        if (!route_wait(route, &m)) {
            return 1;
        }
        void *out = route_reserve_wait(route, m.src_owner, peer_host, m.len);
        if (!out) {
            return 1;
        }
        memcpy(out, m.data, m.len);
        const uint8_t tag = m.tag;
        const uint32_t len = m.len;
        ff_route_consume(route);
        ff_route_commit(route, out, len, len, tag);
        bytes += len;
    }
    printf("echoed messages=%ld bytes=%llu\n", messages, (unsigned long long) bytes);
    while (!ff_route_sent_all(route)) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int route_call(ff_route_t *route, uint64_t peer, uint32_t peer_host, uint64_t bytes)
{
    const uint32_t chunk = 65536;
    uint64_t sent = 0, got = 0;
    const double t0 = now_s();
    while (got < bytes) {
        /* keep at most 1 MiB ahead of the echo */
        while (sent < bytes && sent - got < (1u << 20)) {
            const uint32_t len = bytes - sent < chunk ? (uint32_t) (bytes - sent) : chunk;
            uint8_t *p = ff_route_reserve(route, peer, peer_host, len);
            if (!p) {
                break;
            }
            for (uint32_t k = 0; k < len; ++k) {
                p[k] = pattern_byte(sent + k);
            }
            ff_route_commit(route, p, len, len, 42);
            sent += len;
        }
        ff_route_msg_t m;
        if (!route_wait(route, &m)) {
            return 1;
        }
        if (m.src_owner != peer || m.tag != 42) {
            fprintf(stderr, "ffagent_probe: echo from %016llx tag %u, expected %016llx tag 42\n",
                    (unsigned long long) m.src_owner, m.tag, (unsigned long long) peer);
            return 1;
        }
        const uint8_t *d = m.data;
        for (uint32_t k = 0; k < m.len; ++k) {
            if (d[k] != pattern_byte(got + k)) {
                fprintf(stderr, "ffagent_probe: byte %llu differs\n", (unsigned long long) (got + k));
                return 1;
            }
        }
        got += m.len;
        ff_route_consume(route);
    }
    printf("ok bytes=%llu seconds=%.3f\n", (unsigned long long) got, now_s() - t0);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

/* Spins on the ring (the latency benchmark's receive; the agents do the blocking). */
static unsigned long route_yields; /* passes in which ff_route_poll_pass gave the CPU away */

static bool route_spin(ff_route_t *route, ff_route_msg_t *msg)
{
    for (unsigned long spins = 0;; ++spins) {
        if (ff_route_peek(route, msg)) {
            (void) ff_route_poll_pass(route, true);
            return true;
        }
        route_yields += ff_route_poll_pass(route, false);
        if ((spins & 0xfffff) == 0 && ff_route_check(route) != FF_OK) {
            fprintf(stderr, "ffagent_probe: %s\n", ff_route_error(route));
            return false;
        }
    }
}

static int route_ping(ff_route_t *route, uint64_t peer, uint32_t peer_host, long iterations, bool first)
{
    double *t = calloc((size_t) iterations, sizeof(double));
    for (long i = 0; i < iterations + 100; ++i) {
        const double t0 = now_s();
        if (first) {
            void *p = route_reserve_wait(route, peer, peer_host, 8);
            memset(p, 1, 8);
            ff_route_commit(route, p, 8, 8, 1);
        }
        ff_route_msg_t m;
        if (!route_spin(route, &m)) {
            return 1;
        }
        ff_route_consume(route);
        if (!first) {
            void *p = route_reserve_wait(route, peer, peer_host, 8);
            memset(p, 2, 8);
            ff_route_commit(route, p, 8, 8, 1);
        } else if (i >= 100) {
            t[i - 100] = (now_s() - t0) * 1e6 / 2;
        }
    }
    if (first) {
        qsort(t, (size_t) iterations, sizeof(double), cmp_double);
        printf("lat_us=%.2f\n", t[iterations / 2]);
    }
    printf("yields=%lu\n", route_yields);
    while (!ff_route_sent_all(route)) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    free(t);
    return 0;
}

/* Positional on purpose, not ff_cli's option table: a command word and its operands, like the control protocol it
 * speaks; it has no options, and only test/agent/ and bench/agent scripts call it. */
int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of native/agent/ffagent_probe.c\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "tcp-serve") || !strcmp(cmd, "tcp-call")) {
        struct sockaddr_in addr;
        if (!parse_endpoint(argv[2], &addr)) {
            fprintf(stderr, "ffagent_probe: bad endpoint %s\n", argv[2]);
            return 2;
        }
        const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (!strcmp(cmd, "tcp-serve")) {
            if (bind(s, (struct sockaddr *) &addr, sizeof(addr)) || listen(s, 1)) {
                return fail("listen");
            }
            printf("registered\n");
            fflush(stdout);
            const int fd = accept(s, NULL, NULL);
            close(s);
            return fd < 0 ? fail("accept") : bench(fd, false);
        }
        for (int tries = 0; connect(s, (struct sockaddr *) &addr, sizeof(addr)) != 0; ++tries) {
            if (tries > 100) {
                return fail("connect");
            }
            usleep(20000);
        }
        return bench(s, true);
    }
    if (argc < 5) {
        fprintf(stderr, "usage: ffagent_probe %s <dir> <keyhex> <owner> ...\n", cmd);
        return 2;
    }
    const uint64_t owner = parse_u64(argv[4]);
    if (!strcmp(cmd, "serve") || !strcmp(cmd, "bench-serve")) {
        const int count = argc > 5 ? (int) parse_u64(argv[5]) : 1;
        ff_agent_conn_t *conn = do_register(argv[2], argv[3], owner);
        for (int i = 0; i < count; ++i) {
            uint64_t peer;
            uint32_t host;
            const int fd = wait_incoming(conn, &peer, &host);
            if (fd < 0) {
                return 1;
            }
            const int rc = !strcmp(cmd, "serve") ? echo_serve(fd, peer, host) : bench(fd, false);
            if (rc) {
                return rc;
            }
        }
        ff_agent_close(conn);
        return 0;
    }
    if (!strcmp(cmd, "call") || !strcmp(cmd, "bench-call")) {
        if (argc < 7) {
            fprintf(stderr, "usage: ffagent_probe %s <dir> <keyhex> <owner> <peer owner> <peer host> [bytes]\n", cmd);
            return 2;
        }
        ff_agent_conn_t *conn = do_register(argv[2], argv[3], owner);
        const double t0 = now_s();
        const int fd = connect_peer(conn, parse_u64(argv[5]), (uint32_t) parse_u64(argv[6]), !strcmp(cmd, "call"));
        setup_us = (now_s() - t0) * 1e6;
        const int rc =
            !strcmp(cmd, "call") ? echo_call(fd, owner, argc > 7 ? parse_u64(argv[7]) : (1u << 20)) : bench(fd, true);
        ff_agent_close(conn);
        return rc;
    }
    if (!strcmp(cmd, "hold")) {
        ff_agent_conn_t *conn = do_register(argv[2], argv[3], owner);
        /* A rank's progress loop: poll the registration fd; readable with no socket means the agent is gone. */
        for (;;) {
            struct pollfd p = {.fd = ff_agent_fd(conn), .events = POLLIN};
            if (poll(&p, 1, 60000) <= 0) {
                fprintf(stderr, "ffagent_probe: the agent never went away\n");
                return 1;
            }
            int fd;
            const ff_status_t s = ff_agent_accept(conn, &fd, NULL, NULL);
            if (s == FF_OK) {
                close(fd);
                continue;
            }
            if (s != FF_ERR_NOT_READY) {
                printf("agent-gone %s\n", ff_agent_error(conn));
                ff_agent_close(conn);
                return 0;
            }
        }
    }
    if (!strcmp(cmd, "route-echo") && argc > 6) {
        ff_agent_conn_t *conn = do_register(argv[2], argv[3], owner);
        ff_route_t *route = open_route(conn);
        const int rc = route_echo(route, (uint32_t) parse_u64(argv[5]), (long) parse_u64(argv[6]));
        ff_route_close(route);
        ff_agent_close(conn);
        return rc;
    }
    if (!strcmp(cmd, "route-call") && argc > 7) {
        ff_agent_conn_t *conn = do_register(argv[2], argv[3], owner);
        ff_route_t *route = open_route(conn);
        const int rc = route_call(route, parse_u64(argv[5]), (uint32_t) parse_u64(argv[6]), parse_u64(argv[7]));
        ff_route_close(route);
        ff_agent_close(conn);
        return rc;
    }
    if (!strcmp(cmd, "route-ping") && argc > 8) {
        ff_agent_conn_t *conn = do_register(argv[2], argv[3], owner);
        ff_route_t *route = open_route(conn);
        ff_route_set_yield(route, argc > 9 ? (unsigned) parse_u64(argv[9]) : 0u);
        const int rc = route_ping(route, parse_u64(argv[5]), (uint32_t) parse_u64(argv[6]), (long) parse_u64(argv[7]),
                                  parse_u64(argv[8]) == 1);
        ff_route_close(route);
        ff_agent_close(conn);
        return rc;
    }
    if (!strcmp(cmd, "route-hold")) {
        ff_agent_conn_t *conn = do_register(argv[2], argv[3], owner);
        ff_route_t *route = open_route(conn);
        ff_route_msg_t m;
        const bool got = route_wait(route, &m);
        ff_route_close(route);
        ff_agent_close(conn);
        return got ? 1 : 0;
    }
    fprintf(stderr,
            "ffagent_probe: unknown command %s, or too few operands for it (see the usage at the top of "
            "ffagent_probe.c)\n",
            cmd);
    return 2;
}
