/* The consumer's poll schedule: its bounds on its own, then many producer processes with random idle
 * and active phases through real segments and rings, polled as the BTL polls them. */
#include "check.h"
#include "freeflow.h"

#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

static const ff_job_key_t key = {{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13, 14, 15, 16}};
enum { CONSUMER = 500, PRODUCER_BASE = 1000 };

static uint32_t xorshift(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* One pass; `carries(ring)` says whether a ring has a record. Counts polls per ring and returns the
 * polls of the pass. */
static uint32_t run_pass(ff_poll_schedule_t *s, const bool *carries, uint32_t *polled_in_pass)
{
    ff_poll_pass_t pass;
    uint32_t ring, polls = 0;
    ff_poll_pass_begin(s, &pass);
    while (ff_poll_pass_next(s, &pass, &ring)) {
        CHECK(ring < s->rings); /* never an index outside the rings added */
        if (ring >= s->rings) {
            break;
        }
        ++polled_in_pass[ring];
        ++polls;
        ff_poll_pass_report(s, &pass, carries[ring]);
        CHECK(polls <= 2 * s->rings + s->cold_per_pass); /* a pass ends */
        if (polls > 2 * s->rings + s->cold_per_pass) {
            break;
        }
    }
    return polls;
}

/* The hot list and the per-ring slots agree: every ring is either in hot[] exactly once or cold. */
static void check_consistent(const ff_poll_schedule_t *s)
{
    uint32_t hot_seen = 0;
    for (uint32_t r = 0; r < s->rings; ++r) {
        if (s->hot_slot[r] != FF_POLL_COLD) {
            CHECK(s->hot_slot[r] < s->hot_count && s->hot[s->hot_slot[r]] == r);
            ++hot_seen;
        }
    }
    CHECK(hot_seen == s->hot_count);
}

/* With 63 silent rings and one busy one, a pass polls 1 + cold_per_pass rings, where a full scan polls
 * all 64; and demote_after 0 is the full scan. */
static void test_pass_cost_does_not_grow(void)
{
    enum { RINGS = 64, BUSY = 31 };
    bool carries[RINGS] = {false};
    carries[BUSY] = true;
    uint32_t polled[RINGS];

    ff_poll_schedule_t scan;
    CHECK_STATUS(ff_poll_schedule_init(&scan, RINGS, 1, 0), FF_OK);
    for (int i = 0; i < RINGS; ++i) {
        CHECK_STATUS(ff_poll_schedule_add(&scan), FF_OK);
    }
    CHECK_STATUS(ff_poll_schedule_add(&scan), FF_ERR_FULL);
    for (int p = 0; p < 100; ++p) {
        memset(polled, 0, sizeof(polled));
        CHECK(run_pass(&scan, carries, polled) == RINGS);
    }
    ff_poll_schedule_fini(&scan);

    ff_poll_schedule_t s;
    CHECK_STATUS(ff_poll_schedule_init(&s, RINGS, 1, 8), FF_OK);
    for (int i = 0; i < RINGS; ++i) {
        CHECK_STATUS(ff_poll_schedule_add(&s), FF_OK);
    }
    /* new rings start hot: the first passes poll them all, until 8 empty polls make them cold */
    memset(polled, 0, sizeof(polled));
    CHECK(run_pass(&s, carries, polled) == RINGS);
    for (int p = 0; p < 7; ++p) {
        memset(polled, 0, sizeof(polled));
        run_pass(&s, carries, polled);
    }
    check_consistent(&s);
    CHECK(s.hot_count == 1 && s.hot[0] == BUSY);
    for (int p = 0; p < 1000; ++p) {
        memset(polled, 0, sizeof(polled));
        CHECK(run_pass(&s, carries, polled) == 2); /* the busy ring and one idle one */
        CHECK(polled[BUSY] == 1);
    }
    ff_poll_schedule_fini(&s);
}

/* Under random churn (rings turning busy and idle), every ring is polled at least once in any window
 * of ceil(rings / cold_per_pass) passes, and busy rings every pass. */
static void test_bound_under_churn(void)
{
    const uint32_t shapes[][3] = {{64, 1, 4}, {64, 3, 1}, {7, 1, 2}, {1, 1, 1}, {33, 2, 16}};
    for (size_t shape = 0; shape < sizeof(shapes) / sizeof(shapes[0]); ++shape) {
        const uint32_t rings = shapes[shape][0], per_pass = shapes[shape][1], demote = shapes[shape][2];
        const uint32_t bound = (rings + per_pass - 1) / per_pass;
        ff_poll_schedule_t s;
        CHECK_STATUS(ff_poll_schedule_init(&s, rings, per_pass, demote), FF_OK);
        bool carries[64] = {false};
        uint32_t polled[64], since_polled[64] = {0};
        uint32_t state = 0x9e3779b9u + (uint32_t) shape;
        for (uint32_t pass = 0; pass < 20000; ++pass) {
            if (s.rings < rings && xorshift(&state) % 4 == 0) {
                CHECK_STATUS(ff_poll_schedule_add(&s), FF_OK);
            }
            for (uint32_t r = 0; r < s.rings; ++r) {
                /* phases: mostly silent, bursts of traffic */
                const uint32_t roll = xorshift(&state) % 1000;
                carries[r] = carries[r] ? roll < 900 : roll < 3;
            }
            memset(polled, 0, sizeof(polled));
            run_pass(&s, carries, polled);
            check_consistent(&s);
            for (uint32_t r = 0; r < s.rings; ++r) {
                since_polled[r] = polled[r] ? 0 : since_polled[r] + 1;
                if (since_polled[r] >= bound) {
                    fprintf(stderr, "ring %u of %u (%u per pass) not polled for %u passes\n", r, rings, per_pass,
                            since_polled[r]);
                    CHECK(!"a ring waited longer than the bound");
                    since_polled[r] = 0;
                }
            }
        }
        ff_poll_schedule_fini(&s);
    }
}

static void test_arguments(void)
{
    ff_poll_schedule_t s;
    CHECK_STATUS(ff_poll_schedule_init(&s, 0, 1, 1), FF_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ff_poll_schedule_init(NULL, 4, 1, 1), FF_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ff_poll_schedule_init(&s, 4, 0, 1), FF_OK);
    CHECK(s.cold_per_pass == 1);
    ff_poll_pass_t pass;
    uint32_t ring;
    ff_poll_pass_begin(&s, &pass);
    CHECK(!ff_poll_pass_next(&s, &pass, &ring)); /* no ring yet: an empty pass */
    ff_poll_schedule_fini(&s);
    ff_poll_schedule_fini(&s); /* twice is harmless */
}

/* ---- Many producers, random idle and active phases, through real rings --------------------------- */

enum { PRODUCERS = 24, MESSAGES = 3000, RING_SIZE = 1u << 14 };

struct message {
    uint32_t producer;
    uint32_t seq;
    uint64_t check;
};

static uint64_t message_check(uint32_t producer, uint32_t seq)
{
    return ((uint64_t) producer << 40) ^ ((uint64_t) seq * 0x9e3779b97f4a7c15ull);
}

static void pause_briefly(uint32_t *state)
{
    /* idle phases of a few microseconds to a few milliseconds: long enough for the consumer to demote
     * the ring (demote_after is small here), so records keep arriving in cold rings */
    const uint32_t roll = xorshift(state) % 100;
    if (roll < 60) {
        return;
    }
    struct timespec t = {0, roll < 95 ? 2000 + xorshift(state) % 50000 : 1000000 + xorshift(state) % 3000000};
    nanosleep(&t, NULL);
}

static int producer_process(const char *dir, uint32_t producer)
{
    ff_segment_t *consumer = NULL;
    ff_host_id_t host;
    uint32_t index;
    ff_ring_tx_t tx;
    const uint64_t id = PRODUCER_BASE + producer;
    if (ff_host_id_read(dir, &host) != FF_OK || ff_segment_attach(dir, &key, CONSUMER, &host, &consumer) != FF_OK ||
        ff_segment_ring_claim(consumer, id, &index) != FF_OK || ff_ring_tx_open(&tx, consumer, index, id) != FF_OK) {
        return 2;
    }
    uint32_t state = 0x1234567u * (producer + 1);
    /* some producers stay silent most of the time, some send in long bursts */
    const bool sparse = producer % 3 == 0;
    for (uint32_t seq = 0; seq < MESSAGES;) {
        const uint32_t burst = 1 + xorshift(&state) % (sparse ? 3 : 200);
        for (uint32_t i = 0; i < burst && seq < MESSAGES; ++i) {
            struct message *m;
            while (!(m = ff_ring_reserve(&tx, sizeof(*m)))) {
                if (tx.broken) {
                    return 3;
                }
                sched_yield();
            }
            *m = (struct message){.producer = producer, .seq = seq, .check = message_check(producer, seq)};
            ff_ring_commit(&tx, m, sizeof(*m), sizeof(*m), (uint8_t) seq);
            ++seq;
        }
        pause_briefly(&state);
        if (sparse) {
            pause_briefly(&state);
        }
    }
    while (!ff_ring_tx_drained(&tx)) {
        sched_yield();
    }
    ff_segment_close(consumer);
    return 0;
}

static void test_many_producers(const char *dir, uint32_t per_pass, uint32_t demote)
{
    ff_segment_config_t config = {
        .dir = dir, .key = key, .owner_id = CONSUMER, .ring_size = RING_SIZE, .max_rings = PRODUCERS};
    ff_segment_t *own = NULL;
    CHECK_STATUS(ff_host_id_read(dir, &config.host), FF_OK);
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    if (!own) {
        return;
    }
    pid_t children[PRODUCERS];
    for (uint32_t p = 0; p < PRODUCERS; ++p) {
        children[p] = fork();
        if (children[p] == 0) {
            _exit(producer_process(dir, p));
        }
    }

    ff_poll_schedule_t s;
    CHECK_STATUS(ff_poll_schedule_init(&s, PRODUCERS, per_pass, demote), FF_OK);
    ff_ring_rx_t rx[PRODUCERS];
    uint32_t producer_of_ring[PRODUCERS];
    uint32_t next_seq[PRODUCERS] = {0};
    uint32_t cursor = 0, received = 0, bad = 0;
    uint64_t passes = 0, empty_spins = 0;
    while (received < PRODUCERS * MESSAGES && bad == 0 && empty_spins < 200000000ull) {
        uint64_t producer_id;
        uint32_t index;
        while (ff_segment_next_ring(own, &cursor, &producer_id, &index)) {
            CHECK(index == s.rings);
            CHECK(producer_id >= PRODUCER_BASE && producer_id < PRODUCER_BASE + PRODUCERS);
            CHECK_STATUS(ff_ring_rx_open(&rx[index], own, index), FF_OK);
            producer_of_ring[index] = (uint32_t) (producer_id - PRODUCER_BASE);
            CHECK_STATUS(ff_poll_schedule_add(&s), FF_OK);
        }
        ff_poll_pass_t pass;
        uint32_t ring, taken_in_pass = 0;
        ff_poll_pass_begin(&s, &pass);
        while (ff_poll_pass_next(&s, &pass, &ring)) {
            ff_ring_record_t record;
            uint32_t taken = 0;
            /* a batch of at most 4, like the BTL's poll_batch: rings stay hot while they hold more */
            while (taken < 4 && ff_ring_peek(&rx[ring], &record)) {
                const struct message *m = record.data;
                const uint32_t p = producer_of_ring[ring];
                if (record.len != sizeof(*m) || m->producer != p || m->seq != next_seq[p] ||
                    m->check != message_check(p, m->seq) || record.tag != (uint8_t) m->seq) {
                    fprintf(stderr, "producer %u: got seq %u, expected %u\n", p, m->seq, next_seq[p]);
                    ++bad;
                }
                ++next_seq[p];
                ff_ring_consume(&rx[ring]);
                ++taken;
            }
            CHECK(!rx[ring].broken);
            ff_poll_pass_report(&s, &pass, taken != 0);
            taken_in_pass += taken;
        }
        received += taken_in_pass;
        empty_spins = taken_in_pass ? 0 : empty_spins + 1;
        if (!taken_in_pass && (passes & 63) == 0) {
            sched_yield(); /* 2 vCPUs, 24 producers: let them run */
        }
        ++passes;
        check_consistent(&s);
    }
    CHECK(bad == 0);
    CHECK(received == PRODUCERS * MESSAGES);
    for (uint32_t p = 0; p < PRODUCERS; ++p) {
        CHECK(next_seq[p] == MESSAGES);
    }
    /* nothing left over in any ring */
    for (uint32_t r = 0; r < s.rings; ++r) {
        ff_ring_record_t extra;
        CHECK(!ff_ring_peek(&rx[r], &extra));
    }
    if (received != PRODUCERS * MESSAGES) {
        for (uint32_t p = 0; p < PRODUCERS; ++p) {
            kill(children[p], SIGKILL); /* a producer waiting for a ring nobody drains would wait forever */
        }
    }
    for (uint32_t p = 0; p < PRODUCERS; ++p) {
        int status = 0;
        CHECK(waitpid(children[p], &status, 0) == children[p]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    printf("many producers (%u idle rings per pass, idle after %u): %u messages in %llu passes\n", per_pass, demote,
           received, (unsigned long long) passes);
    ff_poll_schedule_fini(&s);
    ff_segment_close(own);
}

int main(void)
{
    test_arguments();
    test_pass_cost_does_not_grow();
    test_bound_under_churn();
    char *dir = scratch_dir_create();
    test_many_producers(dir, 1, 2); /* rings turn cold after 2 empty polls: constant churn */
    test_many_producers(dir, 3, 64);
    test_many_producers(dir, 1, 0); /* the full scan */
    scratch_dir_remove(dir);
    return check_exit_code("test_poll");
}
