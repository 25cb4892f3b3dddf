/*
 * Shared window memory (docs/onesided.md, "single copy"). A rank's registered memory is moved, page for
 * page and with its contents, into a file of the job's per-host shared directory mapped at the SAME
 * addresses, so the rank keeps using it as before while a co-located peer (another container, which can
 * neither map our anonymous memory nor use CMA across PID namespaces) maps the file and does put, get and
 * atomics itself: one copy, no help from the target.
 *
 * Only the whole pages inside the registration move (neighbouring bytes on its first and last page stay
 * private: a peer must never reach memory that was not registered), and only from private anonymous
 * mappings (heap or anonymous mmap): a file or shared mapping keeps its own semantics.
 *
 * File layout: one header page (magic, version, owner, registration slot, generation, key, the target
 * addresses of the shared range, a revoked flag), then the pages. The peer checks a private copy of the
 * header against what the registration handle says and never maps beyond the file's size.
 */
#define _GNU_SOURCE
#include "freeflow.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define WINDOW_MAGIC   0x3157444e49574646ULL /* "FFWINDW1" in little-endian byte order */
#define WINDOW_VERSION 1u

struct window_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_bytes; /* the owner's page size: the shared pages start there in the file */
    uint64_t owner_id;
    uint64_t key;
    uint32_t index;
    uint32_t generation;
    uint64_t base; /* owner's address of the first shared byte */
    uint64_t len;
    _Atomic uint32_t ready;   /* release by the owner once the fields above are written */
    _Atomic uint32_t revoked; /* release by the owner at unshare: peers drop their view */
};

struct ff_window {
    int dirfd;
    char name[96];
    dev_t dev;
    ino_t ino;
    uintptr_t base;
    size_t len;
    struct window_header *header; /* our own mapping of the header page */
    size_t header_bytes;
};

struct ff_window_view {
    unsigned char *map; /* whole file: header page + shared pages */
    size_t map_len;
    size_t header_bytes;
    uint64_t base;
    uint64_t len;
    const struct window_header *header;
};

static size_t page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t) page : 4096u;
}

int ff_window_name(uint64_t owner_id, uint32_t index, uint32_t generation, char *buf, size_t len)
{
    return snprintf(buf, len, "window-%016" PRIx64 "-%" PRIu32 "-%" PRIu32, owner_id, index, generation);
}

/* What covers [lo, hi) in /proc/self/maps: every byte must be mapped by entries that `accept` takes. */
typedef bool (*maps_accept_fn)(const char *perms, unsigned dev_major, unsigned dev_minor, unsigned long inode,
                               const char *path, const void *context);

static bool range_mapped_by(uintptr_t lo, uintptr_t hi, maps_accept_fn accept, const void *context)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) {
        return false;
    }
    char line[4096 + 128];
    uintptr_t covered = lo;
    bool ok = true;
    while (ok && covered < hi && fgets(line, sizeof(line), maps)) {
        uintptr_t start, end;
        char perms[8];
        unsigned long long offset;
        unsigned dev_major, dev_minor;
        unsigned long inode;
        int consumed = 0;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %llx %x:%x %lu %n", &start, &end, perms, &offset, &dev_major,
                   &dev_minor, &inode, &consumed) < 7) {
            ok = false;
            break;
        }
        if (end <= covered) {
            continue;
        }
        if (start > covered) {
            ok = false; /* a hole */
            break;
        }
        char *path = line + consumed;
        path[strcspn(path, "\n")] = '\0';
        ok = accept(perms, dev_major, dev_minor, inode, path, context);
        covered = end;
    }
    fclose(maps);
    return ok && covered >= hi;
}

static bool private_anonymous(const char *perms, unsigned dev_major, unsigned dev_minor, unsigned long inode,
                              const char *path, const void *context)
{
    (void) dev_major;
    (void) dev_minor;
    (void) context;
    return 0 == strcmp(perms, "rw-p") && 0 == inode && ('\0' == path[0] || 0 == strcmp(path, "[heap]"));
}

static bool our_file(const char *perms, unsigned dev_major, unsigned dev_minor, unsigned long inode, const char *path,
                     const void *context)
{
    const ff_window_t *window = context;
    (void) path;
    return 0 == strcmp(perms, "rw-s") && inode == (unsigned long) window->ino && dev_major == major(window->dev) &&
           dev_minor == minor(window->dev);
}

ff_status_t ff_window_share(int dirfd, uint64_t owner_id, uint32_t index, uint32_t generation, uint64_t key, void *base,
                            size_t len, size_t min_bytes, ff_window_t **out)
{
    if (dirfd < 0 || !out || (uintptr_t) base > UINTPTR_MAX - len) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    const size_t page = page_size();
    const uintptr_t lo = ((uintptr_t) base + page - 1) & ~(uintptr_t) (page - 1);
    const uintptr_t hi = ((uintptr_t) base + len) & ~(uintptr_t) (page - 1);
    if (hi <= lo || hi - lo < min_bytes || hi - lo < page) {
        return FF_ERR_INVALID_ARGUMENT; /* too small to be worth a file */
    }
    if (!range_mapped_by(lo, hi, private_anonymous, NULL)) {
        return FF_ERR_UNTRUSTED; /* a file, shared or read-only mapping: not ours to move */
    }
    ff_window_t *window = calloc(1, sizeof(*window));
    if (!window) {
        return FF_ERR_NO_MEMORY;
    }
    window->dirfd = dirfd;
    window->base = lo;
    window->len = hi - lo;
    window->header_bytes = page;
    ff_window_name(owner_id, index, generation, window->name, sizeof(window->name));
    /* O_EXCL|O_NOFOLLOW: a name planted before us (symlink, fifo, file) is never written through */
    int fd = openat(dirfd, window->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(window);
        return errno == EEXIST ? FF_ERR_UNTRUSTED : FF_ERR_SYSTEM;
    }
    struct stat st;
    ff_status_t status = FF_OK;
    void *header_map = MAP_FAILED;
    if (fstat(fd, &st) != 0 || ftruncate(fd, (off_t) (page + window->len)) != 0) {
        status = FF_ERR_SYSTEM;
    } else {
        window->dev = st.st_dev;
        window->ino = st.st_ino;
        header_map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (header_map == MAP_FAILED) {
            status = FF_ERR_SYSTEM;
        }
    }
    if (status == FF_OK) {
        /* The current contents go into the file, then the file replaces the pages at the same addresses
         * (MAP_FIXED swaps the mapping without a moment where the range is unmapped). Stores other threads
         * make to these pages in between are lost: the memory is being registered for a window, which MPI
         * creates collectively before anyone may access it. */
        void *staging = mmap(NULL, window->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t) page);
        if (staging == MAP_FAILED) {
            status = FF_ERR_SYSTEM;
        } else {
            ff_copy(staging, (const void *) lo, window->len);
            munmap(staging, window->len);
            if (mmap((void *) lo, window->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, (off_t) page) ==
                MAP_FAILED) {
                status = FF_ERR_SYSTEM; /* MAP_FIXED failing leaves the old mapping in place */
            }
        }
    }
    close(fd);
    if (status != FF_OK) {
        int saved = errno;
        if (header_map != MAP_FAILED) {
            munmap(header_map, page);
        }
        unlinkat(dirfd, window->name, 0);
        free(window);
        errno = saved;
        return status;
    }
    struct window_header *header = header_map;
    header->magic = WINDOW_MAGIC;
    header->version = WINDOW_VERSION;
    header->header_bytes = (uint32_t) page;
    header->owner_id = owner_id;
    header->key = key;
    header->index = index;
    header->generation = generation;
    header->base = lo;
    header->len = window->len;
    /* release: a peer that sees ready=1 (acquire) sees every field above */
    atomic_store_explicit(&header->ready, 1, memory_order_release);
    window->header = header;
    *out = window;
    return FF_OK;
}

uintptr_t ff_window_base(const ff_window_t *window)
{
    return window->base;
}

size_t ff_window_len(const ff_window_t *window)
{
    return window->len;
}

void ff_window_unshare(ff_window_t *window)
{
    if (!window) {
        return;
    }
    /* release: peers that see it drop their view; one racing with us was already an erroneous access */
    atomic_store_explicit(&window->header->revoked, 1, memory_order_release);
    struct stat st;
    if (fstatat(window->dirfd, window->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == window->dev &&
        st.st_ino == window->ino) {
        unlinkat(window->dirfd, window->name, 0); /* only our own inode, never what someone put in its place */
    }
    /* Private pages again, with the same contents, so that peers' mappings no longer reach this memory once
     * it is reused. Only if our file still backs the range: the owner may have unmapped it already. */
    if (range_mapped_by(window->base, window->base + window->len, our_file, window)) {
        void *fresh = mmap(NULL, window->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (fresh != MAP_FAILED) {
            ff_copy(fresh, (const void *) window->base, window->len);
            if (mremap(fresh, window->len, window->len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *) window->base) ==
                MAP_FAILED) {
                munmap(fresh, window->len);
            }
        }
    }
    munmap(window->header, window->header_bytes);
    free(window);
}

ff_status_t ff_window_view_open(int dirfd, uint64_t owner_id, uint32_t index, uint32_t generation, uint64_t key,
                                ff_window_view_t **out)
{
    if (dirfd < 0 || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    char name[96];
    ff_window_name(owner_id, index, generation, name, sizeof(name));
    int fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? FF_ERR_NOT_FOUND : errno == ELOOP ? FF_ERR_UNTRUSTED : FF_ERR_SYSTEM;
    }
    const size_t page = page_size();
    struct stat st;
    ff_status_t status = FF_OK;
    if (fstat(fd, &st) != 0) {
        status = FF_ERR_SYSTEM;
    } else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        status = FF_ERR_UNTRUSTED;
    } else if ((uint64_t) st.st_size < 2 * (uint64_t) page) {
        status = FF_ERR_TRUNCATED;
    }
    unsigned char *map = MAP_FAILED;
    const size_t map_len = FF_OK == status ? (size_t) st.st_size : 0;
    if (status == FF_OK) {
        map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            status = FF_ERR_SYSTEM;
        }
    }
    close(fd);
    if (status != FF_OK) {
        return status;
    }
    const struct window_header *shared = (const struct window_header *) map;
    struct window_header h;
    /* acquire: pairs with the owner's release of `ready` */
    const uint32_t ready = atomic_load_explicit(&shared->ready, memory_order_acquire);
    memcpy(&h, shared, offsetof(struct window_header, ready)); /* a private copy: the file stays writable */
    status = h.magic != WINDOW_MAGIC                                                    ? FF_ERR_BAD_MAGIC
             : h.version != WINDOW_VERSION                                              ? FF_ERR_VERSION_MISMATCH
             : !ready                                                                   ? FF_ERR_NOT_READY
             : h.owner_id != owner_id || h.index != index || h.generation != generation ? FF_ERR_OWNER_MISMATCH
             : h.key != key                                                             ? FF_ERR_FOREIGN_JOB
             /* the pages must be exactly what the file holds after the header: nothing outside is mapped */
             : h.header_bytes != page || h.len == 0 || h.len % page || h.base % page || h.len != map_len - page ||
                     h.base > UINT64_MAX - h.len
                 ? FF_ERR_CORRUPT
                 : FF_OK;
    if (status != FF_OK) {
        munmap(map, map_len);
        return status;
    }
    ff_window_view_t *view = calloc(1, sizeof(*view));
    if (!view) {
        munmap(map, map_len);
        return FF_ERR_NO_MEMORY;
    }
    view->map = map;
    view->map_len = map_len;
    view->header_bytes = page;
    view->base = h.base;
    view->len = h.len;
    view->header = shared;
    *out = view;
    return FF_OK;
}

void *ff_window_view_address(const ff_window_view_t *view, uint64_t address, size_t len)
{
    /* overflow-safe: [address, address + len) inside [base, base + len) of the private copy */
    if (address < view->base || len > view->len || address - view->base > view->len - len) {
        return NULL;
    }
    return view->map + view->header_bytes + (address - view->base);
}

void ff_window_view_range(const ff_window_view_t *view, uint64_t *base, uint64_t *len)
{
    *base = view->base;
    *len = view->len;
}

bool ff_window_view_revoked(const ff_window_view_t *view)
{
    /* acquire: pairs with the owner's release in ff_window_unshare */
    return 0 != atomic_load_explicit(&view->header->revoked, memory_order_acquire);
}

void ff_window_view_close(ff_window_view_t *view)
{
    if (view) {
        munmap(view->map, view->map_len);
        free(view);
    }
}
