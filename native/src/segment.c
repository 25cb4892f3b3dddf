/*
 * Shared segments: one sparse file per process in the job's shared directory.
 *
 * Layout (version 1), all offsets from the start of the file:
 *   [0, 4096)            segment header (struct segment_header), with the ring claim counter
 *   [4096, ...)          max_rings ring slots of ring_stride bytes: a 128-byte control block (state,
 *                        producer id; the consumer's tail on its own cache line) then ring_size data bytes
 * Rings carry data to the segment's owner; producers claim them. The file is sized for every ring up
 * front but is sparse: pages cost memory only once written, so a process uses shared memory in
 * proportion to the peers that actually send to it.
 */
#define _GNU_SOURCE
#include "freeflow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEGMENT_MAGIC 0x31474553574c4646ULL /* "FFLWSEG1" in little-endian byte order */
#define SEGMENT_VERSION 1u
#define HEADER_BYTES 4096u
#define CACHE_LINE 64u
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
    _Atomic uint32_t ready;         /* 1 once every field above is written (release) */
    _Atomic uint32_t attached;      /* peers that attached so far */
    uint8_t pad[CACHE_LINE];
    _Atomic uint32_t rings_claimed; /* claim counter, bumped by producers; may exceed max_rings */
};

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

struct ff_segment {
    uint8_t *base;
    size_t size;
    bool owner;
    bool linked;
    char path[4096];
};

static struct segment_header *header_of(const ff_segment_t *segment)
{
    return (struct segment_header *) (void *) segment->base;
}

static struct ring_control *ring_control_at(const ff_segment_t *segment, uint32_t index)
{
    const struct segment_header *h = header_of(segment);
    return (struct ring_control *) (void *) (segment->base + h->rings_offset + (size_t) index * h->ring_stride);
}

size_t ff_segment_bytes_for(uint32_t ring_size, uint32_t rings)
{
    return HEADER_BYTES + (size_t) rings * ((size_t) ring_size + RING_CONTROL_BYTES);
}

int ff_segment_path(const char *dir, const ff_job_key_t *key, uint64_t owner_id, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/freeflow-%02x%02x%02x%02x-%016llx.seg", dir, key->bytes[0], key->bytes[1],
                    key->bytes[2], key->bytes[3], (unsigned long long) owner_id);
}

static bool is_power_of_two(uint32_t v)
{
    return v && !(v & (v - 1));
}

ff_status_t ff_segment_create(const ff_segment_config_t *config, ff_segment_t **out)
{
    if (!config || !out || !config->dir || !is_power_of_two(config->ring_size) || config->ring_size < 4096u ||
        config->ring_size > (1u << 30) || config->max_rings == 0 || config->max_rings > (1u << 20)) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    ff_segment_t *segment = calloc(1, sizeof(*segment));
    if (!segment) {
        return FF_ERR_NO_MEMORY;
    }
    int n = ff_segment_path(config->dir, &config->key, config->owner_id, segment->path, sizeof(segment->path));
    if (n < 0 || (size_t) n >= sizeof(segment->path)) {
        free(segment);
        return FF_ERR_INVALID_ARGUMENT;
    }

    const uint64_t ring_stride = (uint64_t) config->ring_size + RING_CONTROL_BYTES;
    const size_t size = HEADER_BYTES + (size_t) config->max_rings * ring_stride;

    /* A file of the same name is a leftover of a dead process with the same job key and owner id:
     * replace it rather than attach to stale state. */
    int fd = open(segment->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        unlink(segment->path);
        fd = open(segment->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        ff_status_t status = errno == ENOENT ? FF_ERR_NOT_FOUND : FF_ERR_SYSTEM;
        free(segment);
        return status;
    }
    if (ftruncate(fd, (off_t) size) != 0) {
        int saved = errno;
        close(fd);
        unlink(segment->path);
        free(segment);
        errno = saved;
        return FF_ERR_SYSTEM;
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (base == MAP_FAILED) {
        unlink(segment->path);
        free(segment);
        errno = saved;
        return FF_ERR_SYSTEM;
    }
    segment->base = base;
    segment->size = size;
    segment->owner = true;
    segment->linked = true;

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
    /* release: a peer that sees ready == 1 (acquire) sees every field above */
    atomic_store_explicit(&h->ready, 1, memory_order_release);
    *out = segment;
    return FF_OK;
}

/* Checks the header of a mapped file against what the caller expects. */
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
    if (!atomic_load_explicit(&h->ready, memory_order_acquire)) {
        return FF_ERR_NOT_READY;
    }
    if (h->file_size != file_size || !is_power_of_two(h->ring_size) || h->max_rings == 0 ||
        h->ring_stride != (uint64_t) h->ring_size + RING_CONTROL_BYTES ||
        h->rings_offset != HEADER_BYTES ||
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

ff_status_t ff_segment_attach(const char *dir, const ff_job_key_t *key, uint64_t owner_id, const ff_host_id_t *host,
                              ff_segment_t **out)
{
    if (!dir || !key || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    ff_segment_t *segment = calloc(1, sizeof(*segment));
    if (!segment) {
        return FF_ERR_NO_MEMORY;
    }
    int n = ff_segment_path(dir, key, owner_id, segment->path, sizeof(segment->path));
    if (n < 0 || (size_t) n >= sizeof(segment->path)) {
        free(segment);
        return FF_ERR_INVALID_ARGUMENT;
    }
    int fd = open(segment->path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        ff_status_t status = errno == ENOENT ? FF_ERR_NOT_FOUND : FF_ERR_SYSTEM;
        free(segment);
        return status;
    }
    struct stat st;
    ff_status_t status = FF_OK;
    if (fstat(fd, &st) != 0) {
        status = FF_ERR_SYSTEM;
    } else if (!S_ISREG(st.st_mode)) {
        status = FF_ERR_BAD_MAGIC;
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
        free(segment);
        errno = saved;
        return status;
    }
    const size_t size = (size_t) st.st_size;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (base == MAP_FAILED) {
        free(segment);
        errno = saved;
        return FF_ERR_SYSTEM;
    }
    segment->base = base;
    segment->size = size;
    status = verify_header(header_of(segment), size, key, owner_id, host);
    if (status != FF_OK) {
        munmap(base, size);
        free(segment);
        return status;
    }
    segment->linked = true;
    struct segment_header *h = header_of(segment);
    const uint32_t attached = atomic_fetch_add_explicit(&h->attached, 1, memory_order_acq_rel) + 1;
    if (h->expected_peers && attached == h->expected_peers) {
        /* Every expected peer holds a mapping now: the name is no longer needed, and removing it here
         * means a rank killed later leaves nothing behind. */
        unlink(segment->path);
    }
    *out = segment;
    return FF_OK;
}

void ff_segment_unlink(ff_segment_t *segment)
{
    if (segment && segment->owner && segment->linked) {
        unlink(segment->path); /* ENOENT: the last expected peer already did it */
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
    free(segment);
}

uint64_t ff_segment_owner_id(const ff_segment_t *segment)
{
    return header_of(segment)->owner_id;
}

const char *ff_segment_file(const ff_segment_t *segment)
{
    return segment->path;
}

size_t ff_segment_bytes_in_use(const ff_segment_t *segment)
{
    const struct segment_header *h = header_of(segment);
    uint32_t claimed = atomic_load_explicit(&h->rings_claimed, memory_order_relaxed);
    return ff_segment_bytes_for(h->ring_size, claimed < h->max_rings ? claimed : h->max_rings);
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
    if (index >= h->max_rings) {
        return FF_ERR_FULL;
    }
    struct ring_control *control = ring_control_at(consumer, index);
    control->producer_id = producer_id;
    control->size = h->ring_size;
    populate_ring(control, h->ring_size, MADV_POPULATE_WRITE);
    /* release: the consumer sees producer_id and size once it sees the claim (acquire) */
    atomic_store_explicit(&control->state, RING_CLAIMED, memory_order_release);
    *ring_index = index;
    return FF_OK;
}

bool ff_segment_next_ring(ff_segment_t *own, uint32_t *cursor, uint64_t *producer_id, uint32_t *ring_index)
{
    const struct segment_header *h = header_of(own);
    uint32_t claimed = atomic_load_explicit(&h->rings_claimed, memory_order_relaxed);
    if (claimed > h->max_rings) {
        claimed = h->max_rings;
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
    *producer_id = control->producer_id;
    *ring_index = (*cursor)++;
    return true;
}

const _Atomic uint32_t *ff_segment_claim_counter(const ff_segment_t *own)
{
    return &header_of(own)->rings_claimed;
}

ff_status_t ff_ring_tx_open(ff_ring_tx_t *tx, ff_segment_t *consumer, uint32_t ring_index, uint64_t producer_id)
{
    if (!tx || !consumer || ring_index >= header_of(consumer)->max_rings) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    struct ring_control *control = ring_control_at(consumer, ring_index);
    if (atomic_load_explicit(&control->state, memory_order_acquire) != RING_CLAIMED ||
        control->producer_id != producer_id) {
        return FF_ERR_OWNER_MISMATCH;
    }
    memset(tx, 0, sizeof(*tx));
    tx->data = ring_data(control);
    tx->tail = &control->tail;
    tx->size = control->size;
    tx->max_payload = control->size / 4;
    tx->tail_seen = atomic_load_explicit(&control->tail, memory_order_acquire);
    tx->head = tx->tail_seen;
    return FF_OK;
}

ff_status_t ff_ring_rx_open(ff_ring_rx_t *rx, ff_segment_t *own, uint32_t ring_index)
{
    if (!rx || !own || ring_index >= header_of(own)->max_rings) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    struct ring_control *control = ring_control_at(own, ring_index);
    if (atomic_load_explicit(&control->state, memory_order_acquire) != RING_CLAIMED) {
        return FF_ERR_NOT_READY;
    }
    if (control->size != header_of(own)->ring_size) {
        return FF_ERR_TRUNCATED;
    }
    populate_ring(control, control->size, MADV_POPULATE_WRITE);
    memset(rx, 0, sizeof(*rx));
    rx->data = ring_data(control);
    rx->tail = &control->tail;
    rx->size = control->size;
    rx->pos = atomic_load_explicit(&control->tail, memory_order_acquire);
    return FF_OK;
}
