/* Rings: functional cases in one process, then a two-process stress with content checks. */
#include "check.h"
#include "freeflow.h"

#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

static const ff_job_key_t key = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
enum { PRODUCER = 100, CONSUMER = 200 };

struct pair {
    ff_segment_t *own;    /* the consumer's segment */
    ff_segment_t *mapped; /* the same file attached again, as the producer does */
    ff_ring_tx_t tx;
    ff_ring_rx_t rx;
};

static void pair_open(struct pair *p, const char *dir, uint32_t ring_size)
{
    ff_segment_config_t config = {.dir = dir, .key = key, .owner_id = CONSUMER, .ring_size = ring_size, .max_rings = 4};
    CHECK_STATUS(ff_host_id_read(dir, &config.host), FF_OK);
    CHECK_STATUS(ff_segment_create(&config, &p->own), FF_OK);
    CHECK_STATUS(ff_segment_attach(dir, &key, CONSUMER, &config.host, &p->mapped), FF_OK);
    uint32_t index = 99, cursor = 0;
    uint64_t producer = 0;
    CHECK(!ff_segment_next_ring(p->own, &cursor, &producer, &index));
    CHECK(atomic_load(ff_segment_claim_counter(p->own)) == 0);
    CHECK_STATUS(ff_segment_ring_claim(p->mapped, PRODUCER, &index), FF_OK);
    CHECK(atomic_load(ff_segment_claim_counter(p->own)) == 1);
    CHECK(index == 0);
    CHECK_STATUS(ff_ring_tx_open(&p->tx, p->mapped, index, PRODUCER + 1), FF_ERR_OWNER_MISMATCH);
    CHECK_STATUS(ff_ring_tx_open(&p->tx, p->mapped, index, PRODUCER), FF_OK);
    index = 99;
    CHECK(ff_segment_next_ring(p->own, &cursor, &producer, &index));
    CHECK(index == 0 && producer == PRODUCER && cursor == 1);
    CHECK_STATUS(ff_ring_rx_open(&p->rx, p->own, index), FF_OK);
    CHECK_STATUS(ff_ring_rx_open(&p->rx, p->own, 1), FF_ERR_NOT_READY);
    CHECK_STATUS(ff_ring_rx_open(&p->rx, p->own, index), FF_OK);
}

static void pair_close(struct pair *p)
{
    ff_segment_close(p->mapped);
    ff_segment_close(p->own);
}

static uint8_t pattern(uint64_t seq, uint32_t i)
{
    return (uint8_t) (seq * 131u + i * 7u + (i >> 8));
}

static void fill(void *payload, uint64_t seq, uint32_t len)
{
    uint8_t *bytes = payload;
    for (uint32_t i = 0; i < len; ++i) {
        bytes[i] = pattern(seq, i);
    }
}

static bool matches(const void *payload, uint64_t seq, uint32_t len)
{
    const uint8_t *bytes = payload;
    for (uint32_t i = 0; i < len; ++i) {
        if (bytes[i] != pattern(seq, i)) {
            fprintf(stderr, "record %llu byte %u: got %u, expected %u\n", (unsigned long long) seq, i, bytes[i],
                    pattern(seq, i));
            return false;
        }
    }
    return true;
}

static void test_basic(const char *dir)
{
    struct pair p;
    pair_open(&p, dir, 4096);
    ff_ring_record_t record;
    CHECK(!ff_ring_peek(&p.rx, &record));
    CHECK(p.tx.max_payload == 1024);

    void *a = ff_ring_reserve(&p.tx, 10);
    CHECK(a != NULL);
    fill(a, 1, 10);
    CHECK(!ff_ring_peek(&p.rx, &record)); /* reserved is not committed */
    ff_ring_commit(&p.tx, a, 10, 10, 5);
    CHECK(ff_ring_peek(&p.rx, &record));
    CHECK(record.len == 10 && record.tag == 5 && matches(record.data, 1, 10));
    CHECK(ff_ring_peek(&p.rx, &record) && record.len == 10); /* peek does not consume */
    ff_ring_consume(&p.rx);
    CHECK(!ff_ring_peek(&p.rx, &record));
    CHECK(ff_ring_tx_drained(&p.tx));

    /* Commits out of order are delivered in reservation order. */
    void *first = ff_ring_reserve(&p.tx, 3);
    void *second = ff_ring_reserve(&p.tx, 0);
    fill(first, 2, 3);
    ff_ring_commit(&p.tx, second, 0, 0, 7);
    CHECK(!ff_ring_peek(&p.rx, &record));
    ff_ring_commit(&p.tx, first, 3, 3, 6);
    CHECK(ff_ring_peek(&p.rx, &record) && record.tag == 6 && record.len == 3 && matches(record.data, 2, 3));
    ff_ring_consume(&p.rx);
    CHECK(ff_ring_peek(&p.rx, &record) && record.tag == 7 && record.len == 0);
    ff_ring_consume(&p.rx);

    /* A record committed shorter than reserved, and a cancelled reservation, leave padding only. */
    void *big = ff_ring_reserve(&p.tx, 500);
    void *cancelled = ff_ring_reserve(&p.tx, 64);
    void *after = ff_ring_reserve(&p.tx, 17);
    fill(big, 3, 9);
    fill(after, 4, 17);
    ff_ring_commit(&p.tx, big, 500, 9, 8);
    ff_ring_cancel(&p.tx, cancelled, 64);
    ff_ring_commit(&p.tx, after, 17, 17, 9);
    CHECK(ff_ring_peek(&p.rx, &record) && record.tag == 8 && record.len == 9 && matches(record.data, 3, 9));
    ff_ring_consume(&p.rx);
    CHECK(ff_ring_peek(&p.rx, &record) && record.tag == 9 && record.len == 17 && matches(record.data, 4, 17));
    ff_ring_consume(&p.rx);
    CHECK(!ff_ring_peek(&p.rx, &record));
    CHECK(ff_ring_tx_drained(&p.tx));

    /* Fill until full: the producer is refused, then freed room is reused. */
    unsigned reserved = 0;
    while (ff_ring_reserve(&p.tx, 1000)) {
        ++reserved;
    }
    CHECK(reserved >= 3 && reserved <= 4);
    pair_close(&p);
}

/* Many laps in one thread with sizes that force every wrap position; zeroing ahead after some commits,
 * and (in rings larger than FF_RING_REWIND_AFTER) rewinds whenever the consumer has caught up. */
static void test_laps(const char *dir, uint32_t ring_size)
{
    struct pair p;
    pair_open(&p, dir, ring_size);
    uint64_t sent = 0, received = 0;
    uint32_t state = 12345;
    for (int round = 0; round < 200000; ++round) {
        state = state * 1103515245u + 12345u;
        uint32_t len = (state >> 8) % (p.tx.max_payload + 1);
        /* every other record places byte 8k of its payload on a data-alignment boundary */
        const bool aligned = (state >> 3) & 1;
        const uint32_t data_offset = ((state >> 4) & 7) * 8;
        void *payload = ff_ring_reserve_placed(&p.tx, len, aligned, data_offset);
        if (payload && aligned && ((uintptr_t) payload + data_offset) % FF_RING_DATA_ALIGN != 0) {
            CHECK(!"aligned reservation misplaced");
        }
        if (payload) {
            fill(payload, sent, len);
            ff_ring_commit(&p.tx, payload, len, len, (uint8_t) sent);
            ++sent;
            if ((state >> 12) & 1) {
                ff_ring_zero_ahead(&p.tx);
            }
        }
        ff_ring_record_t record;
        if ((state & 3) != 0 && ff_ring_peek(&p.rx, &record)) {
            if (record.tag != (uint8_t) received || !matches(record.data, received, record.len)) {
                CHECK(!"lap record corrupted");
                break;
            }
            ff_ring_consume(&p.rx);
            ++received;
        }
    }
    ff_ring_record_t record;
    while (ff_ring_peek(&p.rx, &record)) {
        CHECK(record.tag == (uint8_t) received && matches(record.data, received, record.len));
        ff_ring_consume(&p.rx);
        ++received;
    }
    CHECK(sent == received);
    CHECK(sent > 100000);
    pair_close(&p);
}

/* Zeroing ahead and rewinding (freeflow.h): small records stay near the start of a ring the consumer
 * keeps draining, stale headers of an earlier lap are never delivered, and neither ever touches bytes the
 * consumer has not released, whatever its (possibly forged) position says. */
static void test_zero_ahead_and_rewind(const char *dir)
{
    enum { RING = 1u << 16, SMALL = 24 };
    struct pair p;
    pair_open(&p, dir, RING);
    /* An earlier lap left plausible headers everywhere but at the first record's offset. */
    const uint64_t stale = ff_ring_header_word(FF_RECORD_DATA, 0xee, 8);
    for (uint32_t at = FF_RING_HEADER_SIZE; at < RING; at += FF_RING_HEADER_SIZE) {
        atomic_store(ff_ring_header_at(p.rx.data, at), stale);
    }
    ff_ring_record_t record;
    uint64_t seq = 0, highest = 0;
    bool rewound = false;
    /* Ping-pong: every record is consumed before the next one is reserved. */
    for (int i = 0; i < 3000; ++i, ++seq) {
        void *payload = ff_ring_reserve(&p.tx, SMALL);
        CHECK(payload != NULL);
        const uint64_t offset = (uint64_t) ((uint8_t *) payload - p.tx.data);
        rewound |= offset == FF_RING_HEADER_SIZE && seq > 0;
        highest = offset > highest ? offset : highest;
        fill(payload, seq, SMALL);
        ff_ring_commit(&p.tx, payload, SMALL, SMALL, (uint8_t) seq);
        ff_ring_zero_ahead(&p.tx);
        /* zeroed ahead, up to the bytes the consumer released when the producer last looked */
        CHECK(p.tx.zeroed - p.tx.head >= FF_RING_ZERO_AHEAD_LOW || p.tx.zeroed == p.tx.tail_seen + RING);
        CHECK(ff_ring_peek(&p.rx, &record) && record.tag == (uint8_t) seq && matches(record.data, seq, SMALL));
        ff_ring_consume(&p.rx);
        CHECK(!ff_ring_peek(&p.rx, &record)); /* the stale header after it was zeroed */
    }
    CHECK(rewound);
    CHECK(highest < FF_RING_REWIND_AFTER + 64);
    CHECK(!p.rx.broken && !p.tx.broken);

    /* A consumer that falls behind: no rewind (records stay in order past the rewind point), and zeroing
     * ahead stops at the bytes it still holds. */
    const uint64_t first = seq;
    while (true) {
        void *payload = ff_ring_reserve(&p.tx, SMALL);
        if (!payload) {
            break;
        }
        fill(payload, seq, SMALL);
        ff_ring_commit(&p.tx, payload, SMALL, SMALL, (uint8_t) seq);
        ff_ring_zero_ahead(&p.tx);
        ++seq;
    }
    CHECK(seq - first > RING / 64); /* it filled the ring instead of rewinding into unread records */
    CHECK(p.tx.zeroed <= p.tx.tail_seen + RING);
    for (uint64_t expect = first; expect < seq; ++expect) {
        if (!ff_ring_peek(&p.rx, &record) || record.tag != (uint8_t) expect || !matches(record.data, expect, SMALL)) {
            CHECK(!"a record of a full ring was overwritten");
            break;
        }
        ff_ring_consume(&p.rx);
    }
    CHECK(!ff_ring_peek(&p.rx, &record) && !p.rx.broken);

    /* A forged consumer position ahead of everything sent: nothing is zeroed, the producer stops. */
    p.tx.zeroed = p.tx.head + FF_RING_HEADER_SIZE; /* as after a large record: a zeroing ahead is due */
    atomic_store(p.rx.tail, p.tx.head + 4096);
    for (int i = 0; i < 4 * RING / 32 && !p.tx.broken; ++i) {
        void *payload = ff_ring_reserve(&p.tx, SMALL);
        if (!payload) {
            break;
        }
        ff_ring_commit(&p.tx, payload, SMALL, SMALL, 1);
    }
    CHECK(p.tx.broken);
    const uint64_t before = p.tx.zeroed;
    ff_ring_zero_ahead(&p.tx);
    CHECK(p.tx.zeroed == before);
    pair_close(&p);
}

/* ff_ring_zero_ahead zeroes exactly the bytes it promises, [max(zeroed, head), limit), continuing at
 * offset 0 past the ring's end, and nothing else: not the bytes before them, not past the ring (the next
 * ring's control block follows it in the segment). */
static void test_zero_ahead_exact(const char *dir)
{
    enum { RING = 4096 };
    struct pair p;
    pair_open(&p, dir, RING);
    uint8_t *after = p.tx.data + RING; /* the next ring slot's control block (unclaimed: restored to zero) */
    const uint64_t starts[] = {0, 8, 1000, RING - 200, RING - 64, RING - 8, 3 * RING + 24};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); ++i) {
        memset(p.tx.data, 0xa5, RING);
        memset(after, 0x3c, 128);
        p.tx.head = starts[i];
        p.tx.zeroed = starts[i] + FF_RING_HEADER_SIZE; /* as after a reservation that stored the header itself */
        p.tx.tail_seen = starts[i];                    /* everything consumed */
        ff_ring_zero_ahead(&p.tx);
        const uint64_t from = starts[i] + FF_RING_HEADER_SIZE;
        const uint64_t limit = (starts[i] + FF_RING_ZERO_AHEAD) & ~(uint64_t) (FF_RING_DATA_ALIGN - 1);
        CHECK(p.tx.zeroed == limit && limit - p.tx.head >= FF_RING_ZERO_AHEAD_LOW);
        for (uint64_t at = starts[i]; at < starts[i] + RING; ++at) {
            const uint8_t expect = at >= from && at < limit ? 0 : 0xa5;
            if (p.tx.data[at % RING] != expect) {
                fprintf(stderr, "head %llu: byte %llu is %#x, expected %#x\n", (unsigned long long) starts[i],
                        (unsigned long long) at, p.tx.data[at % RING], expect);
                CHECK(!"zero ahead stored the wrong bytes");
                break;
            }
        }
        for (uint32_t k = 0; k < 128; ++k) {
            CHECK(after[k] == 0x3c);
        }
        memset(after, 0, 128);
        /* enough left: nothing more is stored */
        p.tx.data[(limit - 1) % RING] = 0x5a;
        ff_ring_zero_ahead(&p.tx);
        CHECK(p.tx.data[(limit - 1) % RING] == 0x5a && p.tx.zeroed == limit);
    }
    pair_close(&p);
}

/* Producer and consumer in two processes, with outstanding reservations, shrinking commits and
 * cancellations; the consumer regenerates the producer's random choices and checks every byte. */
enum { STRESS_RECORDS = 300000 };

struct plan {
    uint32_t state;
};

static uint32_t plan_next(struct plan *plan)
{
    plan->state ^= plan->state << 13;
    plan->state ^= plan->state >> 17;
    plan->state ^= plan->state << 5;
    return plan->state;
}

static uint32_t record_length(uint32_t random, uint32_t max_payload)
{
    switch (random & 3) {
    case 0: return (random >> 4) % 64; /* one cache line */
    case 1: return (random >> 4) % 4096;
    default: return (random >> 4) % (max_payload + 1);
    }
}

/* The consumer (this process) reads records from the ring a forked producer claimed in its segment. */
static int producer_process(const char *dir);

static void test_two_processes(const char *dir)
{
    ff_segment_config_t config = {.dir = dir, .key = key, .owner_id = CONSUMER, .ring_size = 1u << 16, .max_rings = 1};
    ff_segment_t *own = NULL;
    CHECK_STATUS(ff_host_id_read(dir, &config.host), FF_OK);
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);

    pid_t child = fork();
    if (child == 0) {
        _exit(producer_process(dir));
    }
    uint32_t cursor = 0, index;
    uint64_t producer;
    /* Waits yield: with more runnable processes than CPUs a spinning waiter only delays the other side. */
    while (!ff_segment_next_ring(own, &cursor, &producer, &index)) {
        sched_yield();
    }
    CHECK(producer == PRODUCER);
    ff_ring_rx_t rx;
    CHECK_STATUS(ff_ring_rx_open(&rx, own, index), FF_OK);
    const uint32_t max_payload = (1u << 16) / 4;
    struct plan plan = {.state = 2463534242u};
    for (uint64_t seq = 0; seq < STRESS_RECORDS; ++seq) {
        uint32_t len = record_length(plan_next(&plan), max_payload);
        ff_ring_record_t record;
        while (!ff_ring_peek(&rx, &record)) {
            sched_yield();
        }
        if (record.len != len || record.tag != (uint8_t) seq || !matches(record.data, seq, len)) {
            fprintf(stderr, "consumer: record %llu: len %u (expected %u) tag %u\n", (unsigned long long) seq,
                    record.len, len, record.tag);
            CHECK(!"record corrupted");
            break;
        }
        ff_ring_consume(&rx);
    }
    /* Nothing after the last record; this pass also releases trailing padding to the producer, which
     * waits for the ring to drain before it exits. */
    ff_ring_record_t extra;
    CHECK(!ff_ring_peek(&rx, &extra));
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ff_segment_close(own);
}

/* Up to three reservations outstanding, committed in reverse order, each over-reserved by a random
 * amount and shrunk at commit; sometimes a cancelled reservation in between. */
static int producer_process(const char *dir)
{
    ff_segment_t *consumer = NULL;
    ff_host_id_t host;
    uint32_t index;
    ff_ring_tx_t tx;
    if (ff_host_id_read(dir, &host) != FF_OK || ff_segment_attach(dir, &key, CONSUMER, &host, &consumer) != FF_OK ||
        ff_segment_ring_claim(consumer, PRODUCER, &index) != FF_OK ||
        ff_ring_tx_open(&tx, consumer, index, PRODUCER) != FF_OK) {
        return 2;
    }
    struct plan plan = {.state = 2463534242u};
    uint32_t extra_state = 7;
    for (uint64_t seq = 0; seq < STRESS_RECORDS;) {
        void *payloads[3];
        uint32_t lens[3], reserved[3];
        int outstanding = 0;
        extra_state = extra_state * 1103515245u + 12345u;
        const int batch = 1 + (int) ((extra_state >> 16) % 3);
        while (outstanding < batch && seq + (uint64_t) outstanding < STRESS_RECORDS) {
            struct plan peek = plan;
            uint32_t len = record_length(plan_next(&peek), tx.max_payload);
            uint32_t over = (extra_state >> 8) % 64;
            uint32_t want = len + over > tx.max_payload ? len : len + over;
            const bool aligned = (extra_state >> 20) & 1;
            void *payload = ff_ring_reserve_placed(&tx, want, aligned, (extra_state >> 21) & 0x38);
            if (!payload) {
                break;
            }
            plan = peek;
            if ((extra_state & 0x700) == 0x700) {
                void *cancel = ff_ring_reserve(&tx, 40);
                if (cancel) {
                    ff_ring_cancel(&tx, cancel, 40);
                }
            }
            fill(payload, seq + (uint64_t) outstanding, len);
            payloads[outstanding] = payload;
            lens[outstanding] = len;
            reserved[outstanding] = want;
            ++outstanding;
        }
        for (int i = outstanding - 1; i >= 0; --i) {
            ff_ring_commit(&tx, payloads[i], reserved[i], lens[i], (uint8_t) (seq + (uint64_t) i));
        }
        if ((extra_state >> 24) & 1) {
            ff_ring_zero_ahead(&tx);
        }
        if (outstanding == 0) {
            sched_yield(); /* the ring is full: let the consumer run */
        }
        seq += (uint64_t) outstanding;
    }
    while (!ff_ring_tx_drained(&tx)) {
        sched_yield();
    }
    ff_segment_close(consumer);
    return 0;
}

int main(void)
{
    char *dir = scratch_dir_create();
    test_basic(dir);
    test_laps(dir, 4096);
    test_laps(dir, 1u << 16);
    test_zero_ahead_and_rewind(dir);
    test_zero_ahead_exact(dir);
    test_two_processes(dir);
    scratch_dir_remove(dir);
    return check_exit_code("test_ring");
}
