/*
 * ffbench_poll: 8 B ping-pong latency through the real segment and ring code while N other producers
 * have claimed rings in each receiver's segment but stay silent (issue 10 item 2). No MPI: two
 * processes pinned to two cores, each polling its own segment's rings the way the BTL's progress does
 * (btl/btl_freeflow_recv.c), either
 *   scan      every claimed ring on every pass (the BTL before the poll schedule), or
 *   schedule  ff_poll_schedule: busy rings every pass, idle ones round-robin (the BTL now).
 * Every (round, idle count, poll) is one fresh pair of segments, timed in batches of 100 round trips
 * whose median is the configuration's figure (preempted batches drop out); rounds interleave all
 * configurations, and the summary gives medians over rounds with min and max, and each configuration's
 * latency over the same round's latency with no idle peer (paired ratios).
 *
 *   ffbench_poll [--idle 0,7,31,63] [--poll scan,schedule] [--rounds 7] [--iterations 20000]
 *                [--warmup 2000] [--cpus 0,1] [--idle-after 1024] [--idle-per-pass 1] [--gap-us 0] [--json]
 *
 * --gap-us N: a silence of N us before every round trip (each then timed on its own), long enough for
 * the receiver to count the sender's ring idle: the latency of a peer's first message after a pause,
 * which the poll schedule bounds by ceil(rings / idle-per-pass) passes.
 */
#define _GNU_SOURCE
#include "ff_cli.h"
#include "ffbench_common.h"
#include "freeflow.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    BATCH_TRIPS = 100,
    MAX_LIST = 16,
    MAX_RINGS = 64,
    RING_SIZE = 1u << 16,
    PING = 1,
    PONG = 2,
    IDLE_BASE = 100,
    BATCH = 32
};
enum poll_kind { POLL_SCAN, POLL_SCHEDULE };
static const char *const POLL_NAMES[] = {"scan", "schedule"};

struct options {
    unsigned idle[MAX_LIST];
    size_t idle_count;
    enum poll_kind polls[2];
    size_t poll_count;
    unsigned rounds, iterations, warmup, idle_after, idle_per_pass, gap_us;
    int cpus[2];
    int json;
};

static void parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .idle = {0, 7, 31, 63}, .idle_count = 4, .polls = {POLL_SCAN, POLL_SCHEDULE}, .poll_count = 2, .cpus = {0, 1}};
    long rounds = 7, iterations = 20000, warmup = 2000, idle_after = 1024, idle_per_pass = 1, gap_us = 0;
    const char *idle = NULL, *polls = NULL, *cpus = NULL;
    bool json = false;
    const ff_option options[] = {
        {"idle", FF_OPT_STRING, &idle, 0, 0, "idle ring counts to try, up to 16 (default 0,7,31,63)",
         .value_name = "N,..."},
        {"poll", FF_OPT_STRING, &polls, 0, 0, "polling to try: scan, schedule or both (default scan,schedule)",
         .value_name = "LIST"},
        {"rounds", FF_OPT_LONG, &rounds, 1, 100, "rounds of every configuration"},
        {"iterations", FF_OPT_LONG, &iterations, BATCH_TRIPS, 100000000, "round trips per round"},
        {"warmup", FF_OPT_LONG, &warmup, 0, 100000000, "untimed round trips first"},
        {"idle-after", FF_OPT_LONG, &idle_after, 0, 1L << 30, "empty polls before the schedule counts a ring idle"},
        {"gap-us", FF_OPT_LONG, &gap_us, 0, 1000000, "microseconds between round trips"},
        {"idle-per-pass", FF_OPT_LONG, &idle_per_pass, 0, MAX_RINGS, "idle rings the schedule visits per pass"},
        {"cpus", FF_OPT_STRING, &cpus, 0, 0, "the two CPUs (default 0,1)", .value_name = "A,B"},
        {"json", FF_OPT_FLAG, &json, 0, 0, "print JSON"},
        {0},
    };
    const ff_cli cli = {.program = "ffbench_poll", .usage = "[options]", .tables = {options}};
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, true);
    if (status != FF_CLI_PROCEED) exit(status);
    char words[MAX_LIST][16];
    if (idle) {
        o->idle_count = ff_split_list(idle, &words[0][0], sizeof words[0], MAX_LIST);
        for (size_t i = 0; i < o->idle_count; i++) {
            long count;
            if (!ff_parse_whole(words[i], 0, MAX_RINGS - 1, &count)) o->idle_count = 0;
            o->idle[i] = (unsigned) count;
        }
        if (!o->idle_count)
            exit(ff_cli_refusef(&cli, "--idle wants up to 16 counts from 0 to %d, not '%s'", MAX_RINGS - 1, idle));
    }
    if (polls) {
        o->poll_count = ff_split_list(polls, &words[0][0], sizeof words[0], 2);
        for (size_t i = 0; i < o->poll_count; i++) {
            o->polls[i] = strcmp(words[i], "scan") ? POLL_SCHEDULE : POLL_SCAN;
            if (strcmp(words[i], "scan") && strcmp(words[i], "schedule")) o->poll_count = 0;
        }
        if (!o->poll_count)
            exit(ff_cli_refusef(&cli, "--poll wants scan, schedule or both (comma-separated), not '%s'", polls));
    }
    if (cpus && !parse_cpus(cpus, o->cpus))
        exit(ff_cli_refusef(&cli, "--cpus wants two CPU numbers, e.g. 0,1, not '%s'", cpus));
    o->rounds = (unsigned) rounds;
    o->iterations = (unsigned) iterations;
    o->warmup = (unsigned) warmup;
    o->idle_after = (unsigned) idle_after;
    o->idle_per_pass = (unsigned) idle_per_pass;
    o->gap_us = (unsigned) gap_us;
    o->json = json;
}

/* ---- one side of the ping-pong ------------------------------------------------------------------- */

struct side {
    ff_ring_rx_t rx[MAX_RINGS];
    bool dead[MAX_RINGS];
    uint32_t rings;
    ff_ring_tx_t tx; /* to the other side */
    ff_poll_schedule_t schedule;
    enum poll_kind poll;
    const _Atomic uint32_t *claimed; /* our segment's claim counter, read once per pass as the BTL does */
    uint32_t cursor;
    uint64_t received;
};

/* The BTL calls ob1's callback through a table; an indirect call here too. */
typedef void (*handler_t)(struct side *side, const ff_ring_record_t *record);
static void count_record(struct side *side, const ff_ring_record_t *record)
{
    (void) record;
    ++side->received;
}
static handler_t volatile handler = count_record;
/* the BTL's per-ring (scan) or per-pass (schedule) try-lock reads opal_using_threads(): one load */
static volatile bool using_threads;

static unsigned drain_ring(struct side *side, uint32_t ring)
{
    ff_ring_record_t record;
    unsigned taken = 0;
    while (taken < BATCH && ff_ring_peek(&side->rx[ring], &record)) {
        handler(side, &record);
        ff_ring_consume(&side->rx[ring]);
        ++taken;
    }
    if (side->rx[ring].broken) {
        side->dead[ring] = true;
    }
    return taken;
}

static int poll_pass(struct side *side)
{
    int handled = 0;
    if (side->poll == POLL_SCAN) {
        for (uint32_t i = 0; i < side->rings; ++i) {
            if (side->dead[i] || using_threads) {
                continue;
            }
            handled += (int) drain_ring(side, i);
        }
    } else {
        if (using_threads) {
            return 0;
        }
        ff_poll_pass_t pass;
        uint32_t ring;
        ff_poll_pass_begin(&side->schedule, &pass);
        while (ff_poll_pass_next(&side->schedule, &pass, &ring)) {
            unsigned taken = side->dead[ring] ? 0 : drain_ring(side, ring);
            ff_poll_pass_report(&side->schedule, &pass, taken != 0);
            handled += (int) taken;
        }
    }
    /* relaxed: as component_progress, a cheap look for newly claimed rings (none come here) */
    if (atomic_load_explicit(side->claimed, memory_order_relaxed) != side->cursor) {
        side->cursor = atomic_load_explicit(side->claimed, memory_order_relaxed);
    }
    return handled;
}

static void send_8(struct side *side, uint64_t value)
{
    void *payload;
    while (!(payload = ff_ring_reserve(&side->tx, 8))) {
    }
    memcpy(payload, &value, 8);
    ff_ring_commit(&side->tx, payload, 8, 8, 1);
}

static void wait_for_one(struct side *side)
{
    const uint64_t want = side->received + 1;
    while (side->received < want) {
        poll_pass(side);
    }
}

/* Claims `idle` silent rings and the active one (in the middle, claim order being poll order for the
 * scan) in `consumer`; returns the active ring's index. */
static uint32_t claim_rings(ff_segment_t *consumer, unsigned idle, uint64_t active_producer)
{
    uint32_t index, active = 0;
    for (unsigned i = 0; i <= idle; ++i) {
        const bool is_active = i == idle / 2;
        ff_status_t status = ff_segment_ring_claim(consumer, is_active ? active_producer : IDLE_BASE + i, &index);
        if (status != FF_OK) {
            die("claiming a ring", status);
        }
        if (is_active) {
            active = index;
        }
    }
    return active;
}

static void open_side(struct side *side, ff_segment_t *own, ff_segment_t *peer, uint32_t ring_in_peer, uint64_t me,
                      const struct options *o, enum poll_kind poll)
{
    memset(side, 0, sizeof(*side));
    side->poll = poll;
    side->claimed = ff_segment_claim_counter(own);
    ff_status_t status = ff_ring_tx_open(&side->tx, peer, ring_in_peer, me);
    if (status != FF_OK) {
        die("opening the ring to the peer", status);
    }
    if ((status = ff_poll_schedule_init(&side->schedule, MAX_RINGS, o->idle_per_pass, o->idle_after)) != FF_OK) {
        die("making the poll schedule", status);
    }
    uint64_t producer;
    uint32_t ring;
    while (ff_segment_next_ring(own, &side->cursor, &producer, &ring)) {
        if ((status = ff_ring_rx_open(&side->rx[ring], own, ring)) != FF_OK ||
            (status = ff_poll_schedule_add(&side->schedule)) != FF_OK) {
            die("opening our rings", status);
        }
        side->rings = ring + 1;
    }
}

/* Half round trip in ns for one configuration: the median of its batches. */
static double run_config(const struct options *o, unsigned idle, enum poll_kind poll)
{
    const ff_segment_config_t config = {.key = {{0xfb, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
                                        .ring_size = RING_SIZE,
                                        .max_rings = MAX_RINGS};
    ff_segment_t *segments[2];
    create_unlinked_segments(config, (const uint64_t[]){PING, PONG}, 2, segments);
    ff_segment_t *ping_seg = segments[0], *pong_seg = segments[1];
    const uint32_t to_ping = claim_rings(ping_seg, idle, PONG);
    const uint32_t to_pong = claim_rings(pong_seg, idle, PING);

    const unsigned total = o->warmup + o->iterations;
    int ready[2];
    make_pipe(ready);
    const pid_t child = fork_pinned(o->cpus[1]);
    if (child == 0) {
        static struct side pong;
        open_side(&pong, pong_seg, ping_seg, to_ping, PONG, o, poll);
        (void) !write(ready[1], "r", 1);
        for (unsigned i = 0; i < total; ++i) {
            wait_for_one(&pong);
            send_8(&pong, i);
        }
        while (!ff_ring_tx_drained(&pong.tx)) {
        }
        _exit(0);
    }
    pin(o->cpus[0]);
    static struct side ping;
    open_side(&ping, ping_seg, pong_seg, to_pong, PING, o, poll);
    char byte;
    if (read(ready[0], &byte, 1) != 1) {
        fprintf(stderr, "ffbench_poll: the pong process did not start\n");
        exit(1);
    }
    close(ready[0]);
    close(ready[1]);
    /* Timed in batches of BATCH_TRIPS round trips; the configuration's figure is the median batch. On a
     * machine shared with other jobs a few batches include a preemption of either process (milliseconds
     * on 2 vCPUs): they would dominate a mean, and say nothing about the poll. */
    const unsigned trips_per_batch = o->gap_us ? 1 : BATCH_TRIPS;
    const unsigned batches = o->iterations / trips_per_batch;
    double *batch_ns = calloc(batches, sizeof(double));
    if (!batch_ns) {
        perror("calloc");
        exit(1);
    }
    for (unsigned i = 0; i < o->warmup; ++i) {
        send_8(&ping, i);
        wait_for_one(&ping);
    }
    for (unsigned b = 0; b < batches; ++b) {
        if (o->gap_us) {
            /* silence long enough for the pong side to count our ring idle; spinning, not sleeping: a
             * halted vCPU takes about 40 us to wake here, which would swamp what is measured */
            const double until = now_ns() + 1000.0 * o->gap_us;
            while (now_ns() < until) {
            }
        }
        const double start = now_ns();
        for (unsigned i = 0; i < trips_per_batch; ++i) {
            send_8(&ping, i);
            wait_for_one(&ping);
        }
        batch_ns[b] = (now_ns() - start) / (2.0 * trips_per_batch);
    }
    int wstatus = 0;
    if (waitpid(child, &wstatus, 0) != child || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        fprintf(stderr, "ffbench_poll: the pong process failed\n");
        exit(1);
    }
    ff_poll_schedule_fini(&ping.schedule);
    ff_segment_close(ping_seg);
    ff_segment_close(pong_seg);
    double lo, hi;
    const double half_round_trip = median(batch_ns, batches, &lo, &hi);
    free(batch_ns);
    return half_round_trip;
}

/* ---- statistics and output ----------------------------------------------------------------------- */

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "model name", 10)) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon += 2;
                colon[strcspn(colon, "\n")] = 0;
                snprintf(buf, len, "%s", colon);
            }
            break;
        }
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);
    unsigned zero_index = MAX_LIST;
    for (size_t i = 0; i < o.idle_count; ++i) {
        if (o.idle[i] == 0) {
            zero_index = (unsigned) i;
        }
    }
    static double ns[100][MAX_LIST][2];
    const double load_before = load_average();
    for (unsigned round = 0; round < o.rounds; ++round) {
        for (size_t i = 0; i < o.idle_count; ++i) {
            for (size_t p = 0; p < o.poll_count; ++p) {
                ns[round][i][p] = run_config(&o, o.idle[i], o.polls[p]);
                if (!o.json) {
                    fprintf(stderr, "round %u idle %u %s: %.1f ns\n", round + 1, o.idle[i], POLL_NAMES[o.polls[p]],
                            ns[round][i][p]);
                }
            }
        }
    }
    const double load_after = load_average();
    char cpu[256];
    cpu_model(cpu, sizeof(cpu));
    /* the scan's column, for the paired ratio schedule / scan */
    size_t scan_column = 2;
    for (size_t p = 0; p < o.poll_count; ++p) {
        if (o.polls[p] == POLL_SCAN) {
            scan_column = p;
        }
    }
    if (o.json) {
        printf("{\"benchmark\":\"ffbench_poll\",\"version\":1,\"cpu\":");
        json_string(cpu);
        printf(",\"load_before\":%.2f,\"load_after\":%.2f,\"rounds\":%u,\"iterations\":%u,\"warmup\":%u,"
               "\"idle_after\":%u,\"idle_per_pass\":%u,\"gap_us\":%u,\"results\":[",
               load_before, load_after, o.rounds, o.iterations, o.warmup, o.idle_after, o.idle_per_pass, o.gap_us);
    } else {
        printf(
            "8 B half round trip%s, %u rounds of %u round trips (median of %s), CPU %s, load %.2f before, %.2f after\n",
            o.gap_us ? " after a silence" : "", o.rounds, o.iterations,
            o.gap_us ? "single round trips" : "100-round-trip batches", cpu, load_before, load_after);
        printf("%-9s %5s %10s %17s %21s %21s\n", "poll", "idle", "median us", "[min-max] us", "vs 0 idle [min-max]",
               "vs scan [min-max]");
    }
    for (size_t p = 0; p < o.poll_count; ++p) {
        for (size_t i = 0; i < o.idle_count; ++i) {
            double values[100], to_zero[100], to_scan[100], lo, hi;
            for (unsigned r = 0; r < o.rounds; ++r) {
                values[r] = ns[r][i][p] / 1000.0;
                to_zero[r] = zero_index != MAX_LIST ? ns[r][i][p] / ns[r][zero_index][p] : 0;
                to_scan[r] = scan_column < 2 ? ns[r][i][p] / ns[r][i][scan_column] : 0;
            }
            const bool has_zero = zero_index != MAX_LIST, has_scan = scan_column < 2 && scan_column != p;
            const double med = median(values, o.rounds, &lo, &hi);
            if (o.json) {
                printf("%s{\"poll\":\"%s\",\"idle\":%u,\"half_round_trip_us\":[", p || i ? "," : "",
                       POLL_NAMES[o.polls[p]], o.idle[i]);
                for (unsigned r = 0; r < o.rounds; ++r) {
                    printf("%s%.4f", r ? "," : "", values[r]);
                }
                printf("]");
                if (has_zero) {
                    printf(",\"vs_no_idle\":[");
                    for (unsigned r = 0; r < o.rounds; ++r) {
                        printf("%s%.4f", r ? "," : "", to_zero[r]);
                    }
                    printf("]");
                }
                if (has_scan) {
                    printf(",\"vs_scan\":[");
                    for (unsigned r = 0; r < o.rounds; ++r) {
                        printf("%s%.4f", r ? "," : "", to_scan[r]);
                    }
                    printf("]");
                }
                printf("}");
            } else {
                printf("%-9s %5u %10.3f %8.3f-%-8.3f", POLL_NAMES[o.polls[p]], o.idle[i], med, lo, hi);
                double rlo, rhi;
                if (has_zero) {
                    const double rmed = median(to_zero, o.rounds, &rlo, &rhi);
                    printf(" %7.2fx [%.2f-%.2f]", rmed, rlo, rhi);
                }
                if (has_scan) {
                    const double rmed = median(to_scan, o.rounds, &rlo, &rhi);
                    printf(" %7.2fx [%.2f-%.2f]", rmed, rlo, rhi);
                }
                printf("\n");
            }
        }
    }
    if (o.json) {
        printf("]}\n");
    }
    return 0;
}
