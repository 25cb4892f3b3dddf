/*
 * Shared segments: one sparse file per process in the job's shared directory.
 *
 * Layout (version 3), all offsets from the start of the file:
 *   [0, 4096)            segment header (struct segment_header), with the ring claim counter and the
 *                        owner's doorbell word, each on a cache line of its own
 *   [4096, ...)          max_rings ring slots of ring_stride bytes: a 128-byte control block (state,
 *                        producer id; the consumer's tail on its own cache line) then ring_size data bytes
 * Rings carry data to the segment's owner; producers claim them. The file is sized for every ring up
 * front but is sparse: pages cost memory only once written, so a process uses shared memory in
 * proportion to the peers that actually send to it.
 */
#define _GNU_SOURCE
#include "freeflow.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEGMENT_MAGIC 0x31474553574c4646ULL /* "FFLWSEG1" in little-endian byte order */
/* 2: layout values are private copies after attach, trust checks on every file (issue 7). The header's
 * layout is unchanged, but a version-1 process re-reads values a peer could tamper with: never mix them.
 * 3: the doorbell word in the header (issue 10): a version-2 sender would never wake a sleeping owner. */
#define SEGMENT_VERSION    3u
#define HEADER_BYTES       4096u
#define CACHE_LINE         64u
#define RING_CONTROL_BYTES 128u

struct segment_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_bytes;
    uint64_t file_size;
    ff_job_key_t key;
    uint64_t owner_id;
    int64_t owner_pid; /* in the owner's PID namespace: for diagnostics only */
    ff_host_id_t host;
    uint32_t ring_size;
    uint32_t max_rings;
    uint64_t ring_stride;
    uint64_t rings_offset;
    uint32_t expected_peers;
    _Atomic uint32_t ready;    /* 1 once every field above is written (release) */
    _Atomic uint32_t attached; /* peers that attached so far */
    uint8_t pad[CACHE_LINE];
    _Atomic uint32_t rings_claimed; /* claim counter, bumped by producers; may exceed max_rings */
    uint8_t pad2[CACHE_LINE - sizeof(uint32_t)];
    /* DOORBELL_SLEEPING while the owner waits for a commit (ff_doorbell_*); its own line, so that
     * producers checking it on every commit do not contend with ring claims */
    _Atomic uint32_t doorbell;
};

/* The fields the owner writes once and nobody may change: compared with the owner's copy by verify_own. */
#define HEADER_FIXED_BYTES offsetof(struct segment_header, ready)

struct ring_control {
    _Atomic uint32_t state; /* RING_CLAIMED once producer_id and size are written (release) */
    uint32_t size;
    uint64_t producer_id;
    uint8_t pad0[CACHE_LINE - 16];
    _Atomic uint64_t tail; /* written only by the consumer; its own line, away from the producer's data */
    uint8_t pad1[CACHE_LINE - 8];
};

_Static_assert(sizeof(struct segment_header) <= HEADER_BYTES, "segment header too large");
_Static_assert(sizeof(struct ring_control) == RING_CONTROL_BYTES, "ring control block size");
#define RING_CLAIMED 1u

/* Everything that steers an address or a size is a private copy, taken at create/attach from a verified
 * header and never read from shared memory again: another process may rewrite the header at any time. */
struct ff_segment {
    uint8_t *base;
    size_t size; /* mapped bytes == file size at attach */
    uint32_t ring_size;
    uint32_t max_rings;
    uint64_t ring_stride;
    uint64_t rings_offset;
    uint64_t owner_id;
    uint32_t expected_peers;
    bool owner;
    bool linked;
    int dirfd; /* owner: verified directory (dup), for unlink and verify_own; peers: -1 */
    dev_t dev; /* owner: the inode our name must still lead to */
    ino_t ino;
    uint8_t fixed[HEADER_FIXED_BYTES]; /* owner: the header as written */
    char name[64];
    char path[4096];
};

static struct segment_header *header_of(const ff_segment_t *segment)
{
    return (struct segment_header *) (void *) segment->base;
}

static struct ring_control *ring_control_at(const ff_segment_t *segment, uint32_t index)
{
    return (struct ring_control *) (void *) (segment->base + segment->rings_offset +
                                             (size_t) index * segment->ring_stride);
}

static int segment_name(const ff_job_key_t *key, uint64_t owner_id, char *buf, size_t len)
{
    return snprintf(buf, len, "freeflow-%02x%02x%02x%02x-%016llx.seg", key->bytes[0], key->bytes[1], key->bytes[2],
                    key->bytes[3], (unsigned long long) owner_id);
}

size_t ff_segment_bytes_for(uint32_t ring_size, uint32_t rings)
{
    return HEADER_BYTES + (size_t) rings * ((size_t) ring_size + RING_CONTROL_BYTES);
}

int ff_segment_path(const char *dir, const ff_job_key_t *key, uint64_t owner_id, char *buf, size_t len)
{
    char name[64];
    segment_name(key, owner_id, name, sizeof(name));
    return snprintf(buf, len, "%s/%s", dir, name);
}

static bool is_power_of_two(uint32_t v)
{
    return v && !(v & (v - 1));
}

static void segment_free(ff_segment_t *segment)
{
    if (segment->dirfd >= 0) {
        close(segment->dirfd);
    }
    free(segment);
}

static ff_status_t segment_alloc(const char *dir, const ff_job_key_t *key, uint64_t owner_id, ff_segment_t **out)
{
    ff_segment_t *segment = calloc(1, sizeof(*segment));
    if (!segment) {
        return FF_ERR_NO_MEMORY;
    }
    segment->dirfd = -1;
    segment_name(key, owner_id, segment->name, sizeof(segment->name));
    int n = snprintf(segment->path, sizeof(segment->path), "%s/%s", dir ? dir : "<dir>", segment->name);
    if (n < 0 || (size_t) n >= sizeof(segment->path)) {
        free(segment);
        return FF_ERR_INVALID_ARGUMENT;
    }
    *out = segment;
    return FF_OK;
}

ff_status_t ff_segment_create(const ff_segment_config_t *config, ff_segment_t **out)
{
    if (!config || !out || !config->dir || !is_power_of_two(config->ring_size) || config->ring_size < 4096u ||
        config->ring_size > (1u << 30) || config->max_rings == 0 || config->max_rings > (1u << 20)) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    ff_segment_t *segment = NULL;
    ff_status_t status = segment_alloc(config->dir, &config->key, config->owner_id, &segment);
    if (status != FF_OK) {
        return status;
    }
    if (config->dir_fd > 0) {
        segment->dirfd = fcntl(config->dir_fd, F_DUPFD_CLOEXEC, 0);
        status = segment->dirfd < 0 ? FF_ERR_SYSTEM : FF_OK;
    } else {
        status = ff_dir_open(config->dir, &segment->dirfd, NULL, 0);
    }
    if (status != FF_OK) {
        segment_free(segment);
        return status;
    }

    const uint64_t ring_stride = (uint64_t) config->ring_size + RING_CONTROL_BYTES;
    const size_t size = HEADER_BYTES + (size_t) config->max_rings * ring_stride;

    /* A new file, never an existing one and never through a symlink. A file of the same name that is
     * ours is a leftover of a dead process with the same job key and owner id: replace it. Anything else
     * under our name (a symlink, a fifo, another user's file) was planted: refuse. */
    const int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(segment->dirfd, segment->name, flags, 0600);
    if (fd < 0 && errno == EEXIST) {
        struct stat st;
        if (fstatat(segment->dirfd, segment->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            (!S_ISREG(st.st_mode) || st.st_uid != geteuid())) {
            segment_free(segment);
            return FF_ERR_UNTRUSTED;
        }
        unlinkat(segment->dirfd, segment->name, 0);
        fd = openat(segment->dirfd, segment->name, flags, 0600);
    }
    if (fd < 0) {
        status = errno == ENOENT ? FF_ERR_NOT_FOUND : FF_ERR_SYSTEM;
        segment_free(segment);
        return status;
    }
    struct stat st;
    if (ftruncate(fd, (off_t) size) != 0 || fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        unlinkat(segment->dirfd, segment->name, 0);
        segment_free(segment);
        errno = saved;
        return FF_ERR_SYSTEM;
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (base == MAP_FAILED) {
        unlinkat(segment->dirfd, segment->name, 0);
        segment_free(segment);
        errno = saved;
        return FF_ERR_SYSTEM;
    }
    segment->base = base;
    segment->size = size;
    segment->owner = true;
    segment->linked = true;
    segment->dev = st.st_dev;
    segment->ino = st.st_ino;
    segment->ring_size = config->ring_size;
    segment->max_rings = config->max_rings;
    segment->ring_stride = ring_stride;
    segment->rings_offset = HEADER_BYTES;
    segment->owner_id = config->owner_id;
    segment->expected_peers = config->expected_peers;

    struct segment_header *h = header_of(segment);
    h->magic = SEGMENT_MAGIC;
    h->version = SEGMENT_VERSION;
    h->header_bytes = HEADER_BYTES;
    h->file_size = size;
    h->key = config->key;
    h->owner_id = config->owner_id;
    h->owner_pid = (int64_t) getpid();
    h->host = config->host;
    h->ring_size = config->ring_size;
    h->max_rings = config->max_rings;
    h->ring_stride = ring_stride;
    h->rings_offset = HEADER_BYTES;
    h->expected_peers = config->expected_peers;
    memcpy(segment->fixed, h, HEADER_FIXED_BYTES);
    /* release: a peer that sees ready == 1 (acquire) sees every field above */
    atomic_store_explicit(&h->ready, 1, memory_order_release);
    *out = segment;
    return FF_OK;
}

/* Checks a private copy of a header against what the caller expects. */
static ff_status_t verify_header(const struct segment_header *h, size_t file_size, const ff_job_key_t *key,
                                 uint64_t owner_id, const ff_host_id_t *host)
{
    if (h->magic != SEGMENT_MAGIC) {
        return FF_ERR_BAD_MAGIC;
    }
    /* The version decides the layout of everything after it: check it before reading other fields. */
    if (h->version != SEGMENT_VERSION || h->header_bytes != HEADER_BYTES) {
        return FF_ERR_VERSION_MISMATCH;
    }
    if (h->file_size != file_size || !is_power_of_two(h->ring_size) || h->ring_size < 4096u ||
        h->ring_size > (1u << 30) || h->max_rings == 0 || h->max_rings > (1u << 20) ||
        h->ring_stride != (uint64_t) h->ring_size + RING_CONTROL_BYTES || h->rings_offset != HEADER_BYTES ||
        h->file_size != h->rings_offset + (uint64_t) h->max_rings * h->ring_stride) {
        return FF_ERR_TRUNCATED;
    }
    if (!ff_job_key_equal(&h->key, key)) {
        return FF_ERR_FOREIGN_JOB;
    }
    if (h->owner_id != owner_id) {
        return FF_ERR_OWNER_MISMATCH;
    }
    if (host && !ff_host_id_equal(&h->host, host)) {
        return FF_ERR_HOST_MISMATCH;
    }
    return FF_OK;
}

/* Only a regular file of ours that nobody else can read or write can be a segment of this job. */
static bool trusted_segment_file(const struct stat *st)
{
    return S_ISREG(st->st_mode) && st->st_uid == geteuid() && !(st->st_mode & 077);
}

ff_status_t ff_segment_attach_at(int dirfd, const ff_job_key_t *key, uint64_t owner_id, const ff_host_id_t *host,
                                 ff_segment_t **out)
{
    if (dirfd < 0 || !key || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    ff_segment_t *segment = NULL;
    ff_status_t status = segment_alloc(NULL, key, owner_id, &segment);
    if (status != FF_OK) {
        return status;
    }
    snprintf(segment->path, sizeof(segment->path), "%s", segment->name);
    /* O_NONBLOCK: a fifo planted under the name must not block us; O_NOFOLLOW: nor a symlink lead us */
    int fd = openat(dirfd, segment->name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        status = errno == ENOENT ? FF_ERR_NOT_FOUND : errno == ELOOP ? FF_ERR_UNTRUSTED : FF_ERR_SYSTEM;
        int saved = errno;
        segment_free(segment);
        errno = saved;
        return status;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        status = FF_ERR_SYSTEM;
    } else if (!trusted_segment_file(&st)) {
        status = FF_ERR_UNTRUSTED;
    } else if ((size_t) st.st_size < HEADER_BYTES) {
        /* Too short for a header: a truncated segment, unless what is there is not ours at all. */
        status = FF_ERR_TRUNCATED;
        if (st.st_size >= (off_t) sizeof(uint64_t)) {
            uint64_t magic = 0;
            if (pread(fd, &magic, sizeof(magic), 0) == (ssize_t) sizeof(magic) && magic != SEGMENT_MAGIC) {
                status = FF_ERR_BAD_MAGIC;
            }
        }
    }
    if (status != FF_OK) {
        int saved = errno;
        close(fd);
        segment_free(segment);
        errno = saved;
        return status;
    }
    const size_t size = (size_t) st.st_size;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (base == MAP_FAILED) {
        segment_free(segment);
        errno = saved;
        return FF_ERR_SYSTEM;
    }
    segment->base = base;
    segment->size = size;
    struct segment_header *shared = header_of(segment);
    /* Verify a private copy, not the shared header: its owner (or anyone who can write the file) may
     * change it between our check and our use. */
    struct segment_header h;
    memcpy(&h, shared, HEADER_FIXED_BYTES);
    status = h.magic != SEGMENT_MAGIC       ? FF_ERR_BAD_MAGIC
             : h.version != SEGMENT_VERSION ? FF_ERR_VERSION_MISMATCH
             /* acquire: pairs with the owner's release of `ready`; the copy below sees every field */
             : !atomic_load_explicit(&shared->ready, memory_order_acquire) ? FF_ERR_NOT_READY
                                                                           : FF_OK;
    if (status == FF_OK) {
        memcpy(&h, shared, HEADER_FIXED_BYTES);
        status = verify_header(&h, size, key, owner_id, host);
    }
    if (status != FF_OK) {
        munmap(base, size);
        segment_free(segment);
        return status;
    }
    segment->ring_size = h.ring_size;
    segment->max_rings = h.max_rings;
    segment->ring_stride = h.ring_stride;
    segment->rings_offset = h.rings_offset;
    segment->owner_id = h.owner_id;
    segment->expected_peers = h.expected_peers;
    segment->linked = true;
    /* acq_rel: the last expected attacher sees every earlier attach before it unlinks */
    const uint32_t attached = atomic_fetch_add_explicit(&shared->attached, 1, memory_order_acq_rel) + 1;
    if (h.expected_peers && attached == h.expected_peers) {
        /* Every expected peer holds a mapping now: the name is no longer needed, and removing it here
         * means a rank killed later leaves nothing behind. */
        unlinkat(dirfd, segment->name, 0);
    }
    *out = segment;
    return FF_OK;
}

ff_status_t ff_segment_attach(const char *dir, const ff_job_key_t *key, uint64_t owner_id, const ff_host_id_t *host,
                              ff_segment_t **out)
{
    if (!dir || !key || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    int dirfd;
    ff_status_t status = ff_dir_open(dir, &dirfd, NULL, 0);
    if (status != FF_OK) {
        return status;
    }
    status = ff_segment_attach_at(dirfd, key, owner_id, host, out);
    close(dirfd);
    if (status == FF_OK) {
        snprintf((*out)->path, sizeof((*out)->path), "%s/%s", dir, (*out)->name);
    }
    return status;
}

ff_status_t ff_segment_verify_own(ff_segment_t *own)
{
    if (!own || !own->owner) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    if (!own->linked) {
        return FF_ERR_NOT_FOUND;
    }
    struct stat st;
    if (fstatat(own->dirfd, own->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return errno == ENOENT ? FF_ERR_NOT_FOUND : FF_ERR_SYSTEM;
    }
    if (!trusted_segment_file(&st) || st.st_dev != own->dev || st.st_ino != own->ino) {
        return FF_ERR_UNTRUSTED; /* replaced by a symlink, a fifo, another file, or opened up to others */
    }
    if ((size_t) st.st_size != own->size) {
        return FF_ERR_TRUNCATED;
    }
    if (memcmp(own->base, own->fixed, HEADER_FIXED_BYTES) != 0 ||
        atomic_load_explicit(&header_of(own)->ready, memory_order_relaxed) != 1) {
        return FF_ERR_CORRUPT;
    }
    return FF_OK;
}

void ff_segment_unlink(ff_segment_t *segment)
{
    if (segment && segment->owner && segment->linked) {
        /* ENOENT: the last expected peer already did it. Only our own inode: never remove a file someone
         * put in its place. */
        struct stat st;
        if (fstatat(segment->dirfd, segment->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == segment->dev &&
            st.st_ino == segment->ino) {
            unlinkat(segment->dirfd, segment->name, 0);
        }
        segment->linked = false;
    }
}

void ff_segment_close(ff_segment_t *segment)
{
    if (!segment) {
        return;
    }
    ff_segment_unlink(segment);
    munmap(segment->base, segment->size);
    segment_free(segment);
}

uint64_t ff_segment_owner_id(const ff_segment_t *segment)
{
    return segment->owner_id;
}

const char *ff_segment_file(const ff_segment_t *segment)
{
    return segment->path;
}

size_t ff_segment_bytes_in_use(const ff_segment_t *segment)
{
    const struct segment_header *h = header_of(segment);
    /* relaxed: a statistic; clamped, since any process that maps the file can write the counter */
    uint32_t claimed = atomic_load_explicit(&h->rings_claimed, memory_order_relaxed);
    return ff_segment_bytes_for(segment->ring_size, claimed < segment->max_rings ? claimed : segment->max_rings);
}

static uint8_t *ring_data(struct ring_control *control)
{
    return (uint8_t *) control + RING_CONTROL_BYTES;
}

/* Maps a ring's pages into this process now rather than on the first lap: otherwise the first large
 * messages pay a page fault every 4 KiB on both sides (measured: 32 KiB latency 8.1 us cold, 5.4 us
 * warm). Best effort: kernels before 5.14 lack the advice and fault pages in as they are touched. */
static void populate_ring(struct ring_control *control, uint32_t ring_size, int advice)
{
    const uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE);
    const uintptr_t start = (uintptr_t) control & ~(page - 1);
    const uintptr_t end = (uintptr_t) ring_data(control) + ring_size;
    (void) madvise((void *) start, end - start, advice);
}

ff_status_t ff_segment_ring_claim(ff_segment_t *consumer, uint64_t producer_id, uint32_t *ring_index)
{
    if (!consumer || !ring_index) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    struct segment_header *h = header_of(consumer);
    /* relaxed: the claim only picks a slot; what the consumer reads is published by the release below */
    const uint32_t index = atomic_fetch_add_explicit(&h->rings_claimed, 1, memory_order_relaxed);
    if (index >= consumer->max_rings) {
        return FF_ERR_FULL;
    }
    struct ring_control *control = ring_control_at(consumer, index);
    control->producer_id = producer_id;
    control->size = consumer->ring_size;
    populate_ring(control, consumer->ring_size, MADV_POPULATE_WRITE);
    /* release: the consumer sees producer_id and size once it sees the claim (acquire) */
    atomic_store_explicit(&control->state, RING_CLAIMED, memory_order_release);
    *ring_index = index;
    return FF_OK;
}

bool ff_segment_next_ring(ff_segment_t *own, uint32_t *cursor, uint64_t *producer_id, uint32_t *ring_index)
{
    const struct segment_header *h = header_of(own);
    /* relaxed: only a bound; the slot's state (acquire) publishes its contents. Any process that maps the
     * segment can write the counter: clamp it to our private slot count. */
    uint32_t claimed = atomic_load_explicit(&h->rings_claimed, memory_order_relaxed);
    if (claimed > own->max_rings) {
        claimed = own->max_rings;
    }
    if (*cursor >= claimed) {
        return false;
    }
    struct ring_control *control = ring_control_at(own, *cursor);
    /* acquire: pairs with the release in ff_segment_ring_claim. A slot claimed but not yet published is
     * reported on a later pass, keeping rings in claim order. */
    if (atomic_load_explicit(&control->state, memory_order_acquire) != RING_CLAIMED) {
        return false;
    }
    *producer_id = control->producer_id; /* an identity only: never an address or a size */
    *ring_index = (*cursor)++;
    return true;
}

const _Atomic uint32_t *ff_segment_claim_counter(const ff_segment_t *own)
{
    return &header_of(own)->rings_claimed;
}

ff_status_t ff_ring_tx_open(ff_ring_tx_t *tx, ff_segment_t *consumer, uint32_t ring_index, uint64_t producer_id)
{
    if (!tx || !consumer || ring_index >= consumer->max_rings) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    struct ring_control *control = ring_control_at(consumer, ring_index);
    /* acquire: pairs with our own release in claim (or another claimer's, when it is not ours) */
    if (atomic_load_explicit(&control->state, memory_order_acquire) != RING_CLAIMED ||
        control->producer_id != producer_id) {
        return FF_ERR_OWNER_MISMATCH;
    }
    memset(tx, 0, sizeof(*tx));
    tx->data = ring_data(control);
    tx->tail = &control->tail;
    /* private: a ring is claimed once, so it starts empty; offsets are masked by our own size */
    tx->size = consumer->ring_size;
    tx->max_payload = consumer->ring_size / 4;
    tx->tail_seen = 0;
    tx->head = 0;
    tx->zeroed = FF_RING_HEADER_SIZE; /* a new ring's first header is zero; ff_ring_zero_ahead does the rest */
    return FF_OK;
}

ff_status_t ff_ring_rx_open(ff_ring_rx_t *rx, ff_segment_t *own, uint32_t ring_index)
{
    if (!rx || !own || ring_index >= own->max_rings) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    struct ring_control *control = ring_control_at(own, ring_index);
    /* acquire: pairs with the producer's release in claim */
    if (atomic_load_explicit(&control->state, memory_order_acquire) != RING_CLAIMED) {
        return FF_ERR_NOT_READY;
    }
    if (control->size != own->ring_size) {
        return FF_ERR_CORRUPT; /* no producer writes another size: tampering */
    }
    populate_ring(control, own->ring_size, MADV_POPULATE_WRITE);
    memset(rx, 0, sizeof(*rx));
    rx->data = ring_data(control);
    rx->tail = &control->tail;
    rx->size = own->ring_size;
    rx->max_payload = own->ring_size / 4;
    rx->pos = 0; /* a ring is claimed once: it starts empty, whatever its tail word says */
    return FF_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* Doorbell (freeflow.h): a futex word in the owner's header. Not FUTEX_PRIVATE_FLAG: the word is in a
 * MAP_SHARED file mapping, so the kernel keys it by inode and offset, the same in every process and PID
 * namespace that maps the file. Every value another process can write only makes the owner's wait end
 * early or last its bounded timeout, and a producer's check a needless FUTEX_WAKE: no hang, and no
 * address is derived from the word. */
#define DOORBELL_AWAKE    0u
#define DOORBELL_SLEEPING 1u

static _Atomic uint32_t *doorbell_word(ff_segment_t *segment)
{
    return &header_of(segment)->doorbell;
}

void ff_doorbell_arm(ff_segment_t *own)
{
    atomic_store_explicit(doorbell_word(own), DOORBELL_SLEEPING, memory_order_relaxed);
    /* seq_cst fence, store-load (Dekker): orders the flag store before the caller's re-check of its rings.
     * The producer's commit is a store followed by the same fence and a load of the flag
     * (ff_doorbell_ring), so at least one side sees the other: either the re-check finds the record, or
     * the producer sees SLEEPING and wakes us. */
    atomic_thread_fence(memory_order_seq_cst);
}

void ff_doorbell_disarm(ff_segment_t *own)
{
    /* relaxed: a producer that still sees SLEEPING only makes a needless FUTEX_WAKE */
    atomic_store_explicit(doorbell_word(own), DOORBELL_AWAKE, memory_order_relaxed);
}

ff_status_t ff_doorbell_wait(ff_segment_t *own, uint32_t timeout_ns, bool *woken)
{
    if (!own || !own->owner || timeout_ns == 0) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    const struct timespec timeout = {.tv_sec = timeout_ns / 1000000000u, .tv_nsec = timeout_ns % 1000000000u};
    /* The kernel sleeps only while the word still reads SLEEPING (checked atomically with the queueing), so a
     * ring between arm and this call makes it return at once (EAGAIN). Relative timeout: bounded whatever
     * the word holds. */
    long rc = syscall(SYS_futex, doorbell_word(own), FUTEX_WAIT, DOORBELL_SLEEPING, &timeout, NULL, 0);
    const int saved = errno;
    ff_doorbell_disarm(own);
    if (woken) {
        /* woken, or rung before we slept; a signal counts as neither */
        *woken = 0 == rc || EAGAIN == saved;
    }
    if (0 == rc || EAGAIN == saved || EINTR == saved || ETIMEDOUT == saved) {
        return FF_OK; /* the caller polls again in every case */
    }
    errno = saved;
    return FF_ERR_SYSTEM;
}

bool ff_doorbell_ring(ff_segment_t *peer)
{
    _Atomic uint32_t *word = doorbell_word(peer);
    /* seq_cst fence, store-load: orders the caller's commit (a release store of the record header) before
     * the flag load; pairs with the fence in ff_doorbell_arm (see there) */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: the fence above orders it; the common case (owner awake) is this one load of a line that
     * stays shared in our cache while the owner does not sleep */
    if (DOORBELL_SLEEPING != atomic_load_explicit(word, memory_order_relaxed)) {
        return false;
    }
    /* relaxed exchange: one of several producers makes the system call; the kernel's futex hash lock
     * orders it against the owner's FUTEX_WAIT */
    if (DOORBELL_SLEEPING != atomic_exchange_explicit(word, DOORBELL_AWAKE, memory_order_relaxed)) {
        return false;
    }
    (void) syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
    return true;
}
