/*
 * Shared segments: one sparse file per process in the job's shared directory.
 *
 * Layout (version 1), all offsets from the start of the file:
 *   [0, 4096)            segment header (struct segment_header)
 *   [4096, rings_offset) announcement table: a counter line, then max_rings entries
 *   [rings_offset, ...)  max_rings ring slots of ring_stride bytes: a 128-byte control block (consumer
 *                        id; the consumer's tail on its own cache line) followed by ring_size data bytes
 * The file is sized for every ring up front but is sparse: pages cost memory only once written, so a
 * process uses shared memory in proportion to the peers it actually sends to.
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
#define PAGE 4096u

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
    uint64_t announcements_offset;
    uint64_t rings_offset;
    uint32_t expected_peers;
    _Atomic uint32_t ready;         /* 1 once every field above is written (release) */
    _Atomic uint32_t attached;      /* peers that attached so far */
    _Atomic uint32_t rings_in_use;  /* rings the owner allocated */
};

struct announcement {
    _Atomic uint32_t state; /* 1 once producer_id and ring_index are written (release) */
    uint32_t ring_index;
    uint64_t producer_id;
};

struct ring_control {
    uint64_t consumer_id;
    uint32_t size;
    uint32_t reserved;
    uint8_t pad0[CACHE_LINE - 16];
    _Atomic uint64_t tail; /* written only by the consumer; its own line, away from the producer's data */
    uint8_t pad1[CACHE_LINE - 8];
};

_Static_assert(sizeof(struct segment_header) <= HEADER_BYTES, "segment header too large");
_Static_assert(sizeof(struct ring_control) == RING_CONTROL_BYTES, "ring control block size");
_Static_assert(sizeof(struct announcement) == 16, "announcement size");

struct ff_segment {
    uint8_t *base;
    size_t size;
    bool owner;
    bool linked;
    uint32_t rings_allocated; /* owner only */
    char path[4096];
};

static struct segment_header *header_of(const ff_segment_t *segment)
{
    return (struct segment_header *) (void *) segment->base;
}

static _Atomic uint32_t *announcement_count(const ff_segment_t *segment)
{
    return (_Atomic uint32_t *) (void *) (segment->base + header_of(segment)->announcements_offset);
}

static struct announcement *announcement_at(const ff_segment_t *segment, uint32_t index)
{
    return (struct announcement *) (void *) (segment->base + header_of(segment)->announcements_offset +
                                             CACHE_LINE + (size_t) index * sizeof(struct announcement));
}

static struct ring_control *ring_control_at(const ff_segment_t *segment, uint32_t index)
{
    const struct segment_header *h = header_of(segment);
    return (struct ring_control *) (void *) (segment->base + h->rings_offset + (size_t) index * h->ring_stride);
}

static size_t round_up(size_t value, size_t to)
{
    return (value + to - 1) / to * to;
}

static size_t announcements_bytes(uint32_t max_rings)
{
    return round_up(CACHE_LINE + (size_t) max_rings * sizeof(struct announcement), PAGE);
}

static size_t rings_offset_for(uint32_t max_rings)
{
    return HEADER_BYTES + announcements_bytes(max_rings);
}

size_t ff_segment_bytes_for(uint32_t ring_size, uint32_t max_rings, uint32_t rings)
{
    return rings_offset_for(max_rings) + (size_t) rings * ((size_t) ring_size + RING_CONTROL_BYTES);
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
    const size_t size = rings_offset_for(config->max_rings) + (size_t) config->max_rings * ring_stride;

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
    h->announcements_offset = HEADER_BYTES;
    h->rings_offset = rings_offset_for(config->max_rings);
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
        h->rings_offset != rings_offset_for(h->max_rings) ||
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
    return ff_segment_bytes_for(h->ring_size, h->max_rings,
                                atomic_load_explicit(&h->rings_in_use, memory_order_relaxed));
}

ff_status_t ff_segment_ring_alloc(ff_segment_t *own, uint64_t consumer_id, uint32_t *ring_index)
{
    if (!own || !own->owner || !ring_index) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    struct segment_header *h = header_of(own);
    if (own->rings_allocated >= h->max_rings) {
        return FF_ERR_FULL;
    }
    const uint32_t index = own->rings_allocated++;
    struct ring_control *control = ring_control_at(own, index);
    control->consumer_id = consumer_id;
    control->size = h->ring_size;
    atomic_store_explicit(&control->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&h->rings_in_use, own->rings_allocated, memory_order_relaxed);
    *ring_index = index;
    return FF_OK;
}

ff_status_t ff_segment_announce(ff_segment_t *peer, uint64_t producer_id, uint32_t ring_index)
{
    if (!peer) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    const uint32_t capacity = header_of(peer)->max_rings;
    const uint32_t slot = atomic_fetch_add_explicit(announcement_count(peer), 1, memory_order_relaxed);
    if (slot >= capacity) {
        return FF_ERR_FULL;
    }
    struct announcement *entry = announcement_at(peer, slot);
    entry->producer_id = producer_id;
    entry->ring_index = ring_index;
    /* release: the consumer reads the fields only after seeing state == 1 (acquire); the ring's control
     * block was written before this call, so it is visible too */
    atomic_store_explicit(&entry->state, 1, memory_order_release);
    return FF_OK;
}

bool ff_segment_next_announcement(ff_segment_t *own, uint32_t *cursor, uint64_t *producer_id, uint32_t *ring_index)
{
    const uint32_t capacity = header_of(own)->max_rings;
    uint32_t count = atomic_load_explicit(announcement_count(own), memory_order_relaxed);
    if (count > capacity) {
        count = capacity;
    }
    if (*cursor >= count) {
        return false;
    }
    struct announcement *entry = announcement_at(own, *cursor);
    /* acquire: pairs with the release in ff_segment_announce. The slot may be claimed but not yet
     * filled: report nothing and look again on the next pass, keeping announcements in order. */
    if (atomic_load_explicit(&entry->state, memory_order_acquire) != 1) {
        return false;
    }
    *producer_id = entry->producer_id;
    *ring_index = entry->ring_index;
    ++*cursor;
    return true;
}

static uint8_t *ring_data(struct ring_control *control)
{
    return (uint8_t *) control + RING_CONTROL_BYTES;
}

ff_status_t ff_ring_tx_open(ff_ring_tx_t *tx, ff_segment_t *own, uint32_t ring_index)
{
    if (!tx || !own || !own->owner || ring_index >= own->rings_allocated) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    struct ring_control *control = ring_control_at(own, ring_index);
    memset(tx, 0, sizeof(*tx));
    tx->data = ring_data(control);
    tx->tail = &control->tail;
    tx->size = control->size;
    tx->max_payload = control->size / 4;
    return FF_OK;
}

ff_status_t ff_ring_rx_open(ff_ring_rx_t *rx, ff_segment_t *producer, uint32_t ring_index, uint64_t consumer_id)
{
    if (!rx || !producer || ring_index >= header_of(producer)->max_rings) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    struct ring_control *control = ring_control_at(producer, ring_index);
    if (control->consumer_id != consumer_id) {
        return FF_ERR_OWNER_MISMATCH;
    }
    if (control->size != header_of(producer)->ring_size) {
        return FF_ERR_TRUNCATED;
    }
    memset(rx, 0, sizeof(*rx));
    rx->data = ring_data(control);
    rx->tail = &control->tail;
    rx->size = control->size;
    rx->pos = atomic_load_explicit(&control->tail, memory_order_acquire);
    return FF_OK;
}
