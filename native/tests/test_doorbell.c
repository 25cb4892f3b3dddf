/* Doorbell: an owner sleeping on its segment's futex word is woken by a producer's commit in another
 * process; a word forged by a hostile process only shortens or bounds a wait, never hangs it. */
#include "check.h"
#include "freeflow.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static const ff_job_key_t key = {{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6}};
enum { PRODUCER = 300, OWNER = 400 };
#define HEADER_BYTES 4096u

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

/* Producer in a child process: attaches the owner's segment, claims a ring, waits `delay_ms`, commits one
 * record and rings. Exits 0 when it made the wake-up call (the owner was armed). */
static void producer_child(const char *dir, const ff_host_id_t *host, unsigned int delay_ms)
{
    ff_segment_t *consumer = NULL;
    ff_ring_tx_t tx;
    uint32_t index = 0;
    if (FF_OK != ff_segment_attach(dir, &key, OWNER, host, &consumer) ||
        FF_OK != ff_segment_ring_claim(consumer, PRODUCER, &index) ||
        FF_OK != ff_ring_tx_open(&tx, consumer, index, PRODUCER)) {
        _exit(3);
    }
    struct timespec pause = {.tv_sec = delay_ms / 1000u, .tv_nsec = (long) (delay_ms % 1000u) * 1000000L};
    nanosleep(&pause, NULL);
    uint8_t *payload = ff_ring_reserve(&tx, 8);
    if (!payload) {
        _exit(4);
    }
    memcpy(payload, "doorbell", 8);
    ff_ring_commit(&tx, payload, 8, 8, 7);
    const bool woke = ff_doorbell_ring(consumer);
    ff_segment_close(consumer);
    _exit(woke ? 0 : 1);
}

/* The owner's own file mapped a second time, as any process of this user could: the forger's view. */
static uint32_t *map_raw(const char *dir, size_t *size)
{
    char path[4096];
    ff_segment_path(dir, &key, OWNER, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    *size = HEADER_BYTES;
    void *base = mmap(NULL, HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    CHECK(base != MAP_FAILED);
    return base;
}

/* The header word arm changes: found by comparing snapshots, so the test does not hard-code the layout. */
static _Atomic uint32_t *find_doorbell(ff_segment_t *own, uint32_t *raw)
{
    uint32_t before[HEADER_BYTES / 4];
    ff_doorbell_disarm(own);
    memcpy(before, raw, sizeof(before));
    ff_doorbell_arm(own);
    _Atomic uint32_t *found = NULL;
    for (size_t i = 0; i < HEADER_BYTES / 4; ++i) {
        if (raw[i] != before[i]) {
            CHECK(NULL == found); /* exactly one word */
            found = (_Atomic uint32_t *) (void *) &raw[i];
        }
    }
    ff_doorbell_disarm(own);
    CHECK(NULL != found && ((uintptr_t) found & 3u) == 0);
    return found;
}

int main(void)
{
    /* a hang is the failure this test exists to catch: end it as one */
    alarm(120);
    char *dir = scratch_dir_create();
    ff_segment_config_t config = {.dir = dir, .key = key, .owner_id = OWNER, .ring_size = 4096, .max_rings = 2};
    CHECK_STATUS(ff_host_id_read(dir, &config.host), FF_OK);
    ff_segment_t *own = NULL;
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    bool woken = true;

    /* Nobody rings: the wait ends by its timeout, and not as woken. A producer finds nobody asleep. */
    ff_doorbell_arm(own);
    CHECK_STATUS(ff_doorbell_wait(own, 2000000, &woken), FF_OK);
    CHECK(!woken);
    ff_segment_t *mapped = NULL;
    CHECK_STATUS(ff_segment_attach(dir, &key, OWNER, &config.host, &mapped), FF_OK);
    CHECK(!ff_doorbell_ring(mapped)); /* the wait disarmed */
    ff_doorbell_arm(own);
    ff_doorbell_disarm(own);
    CHECK(!ff_doorbell_ring(mapped));
    /* only the owner sleeps on its doorbell; a zero timeout would be a spin */
    CHECK_STATUS(ff_doorbell_wait(mapped, 1000, NULL), FF_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ff_doorbell_wait(own, 0, NULL), FF_ERR_INVALID_ARGUMENT);

    /* A sleeper woken by a committer in another process, before its 4 s timeout. */
    pid_t child = fork();
    if (0 == child) {
        producer_child(dir, &config.host, 200);
    }
    uint32_t cursor = 0, ring = 0;
    uint64_t producer = 0;
    const double claim_deadline = now_seconds() + 30.0;
    while (!ff_segment_next_ring(own, &cursor, &producer, &ring) && now_seconds() < claim_deadline) {
        usleep(1000);
    }
    ff_ring_rx_t rx;
    CHECK_STATUS(ff_ring_rx_open(&rx, own, ring), FF_OK);
    ff_ring_record_t record;
    ff_doorbell_arm(own);
    bool sleeping = !ff_ring_peek(&rx, &record); /* the re-check after arming */
    CHECK(sleeping);                             /* the child commits 200 ms after its claim */
    woken = false;
    if (sleeping) {
        CHECK_STATUS(ff_doorbell_wait(own, 4000000000u, &woken), FF_OK);
    } else {
        ff_doorbell_disarm(own);
    }
    CHECK(woken); /* rung, not timed out */
    CHECK(ff_ring_peek(&rx, &record) && 8 == record.len && 0 == memcmp(record.data, "doorbell", 8));
    ff_ring_consume(&rx);
    int wstatus = -1;
    CHECK(waitpid(child, &wstatus, 0) == child);
    CHECK(WIFEXITED(wstatus) && 0 == WEXITSTATUS(wstatus)); /* the producer saw us asleep and woke us */

    /* Forgeries, by any process that maps the file. */
    size_t raw_size = 0;
    uint32_t *raw = map_raw(dir, &raw_size);
    _Atomic uint32_t *word = find_doorbell(own, raw);
    if (word) {
        /* a forged "sleeping" while the owner is awake: a needless wake-up call, nothing else */
        atomic_store(word, 1u);
        CHECK(ff_doorbell_ring(mapped));
        CHECK(0u == atomic_load(word));
        /* garbage in the word: no wake-up call, and the owner's wait returns at once (spurious) */
        atomic_store(word, 0xdeadbeefu);
        CHECK(!ff_doorbell_ring(mapped));
        CHECK_STATUS(ff_doorbell_wait(own, 2000000000u, &woken), FF_OK);
        CHECK(woken);
        /* a forger that keeps writing "sleeping": the wait still ends by its timeout */
        child = fork();
        if (0 == child) {
            for (;;) {
                atomic_store(word, 1u);
                usleep(100);
            }
        }
        for (int i = 0; i < 20; ++i) {
            ff_doorbell_arm(own);
            CHECK_STATUS(ff_doorbell_wait(own, 5000000, NULL), FF_OK);
        }
        /* and one that keeps clearing it: waits return early, never block */
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = fork();
        if (0 == child) {
            for (;;) {
                atomic_store(word, 0u);
            }
        }
        for (int i = 0; i < 20; ++i) {
            ff_doorbell_arm(own);
            CHECK_STATUS(ff_doorbell_wait(own, 5000000, NULL), FF_OK);
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    munmap(raw, raw_size);
    ff_segment_close(mapped);
    ff_segment_close(own);
    scratch_dir_remove(dir);
    return check_exit_code("test_doorbell");
}
