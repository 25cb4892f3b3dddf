/*
 * ffbench_ring: large-message bandwidth through the real segment and ring code, without MPI (issue 10
 * item 1). Two processes pinned to two cores: the producer cuts each message into fragments and copies
 * them into the ring with a chosen copy routine (as the BTL's prepare_src does, data cache-line aligned
 * behind a 32-byte header like ob1's), the consumer copies each fragment out to its message buffer with
 * memcpy (as ob1's receive callback does) and releases it. Every configuration (fragment size, ring
 * size, copy routine) is a fresh pair of processes and a fresh ring, timed in batches of messages
 * (the producer's view of the pipeline's steady rate) whose median is the configuration's figure; rounds
 * interleave all configurations. Beside every round: the core-to-core floor, a cache-line ping-pong
 * between the same two cores (half round trip), which tells how the hypervisor placed them (SMT
 * siblings, one core complex, two).
 *
 *   ffbench_ring [--size 4M] [--fragments 32K,64K] [--rings 256K,512K] [--copies blocks,movsb,auto]
 *                [--rounds 5] [--batches 16] [--batch-messages 2] [--cpus 0,1] [--json]
 *   ffbench_ring --describe [--json]        the CPU, its caches and what freeflow chooses on it
 *   ffbench_ring --floor [--cpus 0,1] [--json]   the core-to-core floor alone (ffbench's shm profile
 *                                               measures it beside every repetition)
 */
#define _GNU_SOURCE
#include "ff_cli.h"
#include "ffbench_common.h"
#include "freeflow.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    MAX_LIST = 8,
    MAX_SIZE = 1 << 30,
    MAX_ROUNDS = 100,
    MAX_BATCHES = 1000,
    HEADER = 32,
    FLOOR_TRIPS = 2000,
    FLOOR_BATCHES = 15
};

struct options {
    uint32_t size;
    uint32_t fragments[MAX_LIST], rings[MAX_LIST];
    ff_copy_kind_t copies[MAX_LIST];
    size_t fragment_count, ring_count, copy_count;
    unsigned rounds, batches, batch_messages;
    int cpus[2];
    int json;
    int describe;   /* only the CPU and the choices */
    int floor_only; /* only the core-to-core floor */
};

/* A list option's sizes into the run's uint32 fields (the bounds keep each below 4 GiB). */
static size_t copy_sizes(const ff_size_list *list, uint32_t *out)
{
    for (size_t i = 0; i < list->count; i++) out[i] = (uint32_t) list->items[i];
    return list->count;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.copies = {FF_COPY_BLOCKS, FF_COPY_MOVSB, FF_COPY_AUTO}, .copy_count = 3, .cpus = {0, 1}};
    size_t size = 4u << 20, fragments[MAX_LIST] = {32u << 10, 64u << 10}, rings[MAX_LIST] = {256u << 10, 512u << 10};
    ff_size_list fragment_list = {fragments, MAX_LIST, 2}, ring_list = {rings, MAX_LIST, 2};
    long rounds = 5, batches = 16, batch_messages = 2;
    const char *copies = NULL, *cpus = NULL;
    bool json = false, describe = false, floor_only = false;
    const ff_option options[] = {
        {"size", FF_OPT_SIZE, &size, 1, MAX_SIZE, "bytes per message"},
        {"fragments", FF_OPT_SIZES, &fragment_list, 1, MAX_SIZE, "fragment sizes to try"},
        {"rings", FF_OPT_SIZES, &ring_list, 1, MAX_SIZE, "ring sizes to try"},
        {"copies", FF_OPT_STRING, &copies, 0, 0,
         "copy routines to try, up to 8 of auto, libc, blocks, movsb, avx2, avx512, nt (default blocks,movsb,auto)",
         .value_name = "LIST"},
        {"rounds", FF_OPT_LONG, &rounds, 1, MAX_ROUNDS, "rounds of every configuration (medians over them)"},
        {"batches", FF_OPT_LONG, &batches, 1, MAX_BATCHES, "timed batches per round"},
        {"batch-messages", FF_OPT_LONG, &batch_messages, 1, 1000, "messages per batch"},
        {"cpus", FF_OPT_STRING, &cpus, 0, 0, "the two CPUs (default 0,1)", .value_name = "A,B"},
        {"json", FF_OPT_FLAG, &json, 0, 0, "print JSON"},
        {"describe", FF_OPT_FLAG, &describe, 0, 0, "print only the CPU, its caches and what freeflow chooses on it"},
        {"floor", FF_OPT_FLAG, &floor_only, 0, 0, "measure only the core-to-core floor"},
        {0},
    };
    const ff_cli cli = {.program = "ffbench_ring",
                        .usage = "[options]\n       ffbench_ring --describe [--json]\n"
                                 "       ffbench_ring --floor [--cpus A,B] [--json]",
                        .tables = {options}};
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, true);
    if (status != FF_CLI_PROCEED) exit(status);
    if (copies) {
        char names[MAX_LIST][16];
        o->copy_count = ff_split_list(copies, &names[0][0], sizeof names[0], MAX_LIST);
        for (size_t i = 0; i < o->copy_count; i++)
            if (ff_copy_kind_parse(names[i], &o->copies[i]) != FF_OK) o->copy_count = 0;
        if (!o->copy_count)
            exit(ff_cli_refusef(&cli, "--copies wants up to 8 of auto, libc, blocks, movsb, avx2, avx512, nt, not '%s'",
                                copies));
    }
    if (cpus && !parse_cpus(cpus, o->cpus))
        exit(ff_cli_refusef(&cli, "--cpus wants two CPU numbers, e.g. 0,1, not '%s'", cpus));
    o->size = (uint32_t) size;
    o->fragment_count = copy_sizes(&fragment_list, o->fragments);
    o->ring_count = copy_sizes(&ring_list, o->rings);
    o->rounds = (unsigned) rounds;
    o->batches = (unsigned) batches;
    o->batch_messages = (unsigned) batch_messages;
    o->json = json;
    o->describe = describe;
    o->floor_only = floor_only;
}

static void *buffer(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, bytes) != 0) {
        perror("posix_memalign");
        exit(1);
    }
    memset(p, 0x5a, bytes);
    return p;
}

/* ---- the core-to-core floor ---------------------------------------------------------------------- */

/* Half round trip of one cache line bounced between the two cores, ns: median of batches. */
static double floor_ns(const struct options *o)
{
    _Atomic uint64_t *line = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (line == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    atomic_store(line, 0);
    const uint64_t total = (uint64_t) FLOOR_TRIPS * (FLOOR_BATCHES + 1);
    const pid_t child = fork_pinned(o->cpus[1]);
    if (child == 0) {
        for (uint64_t i = 0; i < total; ++i) {
            /* acquire/release: a ping-pong of one word; the orderings only keep the compiler honest */
            while (atomic_load_explicit(line, memory_order_acquire) != 2 * i + 1) {
            }
            atomic_store_explicit(line, 2 * i + 2, memory_order_release);
        }
        _exit(0);
    }
    pin(o->cpus[0]);
    double batch_ns[FLOOR_BATCHES];
    uint64_t value = 0;
    for (unsigned b = 0; b <= FLOOR_BATCHES; ++b) {
        const double start = now_ns();
        for (unsigned i = 0; i < FLOOR_TRIPS; ++i) {
            atomic_store_explicit(line, ++value, memory_order_release);
            while (atomic_load_explicit(line, memory_order_acquire) != value + 1) {
            }
            ++value;
        }
        if (b) { /* the first batch warms up */
            batch_ns[b - 1] = (now_ns() - start) / FLOOR_TRIPS / 2;
        }
    }
    int status;
    waitpid(child, &status, 0);
    munmap((void *) line, 4096);
    double lo, hi;
    return median(batch_ns, FLOOR_BATCHES, &lo, &hi);
}

/* ---- one configuration ----------------------------------------------------------------------------- */

/* GB/s of one configuration: the median of its batches. */
static double run_config(const struct options *o, uint32_t fragment, uint32_t ring, ff_copy_fn_t copy)
{
    const ff_segment_config_t config = {
        .key = {{0xfb, 0x0d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}}, .ring_size = ring, .max_rings = 1};
    enum { PRODUCER = 1, CONSUMER = 2 }; /* owner ids */
    ff_segment_t *consumer_seg;
    create_unlinked_segments(config, (const uint64_t[]){CONSUMER}, 1, &consumer_seg);
    uint32_t index = 0;
    ff_status_t status = ff_segment_ring_claim(consumer_seg, PRODUCER, &index);
    if (status != FF_OK) {
        die("claiming the ring", status);
    }

    const unsigned messages = (o->batches + 1) * o->batch_messages;
    const uint32_t per_fragment = fragment - HEADER;
    int done[2];
    make_pipe(done);
    const pid_t child = fork_pinned(o->cpus[1]);
    if (child == 0) {
        ff_ring_rx_t rx;
        if ((status = ff_ring_rx_open(&rx, consumer_seg, index)) != FF_OK) {
            die("opening the ring", status);
        }
        uint8_t *dst = buffer(o->size);
        for (unsigned m = 0; m < messages; ++m) {
            for (uint32_t offset = 0; offset < o->size;) {
                ff_ring_record_t record;
                while (!ff_ring_peek(&rx, &record)) {
                    if (rx.broken) {
                        _exit(3);
                    }
                }
                const uint32_t len = record.len - HEADER;
                memcpy(dst + offset, (uint8_t *) record.data + HEADER, len);
                offset += len;
                ff_ring_consume(&rx);
            }
        }
        (void) !write(done[1], "d", 1);
        _exit(0);
    }
    pin(o->cpus[0]);
    ff_ring_tx_t tx;
    if ((status = ff_ring_tx_open(&tx, consumer_seg, index, 1)) != FF_OK) {
        die("opening the ring", status);
    }
    uint8_t *src = buffer(o->size);
    double *batch_gbps = malloc(o->batches * sizeof(double));
    double start = now_ns();
    for (unsigned m = 0; m < messages; ++m) {
        for (uint32_t offset = 0; offset < o->size;) {
            const uint32_t len = o->size - offset < per_fragment ? o->size - offset : per_fragment;
            uint8_t *payload;
            while (!(payload = ff_ring_reserve_placed(&tx, len + HEADER, true, HEADER))) {
            }
            memset(payload, 0, HEADER);
            copy(payload + HEADER, src + offset, len);
            ff_ring_commit(&tx, payload, len + HEADER, len + HEADER, 1);
            offset += len;
        }
        if ((m + 1) % o->batch_messages == 0) {
            const double end = now_ns();
            const unsigned batch = (m + 1) / o->batch_messages;
            if (batch > 1) { /* the first batch warms up */
                batch_gbps[batch - 2] = (double) o->size * o->batch_messages / (end - start);
            }
            start = end;
        }
    }
    char byte;
    if (read(done[0], &byte, 1) != 1) {
        fprintf(stderr, "ffbench_ring: the consumer failed\n");
        exit(1);
    }
    int child_status;
    waitpid(child, &child_status, 0);
    close(done[0]);
    close(done[1]);
    free(src);
    ff_segment_close(consumer_seg);
    double lo, hi;
    const double gbps = median(batch_gbps, o->batches, &lo, &hi);
    free(batch_gbps);
    return gbps;
}

/* The JSON output's opening, shared by --describe and a measurement: benchmark, cpu and chosen, the
 * object left open. */
static void json_head(const ff_cpu_info_t *cpu, const char *flags, const ff_shm_tuning_t *chosen)
{
    printf("{\"benchmark\":\"ffbench_ring\",\"version\":1,\"cpu\":{\"model\":");
    json_string(cpu->model);
    printf(",\"vendor\":");
    json_string(cpu->vendor);
    printf(",\"family\":%u,\"model_number\":%u,\"flags\":", cpu->family, cpu->model_number);
    json_string(flags);
    printf(",\"l1d_bytes\":%u,\"l2_bytes\":%u,\"l3_bytes\":%u,\"cache_source\":\"%s\"},", cpu->l1d_bytes, cpu->l2_bytes,
           cpu->l3_bytes, cpu->cache_source);
    printf("\"chosen\":{\"fragment_size\":%u,\"ring_size\":%u,\"copy\":\"%s\",\"why\":", chosen->fragment_size,
           chosen->ring_size, ff_copy_kind_name(chosen->copy));
    json_string(chosen->why);
    printf("}");
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);
    ff_cpu_info_t cpu;
    ff_cpu_info_read(&cpu);
    ff_shm_tuning_t chosen = {0};
    char error[256];
    if (ff_shm_tuning_choose(&cpu, &chosen, error, sizeof(error)) != FF_OK) {
        fprintf(stderr, "ffbench_ring: %s\n", error);
        return 1;
    }
    char flags[160];
    ff_cpu_flags_string(&cpu, flags, sizeof(flags));
    if (o.describe) {
        if (o.json) {
            json_head(&cpu, flags, &chosen);
            printf("}\n");
        } else {
            printf("CPU %s (%s family %u model %u; %s; L1d %u K, L2 %u K, L3 %u K from %s)\nchosen: fragment %u, ring "
                   "%u, copy %s (%s)\n",
                   cpu.model, cpu.vendor, cpu.family, cpu.model_number, flags, cpu.l1d_bytes >> 10, cpu.l2_bytes >> 10,
                   cpu.l3_bytes >> 10, cpu.cache_source, chosen.fragment_size, chosen.ring_size,
                   ff_copy_kind_name(chosen.copy), chosen.why);
        }
        return 0;
    }
    if (o.floor_only) {
        const double ns = floor_ns(&o);
        if (o.json) {
            printf("{\"benchmark\":\"ffbench_ring\",\"version\":1,\"floor_ns\":%.1f,\"cpus\":[%d,%d]}\n", ns, o.cpus[0],
                   o.cpus[1]);
        } else {
            printf("core-to-core floor (cache-line ping-pong, half round trip) CPUs %d,%d: %.1f ns\n", o.cpus[0],
                   o.cpus[1], ns);
        }
        return 0;
    }
    ff_copy_kind_t kinds[MAX_LIST];
    ff_copy_fn_t routines[MAX_LIST];
    for (size_t c = 0; c < o.copy_count; ++c) {
        kinds[c] = o.copies[c] == FF_COPY_AUTO ? chosen.copy : o.copies[c];
        routines[c] = ff_copy_routine(kinds[c], &cpu);
        if (!routines[c]) {
            fprintf(stderr, "ffbench_ring: this CPU cannot run the %s copy\n", ff_copy_kind_name(kinds[c]));
            return 2;
        }
    }
    for (size_t f = 0; f < o.fragment_count; ++f) {
        for (size_t r = 0; r < o.ring_count; ++r) {
            if (o.fragments[f] > o.rings[r] / 4 || o.fragments[f] <= HEADER) {
                fprintf(stderr, "ffbench_ring: fragment %u does not fit ring %u (at most a quarter)\n", o.fragments[f],
                        o.rings[r]);
                return 2;
            }
        }
    }
    const size_t configs = o.fragment_count * o.ring_count * o.copy_count;
    double *gbps = calloc(o.rounds * configs, sizeof(double));
    double floors[MAX_ROUNDS];
    const double load_before = load_average();
    for (unsigned round = 0; round < o.rounds; ++round) {
        floors[round] = floor_ns(&o);
        size_t k = 0;
        for (size_t f = 0; f < o.fragment_count; ++f) {
            for (size_t r = 0; r < o.ring_count; ++r) {
                for (size_t c = 0; c < o.copy_count; ++c, ++k) {
                    gbps[round * configs + k] = run_config(&o, o.fragments[f], o.rings[r], routines[c]);
                    if (!o.json) {
                        fprintf(stderr, "round %u floor %.0f ns fragment %u ring %u copy %s: %.2f GB/s\n", round + 1,
                                floors[round], o.fragments[f], o.rings[r], ff_copy_kind_name(kinds[c]),
                                gbps[round * configs + k]);
                    }
                }
            }
        }
    }
    const double load_after = load_average();
    double lo, hi;
    if (o.json) {
        json_head(&cpu, flags, &chosen);
        printf(",\"size\":%u,\"load_before\":%.2f,\"load_after\":%.2f,\"rounds\":%u,\"batches\":%u,"
               "\"batch_messages\":%u,\"floor_ns\":[",
               o.size, load_before, load_after, o.rounds, o.batches, o.batch_messages);
        for (unsigned r = 0; r < o.rounds; ++r) {
            printf("%s%.1f", r ? "," : "", floors[r]);
        }
        printf("],\"results\":[");
    } else {
        printf("CPU %s (%s family %u model %u; %s; L1d %u K, L2 %u K, L3 %u K from %s)\n", cpu.model, cpu.vendor,
               cpu.family, cpu.model_number, flags, cpu.l1d_bytes >> 10, cpu.l2_bytes >> 10, cpu.l3_bytes >> 10,
               cpu.cache_source);
        printf("chosen: fragment %u, ring %u, copy %s (%s)\n", chosen.fragment_size, chosen.ring_size,
               ff_copy_kind_name(chosen.copy), chosen.why);
        const double floor_median = median(floors, o.rounds, &lo, &hi);
        printf("%u B messages, %u rounds, load %.2f before, %.2f after; core-to-core floor %.0f ns [%.0f-%.0f]\n",
               o.size, o.rounds, load_before, load_after, floor_median, lo, hi);
        printf("%9s %9s %-7s %9s %15s  per round\n", "fragment", "ring", "copy", "GB/s", "[min-max]");
    }
    size_t k = 0;
    for (size_t f = 0; f < o.fragment_count; ++f) {
        for (size_t r = 0; r < o.ring_count; ++r) {
            for (size_t c = 0; c < o.copy_count; ++c, ++k) {
                double values[MAX_ROUNDS];
                for (unsigned round = 0; round < o.rounds; ++round) {
                    values[round] = gbps[round * configs + k];
                }
                if (o.json) {
                    printf("%s{\"fragment_size\":%u,\"ring_size\":%u,\"copy\":\"%s\",\"gb_s\":[", k ? "," : "",
                           o.fragments[f], o.rings[r], ff_copy_kind_name(kinds[c]));
                    for (unsigned round = 0; round < o.rounds; ++round) {
                        printf("%s%.3f", round ? "," : "", values[round]);
                    }
                    printf("]}");
                } else {
                    const double m = median(values, o.rounds, &lo, &hi);
                    printf("%9u %9u %-7s %9.2f %6.2f-%-8.2f ", o.fragments[f], o.rings[r], ff_copy_kind_name(kinds[c]),
                           m, lo, hi);
                    for (unsigned round = 0; round < o.rounds; ++round) {
                        printf(" %.1f", values[round]);
                    }
                    printf("\n");
                }
            }
        }
    }
    if (o.json) {
        printf("]}\n");
    }
    free(gbps);
    return 0;
}
