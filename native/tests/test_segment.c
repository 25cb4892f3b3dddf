/* Segments: creation, verification on attach (every refusal), unlinking, announcements from many
 * producer processes at once with content checks. */
#include "check.h"
#include "freeflow.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const ff_job_key_t key = {{0xaa, 0xbb, 0xcc, 0xdd, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};

static ff_segment_config_t config_for(const char *dir, uint64_t owner)
{
    ff_segment_config_t config = {.dir = dir, .key = key, .owner_id = owner, .ring_size = 8192, .max_rings = 8};
    if (ff_host_id_read(dir, &config.host) != FF_OK) {
        fprintf(stderr, "cannot read host id of %s\n", dir);
        exit(2);
    }
    return config;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Overwrites `len` bytes at `offset` of a segment file. */
static void patch(const char *path, off_t offset, const void *bytes, size_t len)
{
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0 && pwrite(fd, bytes, len, offset) == (ssize_t) len);
    close(fd);
}

static void test_refusals(const char *dir)
{
    ff_segment_config_t config = config_for(dir, 42);
    ff_segment_t *own = NULL, *peer = NULL;
    char path[4096];
    ff_segment_path(dir, &key, 42, path, sizeof(path));

    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_ERR_NOT_FOUND);
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    CHECK(strcmp(ff_segment_file(own), path) == 0 && file_exists(path));
    CHECK(ff_segment_owner_id(own) == 42);

    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_OK);
    ff_segment_close(peer);

    /* A key that differs in the bytes the file name carries names another file; one that differs
     * only elsewhere finds this file and is refused as another job's. */
    ff_job_key_t other_key = key;
    other_key.bytes[0] ^= 1;
    CHECK_STATUS(ff_segment_attach(dir, &other_key, 42, &config.host, &peer), FF_ERR_NOT_FOUND);
    other_key = key;
    other_key.bytes[15] ^= 1;
    CHECK_STATUS(ff_segment_attach(dir, &other_key, 42, &config.host, &peer), FF_ERR_FOREIGN_JOB);

    /* A file under owner 44's name whose header says owner 42. */
    char owner_path[4096];
    ff_segment_path(dir, &key, 44, owner_path, sizeof(owner_path));
    CHECK(link(path, owner_path) == 0);
    CHECK_STATUS(ff_segment_attach(dir, &key, 44, &config.host, &peer), FF_ERR_OWNER_MISMATCH);
    unlink(owner_path);

    /* Another host: same boot id, other shared directory. */
    ff_host_id_t elsewhere = config.host;
    elsewhere.dir_dev ^= 1;
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &elsewhere, &peer), FF_ERR_HOST_MISMATCH);
    elsewhere = config.host;
    elsewhere.boot_id[0] ^= 1;
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &elsewhere, &peer), FF_ERR_HOST_MISMATCH);

    /* Layout version from the future, then a corrupted magic. */
    uint32_t version = 4;
    patch(path, 8, &version, sizeof(version));
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_ERR_VERSION_MISMATCH);
    /* layout 2 had no doorbell: its senders would never wake a sleeping owner */
    version = 2;
    patch(path, 8, &version, sizeof(version));
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_ERR_VERSION_MISMATCH);
    /* layout 1 re-read header values from shared memory: a mix with it is refused too */
    version = 1;
    patch(path, 8, &version, sizeof(version));
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_ERR_VERSION_MISMATCH);
    version = 3;
    patch(path, 8, &version, sizeof(version));
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_OK);
    ff_segment_close(peer);
    patch(path, 0, "notmagic", 8);
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_ERR_BAD_MAGIC);
    patch(path, 0, "FFLWSEG1", 8);
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_OK);
    ff_segment_close(peer);

    /* Truncated: to less than a header, then to a valid header with missing rings. */
    CHECK(truncate(path, 100000) == 0);
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_ERR_TRUNCATED);
    CHECK(truncate(path, 100) == 0);
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_ERR_TRUNCATED);

    /* Something that is not a segment at all. */
    int fd = open(path, O_RDWR | O_TRUNC);
    CHECK(fd >= 0 && write(fd, "hello, this is not a segment\n", 29) == 29);
    close(fd);
    CHECK_STATUS(ff_segment_attach(dir, &key, 42, &config.host, &peer), FF_ERR_BAD_MAGIC);

    ff_segment_close(own);
    CHECK(!file_exists(path));

    /* Bad configurations. */
    ff_segment_config_t bad = config_for(dir, 45);
    bad.ring_size = 5000;
    CHECK_STATUS(ff_segment_create(&bad, &own), FF_ERR_INVALID_ARGUMENT);
    bad.ring_size = 8192;
    bad.max_rings = 0;
    CHECK_STATUS(ff_segment_create(&bad, &own), FF_ERR_INVALID_ARGUMENT);
    bad = config_for(dir, 45);
    bad.dir = "/nonexistent/freeflow";
    CHECK_STATUS(ff_segment_create(&bad, &own), FF_ERR_NOT_FOUND);
}

static void test_unlink_after_expected_peers(const char *dir)
{
    ff_segment_config_t config = config_for(dir, 7);
    config.expected_peers = 2;
    ff_segment_t *own = NULL, *a = NULL, *b = NULL;
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    const char *path = ff_segment_file(own);
    CHECK_STATUS(ff_segment_attach(dir, &key, 7, &config.host, &a), FF_OK);
    CHECK(file_exists(path));
    CHECK_STATUS(ff_segment_attach(dir, &key, 7, &config.host, &b), FF_OK);
    CHECK(!file_exists(path)); /* every expected peer attached: the name is gone, mappings stay */
    ff_segment_close(a);
    ff_segment_close(b);
    ff_segment_close(own);

    /* A stale file of the same name is replaced at creation. */
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    ff_segment_t *again = NULL;
    config.ring_size = 16384;
    CHECK_STATUS(ff_segment_create(&config, &again), FF_OK);
    CHECK_STATUS(ff_segment_attach(dir, &key, 7, &config.host, &a), FF_OK);
    ff_segment_close(a);
    ff_segment_close(again);
    ff_segment_close(own);
}

static void test_memory_formula(const char *dir)
{
    ff_segment_config_t config = config_for(dir, 9);
    ff_segment_t *own = NULL, *mapped = NULL;
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    CHECK_STATUS(ff_segment_attach(dir, &key, 9, &config.host, &mapped), FF_OK);
    const size_t empty = ff_segment_bytes_in_use(own);
    CHECK(empty == ff_segment_bytes_for(8192, 0));
    uint32_t index;
    CHECK_STATUS(ff_segment_ring_claim(mapped, 1, &index), FF_OK);
    CHECK_STATUS(ff_segment_ring_claim(mapped, 2, &index), FF_OK);
    CHECK(ff_segment_bytes_in_use(own) == empty + 2 * (8192 + 128));
    CHECK(ff_segment_bytes_for(8192, 2) == ff_segment_bytes_in_use(own));
    for (int i = 2; i < 8; ++i) {
        CHECK_STATUS(ff_segment_ring_claim(mapped, (uint64_t) i + 1, &index), FF_OK);
    }
    CHECK_STATUS(ff_segment_ring_claim(mapped, 99, &index), FF_ERR_FULL);
    CHECK(ff_segment_bytes_in_use(own) == ff_segment_bytes_for(8192, 8));
    ff_segment_close(mapped);
    ff_segment_close(own);
}

/* Several producer processes claim rings in one consumer's segment at once and stream checked
 * records into them; the consumer finds the rings by polling its own segment. */
enum { PRODUCERS = 4, RECORDS_PER_PRODUCER = 50000, CONSUMER_ID = 1000 };

static uint8_t byte_for(uint64_t producer, uint64_t seq, uint32_t i)
{
    return (uint8_t) (producer * 17u + seq * 31u + i);
}

static int producer_process(const char *dir, uint64_t id)
{
    ff_segment_config_t config = config_for(dir, id);
    ff_segment_t *consumer = NULL;
    uint32_t index;
    ff_ring_tx_t tx;
    if (ff_segment_attach(dir, &key, CONSUMER_ID, &config.host, &consumer) != FF_OK ||
        ff_segment_ring_claim(consumer, id, &index) != FF_OK || ff_ring_tx_open(&tx, consumer, index, id) != FF_OK) {
        return 2;
    }
    for (uint64_t seq = 0; seq < RECORDS_PER_PRODUCER; ++seq) {
        uint32_t len = (uint32_t) ((seq * 2654435761u) % 2000) /* payload <= ring size / 4 (max_payload) */;
        uint8_t *payload;
        /* Waits yield: with more runnable processes than CPUs a spinning producer only delays the consumer. */
        while (!(payload = ff_ring_reserve(&tx, len + 8))) {
            sched_yield();
        }
        memcpy(payload, &seq, 8);
        for (uint32_t i = 0; i < len; ++i) {
            payload[8 + i] = byte_for(id, seq, i);
        }
        ff_ring_commit(&tx, payload, len + 8, len + 8, (uint8_t) id);
    }
    while (!ff_ring_tx_drained(&tx)) {
        sched_yield();
    }
    ff_segment_close(consumer);
    return 0;
}

static void test_many_producers(const char *dir)
{
    ff_segment_config_t config = config_for(dir, CONSUMER_ID);
    ff_segment_t *own = NULL;
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    pid_t children[PRODUCERS];
    for (int p = 0; p < PRODUCERS; ++p) {
        children[p] = fork();
        if (children[p] == 0) {
            _exit(producer_process(dir, (uint64_t) p + 1));
        }
    }
    ff_ring_rx_t rx[PRODUCERS];
    bool open[PRODUCERS] = {false};
    uint64_t next_seq[PRODUCERS] = {0};
    uint32_t cursor = 0;
    int found = 0;
    uint64_t total = 0, errors = 0;
    while (total < (uint64_t) PRODUCERS * RECORDS_PER_PRODUCER && errors == 0) {
        const uint64_t total_before_pass = total;
        uint64_t producer_id;
        uint32_t ring_index;
        while (ff_segment_next_ring(own, &cursor, &producer_id, &ring_index)) {
            CHECK(producer_id >= 1 && producer_id <= PRODUCERS);
            int p = (int) producer_id - 1;
            CHECK_STATUS(ff_ring_rx_open(&rx[p], own, ring_index), FF_OK);
            open[p] = true;
            ++found;
        }
        for (int p = 0; p < PRODUCERS; ++p) {
            ff_ring_record_t record;
            if (!open[p] || !ff_ring_peek(&rx[p], &record)) {
                if (open[p] && rx[p].broken) {
                    fprintf(stderr, "producer %d ring broken at %llu\n", p + 1, (unsigned long long) rx[p].bad_offset);
                    ++errors;
                }
                continue;
            }
            uint64_t seq;
            memcpy(&seq, record.data, 8);
            uint32_t len = (uint32_t) ((next_seq[p] * 2654435761u) % 2000) /* payload <= ring size / 4 (max_payload) */;
            const uint8_t *bytes = (const uint8_t *) record.data + 8;
            bool ok = seq == next_seq[p] && record.len == len + 8 && record.tag == p + 1;
            for (uint32_t i = 0; ok && i < len; ++i) {
                ok = bytes[i] == byte_for((uint64_t) p + 1, seq, i);
            }
            if (!ok) {
                fprintf(stderr, "producer %d record %llu corrupted\n", p + 1, (unsigned long long) next_seq[p]);
                ++errors;
            }
            ff_ring_consume(&rx[p]);
            ++next_seq[p];
            ++total;
        }
        if (total == total_before_pass) {
            sched_yield(); /* every ring was empty: let the producers run */
        }
    }
    CHECK(errors == 0);
    CHECK(found == PRODUCERS);
    for (int p = 0; p < PRODUCERS; ++p) {
        int status = 0;
        CHECK(waitpid(children[p], &status, 0) == children[p]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ff_segment_close(own);
}

int main(void)
{
    char *dir = scratch_dir_create();
    test_refusals(dir);
    test_unlink_after_expected_peers(dir);
    test_memory_formula(dir);
    test_many_producers(dir);
    scratch_dir_remove(dir);
    return check_exit_code("test_segment");
}
