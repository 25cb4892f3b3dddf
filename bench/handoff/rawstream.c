/*
 * A plain TCP socket between two processes, for bench/handoff/raw.sh: the ceiling path `h` can reach
 * (a handed-off socket is an ordinary host-network TCP socket) and the overlay's, measured without MPI.
 *
 *   rawstream --serve <ipv4>:<port> --recv <mode>    accepts one connection, then mirrors the caller
 *   rawstream --call <ipv4>:<port> --recv <mode> [--bytes <size per message>] [--messages <n>]
 *
 * recv modes: spin   non-blocking recv in a loop (what an MPI progress loop does)
 *             block  blocking recv(MSG_WAITALL) of the whole known size (the kernel wakes us)
 *             hybrid spin HYBRID_SPINS empty tries, then poll() with a timeout, then recv again
 * The caller measures 8 B ping-pong (half round trip) and a stream: messages of the given size (default
 * 4M; the size syntax of native/cli/ff_cli.h) in windows of 64, one 1-byte ack per window (like
 * ffbench_mpi's bw); it tells the server the size and count first. It prints
 *   lat_us=<> bw_MBps=<> cwnd=<segments> rtt_us=<> retrans=<> mss=<>
 * and both sides print their CPU time and scheduler wait during the stream (from /proc/self/schedstat:
 * time on a CPU, time runnable but waiting, number of times scheduled).
 */
#define _GNU_SOURCE
#include "ff_cli.h"
#include "ffbench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LATENCY_ITERATIONS 5000
#define LATENCY_WARMUP     500
#define WINDOW             64
#define HYBRID_SPINS       2000
#define MAX_BYTES          (1u << 30)
#define MAX_MESSAGES       (1u << 20)

enum mode { SPIN, BLOCK, HYBRID };
static enum mode mode;

static void die_errno(const char *what)
{
    fprintf(stderr, "rawstream: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec * 1e6 + (double) t.tv_nsec / 1e3;
}

static void receive(int fd, void *buffer, size_t length)
{
    unsigned char *at = buffer;
    unsigned spins = 0;
    while (length > 0) {
        ssize_t n;
        if (BLOCK == mode) {
            n = recv(fd, at, length, MSG_WAITALL);
        } else {
            n = recv(fd, at, length, MSG_DONTWAIT);
            if (n < 0 && (EAGAIN == errno || EWOULDBLOCK == errno)) {
                if (HYBRID == mode && ++spins >= HYBRID_SPINS) {
                    struct pollfd p = {.fd = fd, .events = POLLIN};
                    (void) poll(&p, 1, 1000);
                    spins = 0;
                }
                continue;
            }
        }
        if (n == 0) {
            fprintf(stderr, "rawstream: peer closed\n");
            exit(1);
        }
        if (n < 0) {
            if (EINTR == errno) continue;
            die_errno("recv");
        }
        at += n;
        length -= (size_t) n;
        spins = 0;
    }
}

static void send_all(int fd, const void *buffer, size_t length)
{
    const unsigned char *at = buffer;
    while (length > 0) {
        ssize_t n = send(fd, at, length, MSG_NOSIGNAL);
        if (n < 0) {
            if (EINTR == errno) continue;
            die_errno("send");
        }
        at += n;
        length -= (size_t) n;
    }
}

typedef struct {
    double run_ms, wait_ms, slices, cpu_ms;
} usage_t;

static usage_t usage_now(void)
{
    usage_t u = {0};
    FILE *f = fopen("/proc/self/schedstat", "r");
    if (f) {
        unsigned long long run = 0, wait = 0, slices = 0;
        if (3 == fscanf(f, "%llu %llu %llu", &run, &wait, &slices)) {
            u.run_ms = (double) run / 1e6;
            u.wait_ms = (double) wait / 1e6;
            u.slices = (double) slices;
        }
        fclose(f);
    }
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    u.cpu_ms = (double) r.ru_utime.tv_sec * 1e3 + (double) r.ru_utime.tv_usec / 1e3 + (double) r.ru_stime.tv_sec * 1e3 +
               (double) r.ru_stime.tv_usec / 1e3;
    return u;
}

static void print_usage(const char *side, usage_t a, usage_t b, double elapsed_ms)
{
    fprintf(stderr, "%s: stream %.1f ms: cpu %.1f ms, on-cpu %.1f ms, runnable-waiting %.1f ms, scheduled %.0f times\n",
            side, elapsed_ms, b.cpu_ms - a.cpu_ms, b.run_ms - a.run_ms, b.wait_ms - a.wait_ms, b.slices - a.slices);
}

static const char *serve_at, *call_at;
static int recv_mode = -1;
static size_t message_bytes = 4u << 20;
static long message_count = 256; /* a multiple of WINDOW */
static bool sizes_given;
static const ff_choice recv_modes[] = {{"spin", SPIN}, {"block", BLOCK}, {"hybrid", HYBRID}, {0}};
static const ff_option options[] = {
    {"serve", FF_OPT_STRING, &serve_at, 0, 0, "accept one connection here, then mirror the caller",
     .value_name = "IPV4:PORT"},
    {"call", FF_OPT_STRING, &call_at, 0, 0, "connect there and stream", .value_name = "IPV4:PORT"},
    {"recv", FF_OPT_CHOICE, &recv_mode, 0, 0, "how recv waits", .choices = recv_modes, .required = true},
    {"bytes", FF_OPT_SIZE, &message_bytes, 1, MAX_BYTES, "bytes per streamed message (caller)", .given = &sizes_given},
    {"messages", FF_OPT_LONG, &message_count, WINDOW, MAX_MESSAGES, "messages, a multiple of 64 (caller)",
     .given = &sizes_given},
    {0},
};
static const ff_cli cli = {.program = "rawstream",
                           .usage = "--serve <ipv4>:<port> --recv spin|block|hybrid\n"
                                    "       rawstream --call <ipv4>:<port> --recv spin|block|hybrid [--bytes <size>] "
                                    "[--messages <n>]",
                           .tables = {options}};

static void usage_error(const char *problem)
{
    exit(ff_cli_refuse(&cli, problem));
}

static struct sockaddr_in parse_address(const char *text)
{
    struct sockaddr_in address = {.sin_family = AF_INET};
    char host[64], message[160];
    const char *colon = strrchr(text, ':');
    long port = 0;
    if (!colon || (size_t) (colon - text) >= sizeof(host) || !ff_parse_whole(colon + 1, 1, 65535, &port)) {
        snprintf(message, sizeof(message), "address '%s' is not <ipv4>:<port>", text);
        usage_error(message);
    }
    memcpy(host, text, (size_t) (colon - text));
    host[colon - text] = 0;
    if (1 != inet_pton(AF_INET, host, &address.sin_addr)) {
        snprintf(message, sizeof(message), "'%s' is not an IPv4 address", host);
        usage_error(message);
    }
    address.sin_port = htons((uint16_t) port);
    return address;
}

int main(int argc, char **argv)
{
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, true);
    if (status != FF_CLI_PROCEED) return status;
    if (message_count % WINDOW) usage_error("--messages wants a multiple of 64 (the stream is acked per 64)");
    if (!serve_at == !call_at) usage_error("give either --serve or --call");
    if (serve_at && sizes_given) usage_error("--bytes and --messages are the caller's: it tells the server");
    uint32_t sizes[2] = {(uint32_t) message_bytes, (uint32_t) message_count}; /* bytes per message, messages */
    mode = (enum mode) recv_mode;
    const int serving = serve_at != NULL;
    struct sockaddr_in address = parse_address(serving ? serve_at : call_at);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die_errno("socket");
    const int one = 1;
    if (serving) {
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &address, sizeof(address)) < 0) die_errno("bind");
        if (listen(fd, 1) < 0) die_errno("listen");
        int connected = accept(fd, NULL, NULL);
        if (connected < 0) die_errno("accept");
        close(fd);
        fd = connected;
    } else {
        double deadline = now_us() + 5e6;
        while (connect(fd, (struct sockaddr *) &address, sizeof(address)) < 0) {
            if (now_us() > deadline) die_errno("connect");
            close(fd);
            usleep(10000);
            fd = socket(AF_INET, SOCK_STREAM, 0);
        }
    }
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* The caller's sizes are the run's: the server takes them before anything else. */
    if (serving) {
        receive(fd, sizes, sizeof(sizes));
        if (sizes[0] == 0 || sizes[0] > MAX_BYTES || sizes[1] > MAX_MESSAGES || sizes[1] % WINDOW) {
            fprintf(stderr, "rawstream: the caller asked for %u x %u bytes: not a rawstream caller?\n", sizes[1],
                    sizes[0]);
            return 1;
        }
    } else
        send_all(fd, sizes, sizeof(sizes));
    const size_t bytes = sizes[0], messages = sizes[1];
    unsigned char *buffer = malloc(bytes ? bytes : 1);
    if (!buffer) die_errno("malloc");
    memset(buffer, 1, bytes);

    char small[8] = {0};
    double start = 0;
    for (int i = 0; i < LATENCY_WARMUP + LATENCY_ITERATIONS; ++i) {
        if (LATENCY_WARMUP == i) start = now_us();
        if (serving) {
            receive(fd, small, sizeof(small));
            send_all(fd, small, sizeof(small));
        } else {
            send_all(fd, small, sizeof(small));
            receive(fd, small, sizeof(small));
        }
    }
    const double latency_us = (now_us() - start) / LATENCY_ITERATIONS / 2;

    /* stream: the caller sends, the server receives; one warm-up window */
    char ack = 0;
    usage_t before = {0};
    for (size_t i = 0; i < messages + WINDOW; ++i) {
        if (WINDOW == i) start = now_us(), before = usage_now();
        if (serving)
            receive(fd, buffer, bytes);
        else
            send_all(fd, buffer, bytes);
        if (WINDOW - 1 == i % WINDOW) {
            if (serving)
                send_all(fd, &ack, 1);
            else
                receive(fd, &ack, 1);
        }
    }
    const double elapsed_us = now_us() - start;
    print_usage(serving ? "receiver" : "sender", before, usage_now(), elapsed_us / 1e3);
    if (!serving) {
        struct tcp_info info;
        socklen_t length = sizeof(info);
        memset(&info, 0, sizeof(info));
        (void) getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length);
        printf("lat_us=%.2f bw_MBps=%.0f cwnd=%u rtt_us=%u retrans=%u mss=%u\n", latency_us,
               (double) bytes * (double) messages / elapsed_us, info.tcpi_snd_cwnd, info.tcpi_rtt,
               info.tcpi_total_retrans, info.tcpi_snd_mss);
    }
    free(buffer);
    close(fd);
    return 0;
}
