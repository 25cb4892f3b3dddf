/*
 * freeflow.h: the freeflow native core, the one public header.
 *
 * Plain C11, no Open MPI, UCX or Node headers. It provides what co-located containers need to talk
 * through shared memory without sharing IPC, PID or network namespaces:
 *   - status codes with names and explanations (ff_status_*);
 *   - host identity: the kernel's boot id plus the identity of the job's shared directory (ff_host_id_*);
 *   - job keys (ff_job_key_*);
 *   - the reader of the orchestrator's path table (ff_path_table_*; format in docs/path-table.md);
 *   - shared segments: one file per process in the shared directory, with a magic, a layout version,
 *     the job key, the owner and the host identity; attach refuses anything that does not match
 *     (ff_segment_*);
 *   - single-producer single-consumer rings inside segments, the data path (ff_ring_*). A ring lives in
 *     the consumer's segment, claimed by the producer that attached it, so a producer can send exactly
 *     when it could open (and so verify) the consumer's segment. Records are variable-sized: small messages take one
 *     cache line, large messages are pipelined as a sequence of records. The hot operations are inline.
 *
 * Layering: callers (btl/, native/addon/) depend on this header only.
 */
#ifndef FREEFLOW_H
#define FREEFLOW_H

#ifndef __cplusplus
#include <stdatomic.h>
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FF_API __attribute__((visibility("default")))

/* ------------------------------------------------------------------------------------------------ */
/* Status codes                                                                                      */

typedef enum ff_status {
    FF_OK = 0,
    FF_ERR_INVALID_ARGUMENT,    /* a parameter is out of range or NULL */
    FF_ERR_NO_MEMORY,           /* malloc failed */
    FF_ERR_SYSTEM,              /* a system call failed; errno tells which */
    FF_ERR_NOT_FOUND,           /* the file does not exist */
    FF_ERR_TRUNCATED,           /* a segment file is shorter than its header requires */
    FF_ERR_BAD_MAGIC,           /* the file is not a freeflow segment */
    FF_ERR_VERSION_MISMATCH,    /* the segment was made by another layout version of freeflow */
    FF_ERR_FOREIGN_JOB,         /* the segment belongs to another job (other job key) */
    FF_ERR_OWNER_MISMATCH,      /* the segment or ring belongs to another process than expected */
    FF_ERR_HOST_MISMATCH,       /* the segment was made on another host (other host identity) */
    FF_ERR_NOT_READY,           /* the owner has not finished initialising the segment */
    FF_ERR_FULL,                /* no free ring left in a segment, or a poll schedule at its capacity */
    FF_ERR_PARSE,               /* a path table is malformed */
    FF_ERR_UNSUPPORTED_VERSION, /* a path table has a format version this reader does not know */
    FF_ERR_UNTRUSTED,           /* a file or directory is a symlink, a fifo, another user's, or open to others */
    FF_ERR_CORRUPT,             /* shared memory holds a value no freeflow process writes (tampering or a bug) */
    FF_ERR_VERDICT_CONFLICT,    /* the peer decided shared memory for the pair, but we cannot attach its segment */
    FF_STATUS_COUNT
} ff_status_t;

/* "FF_ERR_BAD_MAGIC" */
FF_API const char *ff_status_name(ff_status_t status);
/* A sentence that says what is wrong and how to fix it. */
FF_API const char *ff_status_describe(ff_status_t status);

/* ------------------------------------------------------------------------------------------------ */
/* Host identity                                                                                     */

/* Two processes are on the same host when they run on the same kernel (boot id) and see the same
 * shared directory (same filesystem and inode). Hostnames are never used: every container has its own. */
typedef struct ff_host_id {
    uint8_t boot_id[16];
    uint64_t dir_dev;
    uint64_t dir_ino;
} ff_host_id_t;

FF_API ff_status_t ff_host_id_read(const char *shared_dir, ff_host_id_t *out);
FF_API bool ff_host_id_equal(const ff_host_id_t *a, const ff_host_id_t *b);
/* "boot=<32 hex> dir=<dev>:<ino>"; returns the length snprintf would have written. */
FF_API int ff_host_id_format(const ff_host_id_t *id, char *buf, size_t len);

/* ------------------------------------------------------------------------------------------------ */
/* Trusted directories and files                                                                     */
/*
 * Everything freeflow reads from or writes to the shared directory is reached through one directory file
 * descriptor that was verified once: a real directory (not a symlink), owned by this user or root, and if
 * others may write to it, sticky. Files are then opened relative to it with O_NOFOLLOW, so a name planted
 * by another user can neither redirect a write nor pass for one of ours.
 */

/* Opens and verifies `path`. On FF_ERR_UNTRUSTED / FF_ERR_SYSTEM / FF_ERR_NOT_FOUND, `reason` (if not NULL)
 * gets a sentence naming the directory and what is wrong. The fd is O_CLOEXEC; close it with close(). */
FF_API ff_status_t ff_dir_open(const char *path, int *dirfd, char *reason, size_t reason_len);

/* The default directory of jobs started without ffrun on a host other users share:
 * "<parent>/freeflow-<euid>-<scope>" (scope names the job, e.g. the launcher's job family, so the directory
 * can be removed when the job ends), created mode 0700 if missing, then verified to be a real directory
 * owned by us with no access for group or others. `path` receives its name. */
FF_API ff_status_t ff_dir_open_private(const char *parent, const char *scope, char *path, size_t path_len, int *dirfd,
                                       char *reason, size_t reason_len);

/* Writes `name` in the directory atomically: a temporary file with an unguessable name, created with
 * O_CREAT|O_EXCL|O_NOFOLLOW mode 0600, then renamed over `name`. A symlink planted under either name is
 * never followed (rename replaces the link itself). */
FF_API ff_status_t ff_dir_write_file(int dirfd, const char *name, const void *data, size_t len);

/* Reads a small configuration file written by the launcher: opened with O_NOFOLLOW|O_NONBLOCK, it must be
 * a regular file owned by this user or root and not writable by group or others (else FF_ERR_UNTRUSTED
 * with the reason). `*text` is NUL-terminated and malloc'd. FF_ERR_NOT_FOUND when there is none. */
FF_API ff_status_t ff_dir_read_trusted(int dirfd, const char *name, size_t max_len, char **text, char *reason,
                                       size_t reason_len);

/* `len` random lower-case hex digits and a NUL (getrandom). */
FF_API ff_status_t ff_random_name(char *buf, size_t len);

/* ------------------------------------------------------------------------------------------------ */
/* Job keys                                                                                          */

typedef struct ff_job_key {
    uint8_t bytes[16];
} ff_job_key_t;

/* Exactly 32 hex digits. */
FF_API ff_status_t ff_job_key_parse(const char *hex, ff_job_key_t *out);
/* buf gets 32 hex digits and a NUL (33 bytes). */
FF_API void ff_job_key_format(const ff_job_key_t *key, char buf[33]);
/* A key derived from a launcher's job identifier, for jobs started without a path table. */
FF_API void ff_job_key_derive(uint64_t seed, ff_job_key_t *out);
FF_API bool ff_job_key_equal(const ff_job_key_t *a, const ff_job_key_t *b);

/* ------------------------------------------------------------------------------------------------ */
/* Path table (docs/path-table.md)                                                                   */

typedef enum ff_path_kind {
    FF_PATH_SELF = 0,
    FF_PATH_SHM,
    FF_PATH_TCP,
    FF_PATH_ROUTER,
    FF_PATH_HANDOFF, /* `h`, format 2: a TCP socket over the host network, handed over by ffagent */
    FF_PATH_KIND_COUNT
} ff_path_kind_t;

typedef struct ff_path_table ff_path_table_t;

/* Longest host or container name a path table may hold (a container's name is its host name). */
#define FF_PATH_TABLE_MAX_NAME 64

/* Loads and validates a path table: every directive in order, job id `[a-z0-9]+`, lower-case key, host and
 * container names that ff_path_table_name_valid accepts, unique host names, each path letter only where
 * it can mean something (docs/path-table.md). On FF_ERR_PARSE/FF_ERR_UNSUPPORTED_VERSION, `error` (if not
 * NULL) receives a message naming the line and the problem. */
FF_API ff_status_t ff_path_table_load(const char *file, ff_path_table_t **out, char *error, size_t error_len);
/* Parses a table already in memory (NUL-terminated). */
FF_API ff_status_t ff_path_table_parse(const char *text, ff_path_table_t **out, char *error, size_t error_len);
/* Loads `name` from a verified directory, trusted only as ff_dir_read_trusted allows: an untrusted file is
 * refused with FF_ERR_UNTRUSTED and the reason in `error`. */
FF_API ff_status_t ff_path_table_load_at(int dirfd, const char *name, ff_path_table_t **out, char *error,
                                         size_t error_len);
FF_API void ff_path_table_free(ff_path_table_t *table);
FF_API uint32_t ff_path_table_num_ranks(const ff_path_table_t *table);
FF_API uint32_t ff_path_table_num_hosts(const ff_path_table_t *table);
FF_API const ff_job_key_t *ff_path_table_job_key(const ff_path_table_t *table);
FF_API const char *ff_path_table_job_id(const ff_path_table_t *table);
/* Host index of a rank, or -1 if the rank is out of range. */
FF_API int32_t ff_path_table_host_of(const ff_path_table_t *table, uint32_t rank);
FF_API const char *ff_path_table_container_of(const ff_path_table_t *table, uint32_t rank);
/* Name of host `host` (its `host` line), or NULL if out of range. */
FF_API const char *ff_path_table_host_name(const ff_path_table_t *table, uint32_t host);
/* Index of the host named `name`, or -1 if the table has no such host. */
FF_API int32_t ff_path_table_host_index(const ff_path_table_t *table, const char *name);
/* The text the table was read from, byte for byte (NUL-terminated; *length without the NUL), for a reader
 * that passes the table on (the SPANK plugin writes it as the node's copy). */
FF_API const char *ff_path_table_text(const ff_path_table_t *table, size_t *length);
/* A host or container name as a path table may hold it: 1-FF_PATH_TABLE_MAX_NAME characters of
 * [A-Za-z0-9._-], not starting with '.' (safe as a file name, a host name and a word of a line). */
FF_API bool ff_path_table_name_valid(const char *name);
/* The planned path; FF_PATH_KIND_COUNT if a rank is out of range. */
FF_API ff_path_kind_t ff_path_table_path(const ff_path_table_t *table, uint32_t from, uint32_t to);
/* Number of other ranks the plan connects to `rank` through shared memory. */
FF_API uint32_t ff_path_table_shm_peers(const ff_path_table_t *table, uint32_t rank);
/* "self", "shm", "tcp", "router", "handoff". */
FF_API const char *ff_path_kind_name(ff_path_kind_t kind);

/* ------------------------------------------------------------------------------------------------ */
/* Segments                                                                                          */

typedef struct ff_segment ff_segment_t;

typedef struct ff_segment_config {
    const char *dir; /* the shared directory (e.g. /run/freeflow, /dev/shm) */
    ff_job_key_t key;
    uint64_t owner_id; /* unique within the job (e.g. launcher job id << 32 | rank) */
    ff_host_id_t host;
    uint32_t ring_size;      /* data bytes per ring: a power of two, 4 KiB .. 1 GiB */
    uint32_t max_rings;      /* rings peers may claim in this segment: the most local peers that send to it */
    uint32_t expected_peers; /* unlink the file once this many peers attached; 0: only at close */
    int dir_fd;              /* `dir` opened by ff_dir_open (the segment keeps a duplicate); 0: open `dir` */
} ff_segment_config_t;

/* Creates the owner's segment file (sparse: memory is used only by rings actually written), replacing
 * a stale file of the same name. */
FF_API ff_status_t ff_segment_create(const ff_segment_config_t *config, ff_segment_t **out);

/* Opens and verifies a peer's segment: refuses a missing, truncated, foreign, older or newer, other-host
 * or other-owner segment with the matching status. This is the proof of co-location. */
FF_API ff_status_t ff_segment_attach(const char *dir, const ff_job_key_t *key, uint64_t owner_id,
                                     const ff_host_id_t *host, ff_segment_t **out);
/* The same in a directory opened by ff_dir_open. The file is opened with O_NOFOLLOW|O_NONBLOCK (a fifo
 * never blocks) and must be a regular file owned by this user with no access for group or others
 * (FF_ERR_UNTRUSTED). Every layout value is copied at attach and never read from shared memory again. */
FF_API ff_status_t ff_segment_attach_at(int dirfd, const ff_job_key_t *key, uint64_t owner_id, const ff_host_id_t *host,
                                        ff_segment_t **out);

/* Owner side: would a peer attaching now succeed? The name still leads to our file (not a symlink, not
 * replaced, not truncated, owner and mode intact) and the header still matches our private copy. */
FF_API ff_status_t ff_segment_verify_own(ff_segment_t *own);

/* Unmaps. The owner also unlinks the file if it is still there. */
FF_API void ff_segment_close(ff_segment_t *segment);

/* Unlinks the owner's file now (peers that attached keep their mappings). Idempotent. */
FF_API void ff_segment_unlink(ff_segment_t *segment);

/* The file name of an owner's segment: "<dir>/freeflow-<key 8 hex>-<owner 16 hex>.seg". Returns the
 * length snprintf would have written. */
FF_API int ff_segment_path(const char *dir, const ff_job_key_t *key, uint64_t owner_id, char *buf, size_t len);

FF_API uint64_t ff_segment_owner_id(const ff_segment_t *segment);
FF_API const char *ff_segment_file(const ff_segment_t *segment);
/* Bytes of shared memory the segment can consume once its claimed rings have been written through: the
 * header and the claimed rings. */
FF_API size_t ff_segment_bytes_in_use(const ff_segment_t *segment);
/* Bytes for a segment with `rings` claimed rings of `ring_size`: the formula. */
FF_API size_t ff_segment_bytes_for(uint32_t ring_size, uint32_t rings);

/* Doorbell: lets an owner with nothing to do sleep until a producer commits into one of its rings,
 * instead of spinning or yielding (with more ranks than cores, a yield does not hand the core to another
 * container's cgroup: docs/btl.md). A futex word in the owner's segment header.
 *   owner:    ff_doorbell_arm(own); re-check every inbound ring (ff_ring_peek); then, if all were empty,
 *             ff_doorbell_wait(own, timeout) (which disarms), else ff_doorbell_disarm(own).
 *   producer: ff_doorbell_ring(consumer) after ff_ring_commit.
 * arm and ring each put a seq_cst fence between their store and their load, so a record committed while
 * the owner arms is either seen by its re-check or wakes it. Another process can write the word at will:
 * that only ends a wait early or lets it run to its timeout, and makes a producer wake needlessly. */
FF_API void ff_doorbell_arm(ff_segment_t *own);
FF_API void ff_doorbell_disarm(ff_segment_t *own);
/* Sleeps until rung or `timeout_ns` (> 0) passed (plus the kernel's timer slack), then disarms. FF_OK
 * whether rung, timed out or interrupted (`*woken`, if not NULL, says whether it was rung);
 * FF_ERR_INVALID_ARGUMENT for a segment we do not own or a zero timeout. */
FF_API ff_status_t ff_doorbell_wait(ff_segment_t *own, uint32_t timeout_ns, bool *woken);
/* Wakes the owner of `peer` if it sleeps on its doorbell; true when it made the wake-up call. */
FF_API bool ff_doorbell_ring(ff_segment_t *peer);

/* ------------------------------------------------------------------------------------------------ */
/* Pair verdicts                                                                                     */
/*
 * Open MPI's ob1 needs both directions of a pair on the same BTL, but each side attaches the other's
 * segment on its own, at a time of its own (add_procs is lazy), and either attach can be refused. The two
 * sides agree through one file per pair in the shared directory,
 * "freeflow-<key 8 hex>-pair-<lower owner id 16 hex>-<higher owner id 16 hex>", holding "shm\n" or
 * "not <reason>\n". The first side to decide publishes it with linkat() of a complete temporary file
 * (atomic, and EEXIST when the other side was first); the other side adopts what it finds. Nobody waits.
 */
typedef struct ff_pair_decision {
    bool shm;        /* both directions through shared memory */
    bool published;  /* we wrote the verdict (unlink it at close if still there) */
    char reason[48]; /* when !shm: the docs/btl-report.md reason, e.g. "segment-bad-magic" */
} ff_pair_decision_t;

/* Decides the pair (own, peer_id). `peer` receives the attached peer segment when the verdict is shm.
 * Returns FF_OK with the decision, or FF_ERR_VERDICT_CONFLICT when the peer published shm but its segment
 * no longer attaches here (only tampering between its check and ours does that; the job cannot continue:
 * `decision->reason` says why). */
FF_API ff_status_t ff_pair_decide(int dirfd, ff_segment_t *own, const ff_job_key_t *key, uint64_t peer_id,
                                  const ff_host_id_t *host, ff_segment_t **peer, ff_pair_decision_t *decision);
/* The verdict file's name (buf >= 64 bytes). */
FF_API int ff_pair_verdict_name(const ff_job_key_t *key, uint64_t a, uint64_t b, char *buf, size_t len);
/* Removes a verdict this side published, if still there (at finalize). */
FF_API void ff_pair_verdict_remove(int dirfd, const ff_job_key_t *key, uint64_t a, uint64_t b);
/* "segment-bad-magic" for FF_ERR_BAD_MAGIC (docs/btl-report.md), with `prefix` ("segment-", "own-segment-"). */
FF_API void ff_status_reason(ff_status_t status, const char *prefix, char *buf, size_t len);

/* ------------------------------------------------------------------------------------------------ */
/* The machine: CPU features and caches, and the shared-memory choices made from them (cpu.c, copy.c,  */
/* tuning.c). Sizes that suit one CPU's caches starve another's, so they are derived, not fixed.      */

typedef struct ff_cpu_info {
    char vendor[16]; /* cpuid vendor string, e.g. "AuthenticAMD" */
    /* CPUID's brand string as the CPU answers now; a hypervisor may have shown the kernel another at boot
     * (here CPUID says "Oxide Virtual Turin-like Processor" where /proc/cpuinfo and lscpu say "AMD EPYC") */
    char model[64];
    uint32_t family, model_number, stepping;
    uint32_t line_bytes;      /* cache line (64 when unknown) */
    uint32_t l1d_bytes;       /* per core; 0 when unknown */
    uint32_t l2_bytes;        /* per core; 0 when unknown */
    uint32_t l3_bytes;        /* the L3 this core shares; 0 when unknown or implausible */
    const char *cache_source; /* where the sizes came from: "sysfs", "cpuid", "sysconf" or "none" */
    bool sse2, avx2, avx512f, avx512bw, erms, fsrm, hypervisor;
} ff_cpu_info_t;

/* Reads the running CPU: cpuid for vendor, model and features; cache sizes from
 * /sys/devices/system/cpu/cpu0/cache, else cpuid's cache leaves (4 on Intel, 0x8000001D on AMD), else
 * sysconf. Never fails: what cannot be read is 0 / false. */
FF_API void ff_cpu_info_read(ff_cpu_info_t *cpu);
/* The features that steer the choices, space-separated ("erms fsrm avx2 avx512f ..."); returns the
 * length snprintf would write. */
FF_API int ff_cpu_flags_string(const ff_cpu_info_t *cpu, char *buf, size_t len);

typedef enum ff_copy_kind {
    FF_COPY_AUTO = 0, /* choose from the CPU (ff_shm_tuning_choose) */
    FF_COPY_LIBC,     /* glibc memcpy */
    FF_COPY_BLOCKS,   /* fixed 256-byte blocks of plain vector moves (no rep movsb) */
    FF_COPY_MOVSB,    /* rep movsb (fast with ERMS/FSRM) */
    FF_COPY_AVX2,     /* 32-byte vector loop */
    FF_COPY_AVX512,   /* 64-byte vector loop */
    FF_COPY_NT,       /* 32-byte non-temporal stores: for destinations nobody reads soon */
    FF_COPY_KIND_COUNT
} ff_copy_kind_t;

typedef void (*ff_copy_fn_t)(void *dst, const void *src, size_t len);

FF_API const char *ff_copy_kind_name(ff_copy_kind_t kind);
/* Parses a name from ff_copy_kind_name; FF_ERR_INVALID_ARGUMENT for anything else. */
FF_API ff_status_t ff_copy_kind_parse(const char *name, ff_copy_kind_t *kind);
/* The routine of a kind, or NULL when the CPU lacks what it needs (or for FF_COPY_AUTO). */
FF_API ff_copy_fn_t ff_copy_routine(ff_copy_kind_t kind, const ff_cpu_info_t *cpu);
/* Makes ff_copy use `kind` for the whole process; call once before copying (not thread-safe against
 * concurrent copies). FF_ERR_INVALID_ARGUMENT when the CPU cannot run it. */
FF_API ff_status_t ff_copy_use(ff_copy_kind_t kind, const ff_cpu_info_t *cpu);

/* What the shared-memory path uses on this machine. Each field can be given by the caller (non-zero,
 * FF_COPY_AUTO for copy) and is then kept if valid; zero fields are chosen from the CPU. */
typedef struct ff_shm_tuning {
    uint32_t fragment_size; /* bytes of one pipelined fragment of a large message */
    uint32_t ring_size;     /* data bytes of one ring (a power of two) */
    ff_copy_kind_t copy;    /* the bulk copy into the ring */
    const char *why;        /* one line: the rule that chose them */
} ff_shm_tuning_t;

#define FF_RING_SIZE_MIN (64u * 1024u)
#define FF_RING_SIZE_MAX (1u << 30)
#define FF_FRAGMENT_MIN  (4u * 1024u)

/* Fills the zero / AUTO fields of `tuning` from `cpu`, then checks all of them: ring_size a power of two
 * in [FF_RING_SIZE_MIN, FF_RING_SIZE_MAX], fragment_size in [FF_FRAGMENT_MIN, ring_size / 4], copy
 * runnable on this CPU. FF_ERR_INVALID_ARGUMENT (with `error` naming the field and the fix) otherwise. */
FF_API ff_status_t ff_shm_tuning_choose(const ff_cpu_info_t *cpu, ff_shm_tuning_t *tuning, char *error,
                                        size_t error_len);

/* ------------------------------------------------------------------------------------------------ */
/* Rings                                                                                             */
/* The data path is C11 (_Atomic, inline release/acquire operations): C++ callers such as the Node
 * addon see everything above, which is all they bind. */
#ifndef __cplusplus

/* Copies `len` bytes into a ring with the routine chosen by ff_copy_use (default: FF_COPY_BLOCKS);
 * for bulk payloads. */
FF_API void ff_copy(void *restrict dst, const void *restrict src, size_t len);

/* Record header: one 64-bit word, published last with a release store. Zero means "nothing yet".
 *   bits  0..31  payload length in bytes
 *   bits 32..39  user tag
 *   bits 40..47  record type (FF_RECORD_*)
 * A record occupies ff_ring_stride(len) bytes: the header and the payload rounded up to FF_RING_ALIGN.
 * The header after the producer's newest record reads zero before that record is published, so a
 * consumer never mistakes stale bytes of an earlier lap (old headers or payload) for a record.
 *
 * Zeroing ahead: that zero used to be stored by each reservation, before its commit. Every second 8 B
 * message it lands in the next cache line, which the consumer still holds from the previous lap, so the
 * commit waited for that line to be taken back from the other core (on x86 stores become visible in
 * order). Instead the producer keeps the FF_RING_ZERO_AHEAD bytes after its newest reservation zeroed in
 * advance, whole lines at a time, after a commit (ff_ring_zero_ahead): small reservations then find the
 * header after them already zero and store nothing ahead of their record. The format is unchanged. */
#define FF_RING_HEADER_SIZE 8u
#define FF_RING_ALIGN       8u
#define FF_RECORD_DATA      1u
#define FF_RECORD_SKIP      2u /* padding left by a record committed shorter than reserved, or cancelled */
#define FF_RECORD_WRAP      3u /* the rest of the ring is unused; continue at offset 0 */
/* Bytes after the newest reservation the producer keeps zeroed, and the slack below which it zeroes more
 * (whole cache lines: a refill costs one transfer per line, once every few lines). */
#define FF_RING_ZERO_AHEAD     512u
#define FF_RING_ZERO_AHEAD_LOW 256u

typedef struct ff_ring_tx {
    uint8_t *data;          /* ring data in the consumer's segment, mapped by the producer */
    _Atomic uint64_t *tail; /* consumer's position (bytes consumed), written by the consumer */
    uint64_t head;          /* bytes reserved so far */
    uint64_t tail_seen;     /* last value read from *tail */
    uint64_t zeroed;        /* bytes [head, zeroed) are zero: stored by us since the consumer released them */
    uint64_t rewind_check;  /* head from which the next ff_ring_rewind_due looks at the consumer's position */
    uint32_t size;          /* power of two */
    uint32_t max_payload;   /* largest payload one record may carry */
    bool broken;            /* the consumer's tail word is impossible: someone overwrote it */
} ff_ring_tx_t;

/* Everything the consumer steers addresses and lengths by is private (set at open from the segment's
 * private copies); only record header words are read from shared memory, and each is bounds-checked. */
typedef struct ff_ring_rx {
    uint8_t *data; /* ring data in the consumer's own segment */
    _Atomic uint64_t *tail;
    uint64_t pos; /* bytes consumed, including skipped padding */
    uint32_t size;
    uint32_t current_stride; /* stride of the record returned by the last ff_ring_peek */
    uint32_t max_payload;    /* largest payload a producer may put in one record (size / 4) */
    bool broken;             /* a record header was impossible: the producer's data cannot be trusted */
    uint64_t bad_word;       /* the header word that broke the ring, and where (for the error message) */
    uint64_t bad_offset;
} ff_ring_rx_t;

typedef struct ff_ring_record {
    void *data;
    uint32_t len;
    uint8_t tag;
} ff_ring_record_t;

/* Producer side: claims the next free ring in the consumer's segment (which the producer attached) and
 * marks it as carrying data from `producer_id` to the segment's owner. Safe from many producers at once.
 * The claimed ring is the announcement: the consumer finds it by polling its own segment. */
FF_API ff_status_t ff_segment_ring_claim(ff_segment_t *consumer, uint64_t producer_id, uint32_t *ring_index);
/* Consumer side: the next ring claimed in our own segment since `*cursor` (start at 0). False when there
 * is none (yet). Cheap enough to call on every progress pass. */
FF_API bool ff_segment_next_ring(ff_segment_t *own, uint32_t *cursor, uint64_t *producer_id, uint32_t *ring_index);

/* The counter producers bump when they claim a ring in `own`: a consumer can compare it with its cursor
 * inline on every progress pass and call ff_segment_next_ring only when it moved. */
FF_API const _Atomic uint32_t *ff_segment_claim_counter(const ff_segment_t *own);

/* Refuses (FF_ERR_OWNER_MISMATCH) a ring claimed by another producer. */
FF_API ff_status_t ff_ring_tx_open(ff_ring_tx_t *tx, ff_segment_t *consumer, uint32_t ring_index, uint64_t producer_id);
FF_API ff_status_t ff_ring_rx_open(ff_ring_rx_t *rx, ff_segment_t *own, uint32_t ring_index);

static inline uint32_t ff_ring_stride(uint32_t len)
{
    return (FF_RING_HEADER_SIZE + len + FF_RING_ALIGN - 1) & ~(FF_RING_ALIGN - 1);
}

static inline uint64_t ff_ring_header_word(uint32_t type, uint8_t tag, uint32_t len)
{
    return (uint64_t) len | ((uint64_t) tag << 32) | ((uint64_t) type << 40);
}

static inline _Atomic uint64_t *ff_ring_header_at(uint8_t *data, uint64_t offset)
{
    return (_Atomic uint64_t *) (void *) (data + offset);
}

/* Bulk data is placed so that it starts on this boundary: copies between cache-line-aligned buffers run
 * at full speed, while misaligned ones (rep movsb with source and destination out of phase) can run at
 * half. */
#define FF_RING_DATA_ALIGN 64u

/* Padding that puts byte `data_offset` of a payload whose record starts at `offset` on a
 * FF_RING_DATA_ALIGN boundary, in whole FF_RING_ALIGN units (a skip record of that stride fills it). */
static inline uint32_t ff_ring_pad_for(uint64_t offset, uint32_t data_offset)
{
    const uint64_t misplaced = (offset + FF_RING_HEADER_SIZE + data_offset) & (FF_RING_DATA_ALIGN - 1);
    return (uint32_t) ((FF_RING_DATA_ALIGN - misplaced) & (FF_RING_DATA_ALIGN - 1)) & ~(FF_RING_ALIGN - 1);
}

/* Rewinding: small messages walk the whole ring, a fresh cache line every second 8 B message, and a
 * line a lap old is no longer close to either core (8 B latency and message rate fell with every
 * doubling of the ring from 64 KiB on). So once the newest reservation is FF_RING_REWIND_AFTER bytes
 * into the ring, the producer looks at the consumer's position (one line transfer, at most once per
 * FF_RING_REWIND_AFTER bytes sent) and, if everything was consumed, wraps back to offset 0 with an
 * ordinary wrap marker: traffic that leaves the ring empty between bursts (ping-pong, windows of small
 * messages) stays in the first few KiB, as in vader's 4 KiB fast boxes. Consumers see nothing new. */
#define FF_RING_REWIND_AFTER 4096u

static inline bool ff_ring_rewind_due(ff_ring_tx_t *tx, uint64_t offset, uint32_t stride)
{
    /* after a rewind the record and the header after it must fit before `offset`, padding included */
    if (offset < FF_RING_REWIND_AFTER || tx->head < tx->rewind_check ||
        (uint64_t) stride + FF_RING_DATA_ALIGN + FF_RING_HEADER_SIZE > offset) {
        return false;
    }
    tx->rewind_check = tx->head + FF_RING_REWIND_AFTER;
    /* acquire: the consumer finished reading the bytes it released before we overwrite them */
    tx->tail_seen = atomic_load_explicit(tx->tail, memory_order_acquire);
    return tx->tail_seen == tx->head;
}

/*
 * Reserves room for a payload of `len` bytes (len <= tx->max_payload) and returns where to write it, or
 * NULL when the consumer has not freed enough room yet. With `aligned`, byte `data_offset` of the payload
 * (where bulk data starts after the caller's own header) lands on FF_RING_DATA_ALIGN, behind a skip
 * record if need be; small messages use aligned = false and pack densely. Reservations are committed (or
 * cancelled) later, in any order; the consumer sees them in reservation order. Callers serialise reserve
 * calls on one ring.
 */
static inline void *ff_ring_reserve_placed(ff_ring_tx_t *tx, uint32_t len, bool aligned, uint32_t data_offset)
{
    const uint32_t stride = ff_ring_stride(len);
    const uint64_t offset = tx->head & (tx->size - 1);
    /* A record never ends in the last header slot of the ring, so the header after it always fits. */
    const uint64_t to_end = tx->size - offset;
    uint32_t pad = aligned ? ff_ring_pad_for(offset, data_offset) : 0;
    uint64_t wrap_pad = 0;
    if ((uint64_t) pad + stride + FF_RING_HEADER_SIZE > to_end || ff_ring_rewind_due(tx, offset, stride)) {
        wrap_pad = to_end;
        pad = aligned ? ff_ring_pad_for(0, data_offset) : 0;
    }
    const uint64_t needed = wrap_pad + pad + stride + FF_RING_HEADER_SIZE;

    if (tx->head + needed - tx->tail_seen > tx->size) {
        /* acquire: the consumer finished reading the bytes it released before we overwrite them */
        tx->tail_seen = atomic_load_explicit(tx->tail, memory_order_acquire);
        if (tx->head + needed - tx->tail_seen > tx->size) {
            /* The consumer never releases more than we reserved, nor holds more than a ring: any other
             * tail was forged, and waiting for room would wait forever. */
            if (tx->tail_seen > tx->head || tx->head - tx->tail_seen > tx->size) {
                tx->broken = true;
            }
            return NULL;
        }
    }

    const uint64_t start = wrap_pad ? 0 : offset;
    const uint64_t record = start + pad;
    const uint64_t next = tx->head + wrap_pad + pad + stride; /* where the next header goes, in bytes ever */
    /* The header after this record must read zero before the consumer can reach it, and so must this
     * record's own when a wrap marker or a padding skip leads the consumer there (at `offset` it already
     * is). Usually ff_ring_zero_ahead zeroed both already; else (a large record, or no zeroing ahead)
     * store them now. The release store that publishes the marker, or else this record's commit, orders
     * these stores before it. */
    if (tx->zeroed < next + FF_RING_HEADER_SIZE) {
        if (record != offset && tx->zeroed <= next - stride) {
            atomic_store_explicit(ff_ring_header_at(tx->data, record), 0, memory_order_relaxed);
        }
        atomic_store_explicit(ff_ring_header_at(tx->data, record + stride), 0, memory_order_relaxed);
        tx->zeroed = next + FF_RING_HEADER_SIZE;
    }
    if (pad) {
        atomic_store_explicit(ff_ring_header_at(tx->data, start),
                              ff_ring_header_word(FF_RECORD_SKIP, 0, pad - FF_RING_HEADER_SIZE),
                              wrap_pad ? memory_order_relaxed : memory_order_release);
    }
    if (wrap_pad) {
        atomic_store_explicit(ff_ring_header_at(tx->data, offset),
                              ff_ring_header_word(FF_RECORD_WRAP, 0, (uint32_t) (to_end - FF_RING_HEADER_SIZE)),
                              memory_order_release);
    }
    tx->head += wrap_pad + pad + stride;
    return tx->data + record + FF_RING_HEADER_SIZE;
}

/* Reserves a densely packed record: see ff_ring_reserve_placed. */
static inline void *ff_ring_reserve(ff_ring_tx_t *tx, uint32_t len)
{
    return ff_ring_reserve_placed(tx, len, false, 0);
}

/* Publishes a reserved record with `len` <= the reserved length; the rest becomes a skip record. */
static inline void ff_ring_commit(ff_ring_tx_t *tx, void *payload, uint32_t reserved_len, uint32_t len, uint8_t tag)
{
    uint8_t *record = (uint8_t *) payload - FF_RING_HEADER_SIZE;
    const uint32_t used = ff_ring_stride(len);
    const uint32_t reserved = ff_ring_stride(reserved_len);
    (void) tx;
    if (used < reserved) {
        atomic_store_explicit((_Atomic uint64_t *) (void *) (record + used),
                              ff_ring_header_word(FF_RECORD_SKIP, 0, reserved - used - FF_RING_HEADER_SIZE),
                              memory_order_relaxed);
    }
    /* release: payload bytes (and the skip header) become visible before the header that announces them */
    atomic_store_explicit((_Atomic uint64_t *) (void *) record, ff_ring_header_word(FF_RECORD_DATA, tag, len),
                          memory_order_release);
}

/* Zeroes ahead of the newest reservation (see "Zeroing ahead" above) when fewer than
 * FF_RING_ZERO_AHEAD_LOW bytes are left, up to FF_RING_ZERO_AHEAD, never into bytes the consumer has not
 * released. Call it after a commit, so that taking those lines back from the consumer's core delays no
 * published record; serialised with reserve (it moves the same private state): a caller that would need
 * a second lock round trip for that may call it under its reserve lock, before the next reservation (it
 * stores only past every reservation, committed or not). */
static inline void ff_ring_zero_ahead(ff_ring_tx_t *tx)
{
    if (tx->zeroed - tx->head >= FF_RING_ZERO_AHEAD_LOW || tx->tail_seen > tx->head) {
        return; /* enough left; or a forged tail: reserve reports it */
    }
    uint64_t limit = (tx->head + FF_RING_ZERO_AHEAD) & ~(uint64_t) (FF_RING_DATA_ALIGN - 1);
    if (limit > tx->tail_seen + tx->size) {
        limit = tx->tail_seen + tx->size;
    }
    uint64_t at = tx->zeroed > tx->head ? tx->zeroed : tx->head;
    for (; at < limit; at += FF_RING_HEADER_SIZE) {
        /* relaxed: the release store of a later commit or marker orders these before it */
        atomic_store_explicit(ff_ring_header_at(tx->data, at & (tx->size - 1)), 0, memory_order_relaxed);
    }
    if (at > tx->zeroed) {
        tx->zeroed = at;
    }
}

/* Gives a reservation back without sending anything. */
static inline void ff_ring_cancel(ff_ring_tx_t *tx, void *payload, uint32_t reserved_len)
{
    uint8_t *record = (uint8_t *) payload - FF_RING_HEADER_SIZE;
    (void) tx;
    atomic_store_explicit((_Atomic uint64_t *) (void *) record,
                          ff_ring_header_word(FF_RECORD_SKIP, 0, ff_ring_stride(reserved_len) - FF_RING_HEADER_SIZE),
                          memory_order_release);
}

/* True when every reserved byte has been consumed. */
static inline bool ff_ring_tx_drained(ff_ring_tx_t *tx)
{
    tx->tail_seen = atomic_load_explicit(tx->tail, memory_order_acquire);
    return tx->tail_seen == tx->head;
}

/* Off the hot path: marks the ring broken; the caller stops polling it and reports the producer. */
static inline bool ff_ring_rx_break(ff_ring_rx_t *rx, uint64_t offset, uint64_t word)
{
    rx->broken = true;
    rx->bad_word = word;
    rx->bad_offset = offset;
    return false;
}

/*
 * Returns the oldest committed record without consuming it, skipping padding. False when there is none,
 * or when the ring is broken (rx->broken): a header whose type is unknown, whose record would not fit
 * between its offset and the ring's end, or whose payload exceeds max_payload. The producer never writes
 * such a header, so another process tampered with the ring; nothing it wrote steers our addresses.
 * A record stays valid until ff_ring_consume. Callers serialise peek/consume on one ring.
 */
static inline bool ff_ring_peek(ff_ring_rx_t *rx, ff_ring_record_t *record)
{
    uint64_t skipped = 0;
    for (;;) {
        const uint64_t offset = rx->pos & (rx->size - 1);
        /* acquire: pairs with the producer's release in commit; the payload is visible after this */
        const uint64_t word = atomic_load_explicit(ff_ring_header_at(rx->data, offset), memory_order_acquire);
        const uint32_t len = (uint32_t) word;
        const uint32_t type = (uint32_t) (word >> 40) & 0xffu;
        /* Every record ends at least one header slot before the ring's end (see reserve): with len
         * bounded first, offset + stride cannot overflow. Values already in registers: two compares. */
        if (type == FF_RECORD_DATA && len <= rx->max_payload &&
            offset + ff_ring_stride(len) + FF_RING_HEADER_SIZE <= rx->size) {
            record->data = rx->data + offset + FF_RING_HEADER_SIZE;
            record->len = len;
            record->tag = (uint8_t) (word >> 32);
            rx->current_stride = ff_ring_stride(len);
            if (skipped) {
                atomic_store_explicit(rx->tail, rx->pos, memory_order_release);
            }
            return true;
        }
        if (word == 0) {
            /* nothing committed yet. Publish skipped padding so a producer waiting for room sees it. */
            if (skipped) {
                atomic_store_explicit(rx->tail, rx->pos, memory_order_release);
            }
            return false;
        }
        if (type == FF_RECORD_SKIP && len <= rx->size &&
            offset + ff_ring_stride(len) + FF_RING_HEADER_SIZE <= rx->size) {
            /* skip records fill gaps inside one lap */
        } else if (type == FF_RECORD_WRAP && (uint64_t) len + FF_RING_HEADER_SIZE == rx->size - offset) {
            /* exactly to the ring's end: the next header is at offset 0 */
        } else {
            return ff_ring_rx_break(rx, offset, word);
        }
        skipped += ff_ring_stride(len);
        if (skipped > rx->size) {
            /* more padding than the ring holds: stale or forged skip records in a loop */
            return ff_ring_rx_break(rx, offset, word);
        }
        rx->pos += ff_ring_stride(len);
    }
}

/* Releases the record returned by the last successful ff_ring_peek to the producer. */
static inline void ff_ring_consume(ff_ring_rx_t *rx)
{
    rx->pos += rx->current_stride;
    /* release: our reads of the record complete before the producer may overwrite it */
    atomic_store_explicit(rx->tail, rx->pos, memory_order_release);
}

/* ------------------------------------------------------------------------------------------------ */
/* Poll schedule: which inbound rings a consumer looks at on one progress pass.
 *
 * Scanning every claimed ring on every pass makes a pass cost grow with peers that never send (each
 * empty ring is a trylock, a header load and a branch): with 63 silent peers the 8 B latency grew by
 * half. Instead, rings that carried a record recently are "hot" and polled on every pass; a ring whose
 * polls came back empty `demote_after` times in a row turns "cold", and cold rings are polled
 * round-robin, `cold_per_pass` of them per pass. A pass therefore costs (hot rings + cold_per_pass)
 * polls whatever the number of silent peers, and a cold ring is polled at least once every
 * ceil(rings / cold_per_pass) passes: the bound on the extra latency of a peer's first message after a
 * silence. A record found in a cold ring makes it hot again.
 *
 * Everything here is private to the consumer: nothing another process writes decides which ring is
 * polled, so no forged word can make the consumer skip a ring, and every ring stays within the bound.
 * Not thread-safe: callers serialise passes (the BTL holds one try-lock per pass).
 */
#define FF_POLL_COLD UINT32_MAX

typedef struct ff_poll_schedule {
    uint32_t *hot;      /* ring indices polled every pass, densely packed in [0, hot_count) */
    uint32_t *hot_slot; /* per ring: its index in hot[], or FF_POLL_COLD */
    uint32_t *quiet;    /* per ring: empty polls in a row while hot */
    uint32_t capacity;  /* most rings */
    uint32_t rings;     /* rings added so far: indices 0 .. rings-1 */
    uint32_t hot_count;
    uint32_t cold_cursor;   /* next ring index the round-robin of cold rings looks at */
    uint32_t cold_per_pass; /* >= 1 */
    uint32_t demote_after;  /* empty polls before a hot ring turns cold; 0: never (poll every ring every pass) */
} ff_poll_schedule_t;

/* One pass over the schedule: begin, then next/report until next returns false. */
typedef struct ff_poll_pass {
    uint32_t next_hot;   /* index into hot[] */
    uint32_t cold_left;  /* cold rings still to poll this pass */
    uint32_t sweep_left; /* ring indices the round-robin may still look at this pass */
    uint32_t ring;       /* the ring returned by the last next */
    bool ring_was_cold;
} ff_poll_pass_t;

/* Allocates room for `capacity` rings. cold_per_pass 0 is taken as 1. */
FF_API ff_status_t ff_poll_schedule_init(ff_poll_schedule_t *schedule, uint32_t capacity, uint32_t cold_per_pass,
                                         uint32_t demote_after);
FF_API void ff_poll_schedule_fini(ff_poll_schedule_t *schedule);
/* Adds ring index `schedule->rings` (the next one), hot: a new ring is about to carry its first record.
 * FF_ERR_FULL past the capacity. */
FF_API ff_status_t ff_poll_schedule_add(ff_poll_schedule_t *schedule);

static inline void ff_poll_pass_begin(const ff_poll_schedule_t *schedule, ff_poll_pass_t *pass)
{
    pass->next_hot = 0;
    pass->cold_left = schedule->rings > schedule->hot_count ? schedule->cold_per_pass : 0;
    pass->sweep_left = schedule->rings;
    pass->ring = FF_POLL_COLD;
    pass->ring_was_cold = false;
}

/* The next ring to poll in this pass, or false when the pass is over. Every next must be followed by
 * ff_poll_pass_report before the following next. */
static inline bool ff_poll_pass_next(ff_poll_schedule_t *schedule, ff_poll_pass_t *pass, uint32_t *ring)
{
    if (pass->next_hot < schedule->hot_count) {
        *ring = pass->ring = schedule->hot[pass->next_hot];
        pass->ring_was_cold = false;
        return true;
    }
    /* Round-robin over ring indices, not over the cold set: the set changes as rings turn hot and
     * cold, while the cursor passes every index once per `rings` steps, which is what bounds how long
     * a cold ring waits. A pass takes at least min(cold_per_pass, rings) steps. */
    while (pass->cold_left && pass->sweep_left) {
        const uint32_t candidate = schedule->cold_cursor;
        schedule->cold_cursor = candidate + 1 >= schedule->rings ? 0 : candidate + 1;
        --pass->sweep_left;
        if (schedule->hot_slot[candidate] == FF_POLL_COLD) {
            --pass->cold_left;
            *ring = pass->ring = candidate;
            pass->ring_was_cold = true;
            return true;
        }
    }
    return false;
}

/* Whether the ring returned by the last next carried anything (or was busy elsewhere: report true, it
 * is not idle). Moves rings between hot and cold. */
static inline void ff_poll_pass_report(ff_poll_schedule_t *schedule, ff_poll_pass_t *pass, bool carried)
{
    const uint32_t ring = pass->ring;
    if (!pass->ring_was_cold) {
        if (carried || schedule->demote_after == 0) {
            schedule->quiet[ring] = 0;
            ++pass->next_hot;
        } else if (++schedule->quiet[ring] < schedule->demote_after) {
            ++pass->next_hot;
        } else {
            /* demote: the last hot ring takes this one's place and is polled next (not skipped) */
            const uint32_t last = schedule->hot[--schedule->hot_count];
            schedule->hot[pass->next_hot] = last;
            schedule->hot_slot[last] = pass->next_hot;
            schedule->hot_slot[ring] = FF_POLL_COLD;
        }
    } else if (carried) {
        /* promote: appended to hot[], so this pass polls it once more before the round-robin goes on */
        schedule->quiet[ring] = 0;
        schedule->hot_slot[ring] = schedule->hot_count;
        schedule->hot[schedule->hot_count++] = ring;
    }
}

#endif /* !__cplusplus: rings */

/* ================================================================================================ */
/* BEGIN inter-host agent section (issue 8): SHA-256/HMAC, the data-plane policy, the ffagent client. */
/* Everything here is plain C11 + POSIX and works in and out of C++ (no atomics). docs/agent.md.     */
/* ================================================================================================ */

/* ---- SHA-256 (FIPS 180-2) and HMAC-SHA256 (RFC 2104): agents authenticate each other with the job
 * key by challenge-response, so the key never crosses the network. */
#define FF_SHA256_SIZE 32u

typedef struct ff_sha256 {
    uint32_t state[8];
    uint64_t bytes;
    uint8_t block[64];
} ff_sha256_t;

typedef struct ff_hmac_sha256 {
    ff_sha256_t inner;
    uint8_t opad[64];
} ff_hmac_sha256_t;

FF_API void ff_sha256_init(ff_sha256_t *ctx);
FF_API void ff_sha256_update(ff_sha256_t *ctx, const void *data, size_t len);
FF_API void ff_sha256_final(ff_sha256_t *ctx, uint8_t digest[FF_SHA256_SIZE]);
FF_API void ff_sha256(const void *data, size_t len, uint8_t digest[FF_SHA256_SIZE]);
FF_API void ff_hmac_sha256_init(ff_hmac_sha256_t *ctx, const void *key, size_t key_len);
FF_API void ff_hmac_sha256_update(ff_hmac_sha256_t *ctx, const void *data, size_t len);
/* Writes the MAC and wipes the context (it held key material). */
FF_API void ff_hmac_sha256_final(ff_hmac_sha256_t *ctx, uint8_t mac[FF_SHA256_SIZE]);
FF_API void ff_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, uint8_t mac[FF_SHA256_SIZE]);
/* Compares in time that depends only on `len`, never on where the first difference is. */
FF_API bool ff_ct_equal(const void *a, const void *b, size_t len);

/* ---- Inter-host data plane policy: a pure function, decided per pair of hosts. */
typedef enum ff_plane {
    FF_PLANE_HANDOFF = 0, /* agents connect TCP over the hosts' network and hand the socket to the ranks */
    FF_PLANE_ROUTER,      /* through the per-host routers (UCX; RDMA where both hosts have it) */
    FF_PLANE_TCP,         /* Open MPI's tcp BTL over the containers' overlay network */
    FF_PLANE_COUNT
} ff_plane_t;

typedef enum ff_plane_choice {
    FF_PLANE_CHOICE_AUTO = 0,
    FF_PLANE_CHOICE_HANDOFF,
    FF_PLANE_CHOICE_ROUTER,
    FF_PLANE_CHOICE_TCP,
    FF_PLANE_CHOICE_COUNT
} ff_plane_choice_t;

/* What one host reports about itself. */
typedef struct ff_host_caps {
    bool agent_reachable; /* its ffagent is running and serves this job */
    bool rdma_active;     /* it has an RDMA port in state ACTIVE */
} ff_host_caps_t;

typedef enum ff_plane_reason {
    FF_PLANE_REASON_USER_TCP = 0,        /* the user chose tcp */
    FF_PLANE_REASON_AGENT_UNREACHABLE,   /* auto: an agent is missing, so only the overlay is left */
    FF_PLANE_REASON_BOTH_RDMA,           /* auto: both hosts have an active RDMA port: router */
    FF_PLANE_REASON_NO_COMMON_RDMA,      /* auto: not both have RDMA: handoff (the default) */
    FF_PLANE_REASON_USER_HANDOFF,        /* the user chose handoff and both agents are there */
    FF_PLANE_REASON_USER_ROUTER,         /* the user chose router and both agents are there */
    FF_PLANE_REASON_CHOICE_NEEDS_AGENT,  /* the user chose handoff or router but an agent is missing: tcp */
    FF_PLANE_REASON_INVALID_CHOICE,      /* the choice is out of range: tcp, the path that always exists */
    FF_PLANE_REASON_AGENTS_CANNOT_REACH, /* both agents serve the job but their handshake failed: tcp */
    FF_PLANE_REASON_COUNT
} ff_plane_reason_t;

FF_API ff_plane_t ff_plane_decide(ff_plane_choice_t choice, const ff_host_caps_t *a, const ff_host_caps_t *b,
                                  ff_plane_reason_t *reason);
/* The same, knowing whether the two agents completed the authenticated handshake with each other before
 * the plan (the `probe` control command, both ways). Agents that serve the job but cannot reach each other
 * cannot carry `h` or `r`: tcp, FF_PLANE_REASON_AGENTS_CANNOT_REACH. ff_plane_decide assumes they can. */
FF_API ff_plane_t ff_plane_decide_pair(ff_plane_choice_t choice, const ff_host_caps_t *a, const ff_host_caps_t *b,
                                       bool agents_reach_each_other, ff_plane_reason_t *reason);
/* "handoff", "router", "tcp" */
FF_API const char *ff_plane_name(ff_plane_t plane);
/* "auto", "handoff", "router", "tcp" */
FF_API const char *ff_plane_choice_name(ff_plane_choice_t choice);
/* Parses the names above; FF_ERR_INVALID_ARGUMENT for anything else. */
FF_API ff_status_t ff_plane_choice_parse(const char *name, ff_plane_choice_t *out);
/* "FF_PLANE_REASON_BOTH_RDMA" and a sentence explaining it. */
FF_API const char *ff_plane_reason_name(ff_plane_reason_t reason);
FF_API const char *ff_plane_reason_describe(ff_plane_reason_t reason);

/* ---- ffagent client: what a rank uses to reach its host's agent through <shared dir>/agent.sock.
 *
 * A rank registers with its owner id (jobid << 32 | vpid) and keeps the registration open: the agent
 * pushes sockets that peers on other hosts opened to it over that connection, and the rank sees EOF on
 * it at once if the agent dies. ff_agent_fd() is the registration socket, for poll/epoll in a progress
 * loop: readable means "a handed-off socket is waiting" or "the agent is gone"; ff_agent_accept() never
 * blocks. ff_agent_connect() blocks (up to the connect timeout) while the agents connect and
 * authenticate; it opens its own short-lived connection to agent.sock, so it never interleaves with the
 * pushes on the registration connection.
 *
 * Handed-off sockets are connected TCP sockets (TCP_NODELAY set, close-on-exec) to the peer rank itself:
 * after the handoff the agents keep no copy and see none of the data. They are blocking unless
 * ff_agent_set_nonblocking() asked otherwise.
 *
 * Statuses: FF_OK; FF_ERR_NOT_READY (accept: nothing waiting yet); FF_ERR_FOREIGN_JOB (refused: see the
 * ff_agent_refusal_t); FF_ERR_NOT_FOUND (no agent.sock: no agent serves this job on this host);
 * FF_ERR_SYSTEM (errno; EPIPE when the agent closed the registration: it died or removed the job).
 * ff_agent_error() has a sentence for the last failure naming the agent and the fix.
 *
 * Threads: a connection is used by one thread at a time (e.g. under the BTL's progress lock); the
 * functions keep no global state, so separate connections need no locking. */
typedef enum ff_agent_refusal {
    FF_AGENT_OK = 0,
    FF_AGENT_BAD_KEY,          /* the request did not prove the job key */
    FF_AGENT_BAD_UID,          /* the caller's uid is not the job's */
    FF_AGENT_UNKNOWN_JOB,      /* the (peer) agent has no such job registered */
    FF_AGENT_UNKNOWN_RANK,     /* the target rank is not registered with its host's agent */
    FF_AGENT_NOT_REGISTERED,   /* the requester must register its owner id before connecting */
    FF_AGENT_DUPLICATE_OWNER,  /* another live registration already has this owner id */
    FF_AGENT_HOST_NOT_ALLOWED, /* the peer host is not in the job's host list (either direction) */
    FF_AGENT_PEER_UNREACHABLE, /* the peer host's agent did not answer over the host network */
    FF_AGENT_PEER_AUTH_FAILED, /* the peer agent could not prove the job key: not our job's agent */
    FF_AGENT_BAD_REQUEST,      /* malformed message or unsupported protocol version */
    FF_AGENT_LIMIT,            /* a bound (connections, pending requests) was reached */
    FF_AGENT_RANK_BUSY,        /* the target rank's registration connection is full (it does not accept) */
    FF_AGENT_INTERNAL,         /* a system call failed in an agent; its log says which */
    FF_AGENT_REFUSAL_COUNT
} ff_agent_refusal_t;

FF_API const char *ff_agent_refusal_name(ff_agent_refusal_t reason);
FF_API const char *ff_agent_refusal_describe(ff_agent_refusal_t reason);

typedef struct ff_agent_conn ff_agent_conn_t;

/* Connects to <shared_dir>/agent.sock and registers `owner_id`. On refusal returns FF_ERR_FOREIGN_JOB
 * and `*reason` (may be NULL) says why. */
FF_API ff_status_t ff_agent_register(const char *shared_dir, const ff_job_key_t *key, uint64_t owner_id,
                                     ff_agent_conn_t **out, ff_agent_refusal_t *reason);
/* Asks the agent for a channel to `peer_owner_id` on host `peer_host` (index in the job's host list).
 * Blocks up to the timeout (ff_agent_set_timeout; default 10 s). */
FF_API ff_status_t ff_agent_connect(ff_agent_conn_t *conn, uint64_t peer_owner_id, uint32_t peer_host, int *fd,
                                    ff_agent_refusal_t *reason);
/* The same without blocking, for a progress loop: _start sends the request and gives a pending
 * descriptor to poll for POLLIN; _finish returns FF_ERR_NOT_READY until the agent has answered, then the
 * result of ff_agent_connect, and closes the pending descriptor (it also does so on any failure). */
FF_API ff_status_t ff_agent_connect_start(ff_agent_conn_t *conn, uint64_t peer_owner_id, uint32_t peer_host,
                                          int *pending);
FF_API ff_status_t ff_agent_connect_finish(ff_agent_conn_t *conn, int pending, int *fd, ff_agent_refusal_t *reason);
/* Non-blocking: FF_OK with a socket a peer opened to us and its owner id (and host index, may be NULL);
 * FF_ERR_NOT_READY when none is waiting. */
FF_API ff_status_t ff_agent_accept(ff_agent_conn_t *conn, int *fd, uint64_t *peer_owner_id, uint32_t *peer_host);
/* The registration socket: poll it for POLLIN. */
FF_API int ff_agent_fd(const ff_agent_conn_t *conn);
FF_API void ff_agent_set_nonblocking(ff_agent_conn_t *conn, bool nonblocking);
FF_API void ff_agent_set_timeout(ff_agent_conn_t *conn, int timeout_ms);
FF_API const char *ff_agent_error(const ff_agent_conn_t *conn);
/* Closes the registration: the agent forgets the owner id. Sockets already handed off stay open. */
FF_API void ff_agent_close(ff_agent_conn_t *conn);

/* ---- The `r` plane client: a rank's rings with its host's agent, which forwards records to the agents
 * of other hosts (UCX) and delivers what they send into this rank's down ring (docs/agent.md, "The `r`
 * plane"). ff_route_open needs a live registration (ff_agent_register). The memory is a sealed memfd
 * passed to the agent: no file in the shared directory. Calls on one route are serialised by the caller.
 *
 * Sending: ff_route_reserve gives room for `len` bytes addressed to (dst_owner, dst_host), or NULL while
 * the up ring is full (call again after progress); ff_route_commit publishes it (and rings the agent's
 * doorbell if it sleeps). Receiving: ff_route_peek returns the oldest delivered message in place (valid
 * until ff_route_consume). ff_route_check is cheap and never blocks: FF_ERR_SYSTEM (errno EPIPE) when the
 * agent closed the route (it died, removed the job, or lost the link to a peer host),
 * FF_ERR_CORRUPT when a ring holds what no agent writes; ff_route_error() then names the agent. */
typedef struct ff_route ff_route_t;

typedef struct ff_route_msg {
    const void *data;
    uint32_t len;
    uint8_t tag;
    uint64_t src_owner;
} ff_route_msg_t;

FF_API ff_status_t ff_route_open(ff_agent_conn_t *conn, ff_route_t **out, ff_agent_refusal_t *reason);
/* Largest `len` one message may carry. */
FF_API uint32_t ff_route_max_message(void);
FF_API void *ff_route_reserve(ff_route_t *route, uint64_t dst_owner, uint32_t dst_host, uint32_t len);
/* `len` <= the reserved length. */
FF_API void ff_route_commit(ff_route_t *route, void *data, uint32_t reserved, uint32_t len, uint8_t tag);
FF_API bool ff_route_peek(ff_route_t *route, ff_route_msg_t *msg);
FF_API void ff_route_consume(ff_route_t *route);
/* True when the agent has taken every record this rank committed. */
FF_API bool ff_route_sent_all(ff_route_t *route);
FF_API ff_status_t ff_route_check(ff_route_t *route);
/* Sharing CPUs with the agent. A rank that polls (MPI progress) calls ff_route_poll_pass once per pass,
 * saying whether anything moved on any path. After `spin_passes` passes in a row with nothing moved it
 * calls sched_yield() on every further empty pass, so an agent that is runnable on the CPU this rank
 * spins on (woken by a doorbell or by data from another host) runs at once instead of waiting for the
 * scheduler to preempt the rank. spin_passes 0 (the default of a new route) never yields. Returns true
 * when it yielded. */
FF_API void ff_route_set_yield(ff_route_t *route, unsigned spin_passes);
FF_API bool ff_route_poll_pass(ff_route_t *route, bool moved);
/* The doorbell connection: readable means the agent closed it (a poll loop may watch it). */
FF_API int ff_route_fd(const ff_route_t *route);
FF_API const char *ff_route_error(const ff_route_t *route);
FF_API void ff_route_close(ff_route_t *route);

/* ================================================================================================ */
/* END inter-host agent section                                                                      */
/* ================================================================================================ */

/* ================================================================================================ */
/* BEGIN pair policy section (issue 8): what the BTL decides per pair of ranks, as a pure function.   */
/* ================================================================================================ */

/*
 * The freeflow BTL's per-pair decision, with no I/O, so that ctest reaches every branch without root or
 * Open MPI. The BTL gathers the inputs (the peer's modex, the path table, its agent registration) and
 * calls it; when the answer is FF_PAIR_ROUTE_PROVE it runs the co-location proof (ff_pair_decide:
 * attach the peer's segment, publish or adopt the pair's verdict) and calls it again with the result.
 * Every input is one both ranks of the pair see alike (mirrored: "mine" on one side is "the peer's" on
 * the other), so both decide the same route: the tests check that symmetry.
 */
typedef enum ff_pair_route {
    FF_PAIR_ROUTE_SHM = 0,  /* the shared-memory module carries the pair */
    FF_PAIR_ROUTE_HANDOFF,  /* the handoff module (path `h`) carries it */
    FF_PAIR_ROUTE_ROUTER,   /* the router module (path `r`) carries it */
    FF_PAIR_ROUTE_NEXT_BTL, /* freeflow declines: the next BTL (tcp over the overlay) carries it */
    FF_PAIR_ROUTE_PROVE,    /* all checks passed: run the co-location proof, then decide again */
    FF_PAIR_ROUTE_FATAL,    /* the peer chose shm but its segment no longer attaches: the job cannot go on */
    FF_PAIR_ROUTE_COUNT
} ff_pair_route_t;

/* Why; the text (ff_pair_outcome_t.reason) is the docs/btl-report.md identifier. */
typedef enum ff_pair_reason {
    FF_PAIR_REASON_SHM = 0,                /* "shm": both segments verified, the verdict says shm */
    FF_PAIR_REASON_NEEDS_PROOF,            /* "needs-proof": same host per identity, not proven yet */
    FF_PAIR_REASON_NO_MODEX,               /* "no-modex": the peer does not run the freeflow BTL */
    FF_PAIR_REASON_VERSION_MISMATCH,       /* "segment-version-mismatch": other modex size/layout/owner */
    FF_PAIR_REASON_FOREIGN_JOB,            /* "segment-foreign-job": the peer's modex has another job key */
    FF_PAIR_REASON_PATH_TABLE_SAYS,        /* "path-table-says-<path>": planned tcp (or h/r, carried by their module) */
    FF_PAIR_REASON_ONE_WAY,                /* "path-table-says-<path>-one-way": h or r planned in one direction only */
    FF_PAIR_REASON_AGENT_UNREACHABLE,      /* "agent-unreachable": this rank is not registered with its ffagent */
    FF_PAIR_REASON_PEER_AGENT_UNREACHABLE, /* "peer-agent-unreachable": the peer is not registered with its ffagent */
    FF_PAIR_REASON_NOT_IN_PATH_TABLE,      /* "not-in-path-table": same MPI job, but the table lacks the peer */
    FF_PAIR_REASON_HOST_MISMATCH,          /* "host-mismatch": other host identity */
    FF_PAIR_REASON_SEGMENT_STATUS,         /* "segment-<status>": the proof failed with that status */
    FF_PAIR_REASON_VERDICT,                /* the pair's verdict said "not <reason>": that reason */
    FF_PAIR_REASON_VERDICT_CONFLICT,       /* the verdict says shm, our attach failed: the verdict's reason */
    FF_PAIR_REASON_COUNT
} ff_pair_reason_t;

typedef struct ff_pair_inputs {
    bool modex_present;            /* the peer published a freeflow modex */
    bool modex_layout_ok;          /* its size, layout version and owner id are the expected ones */
    bool key_equal;                /* its job key is ours */
    bool table_covers_me;          /* a path table applies to this rank (it is in the table's job) */
    bool table_covers_peer;        /* ... and to the peer */
    bool peer_in_my_mpi_job;       /* the peer is of this rank's MPI job (not a spawned one) */
    ff_path_kind_t path_to_peer;   /* the table's path from us to the peer (when it covers both) */
    ff_path_kind_t path_from_peer; /* ... and back */
    bool host_equal;               /* the peer's host identity equals ours */
    bool my_agent_registered;      /* this rank registered with its host's ffagent */
    bool peer_agent_registered;    /* the peer's modex says it did */
    /* The co-location proof (ff_pair_decide), once FF_PAIR_ROUTE_PROVE asked for it: */
    bool proof_done;
    ff_status_t proof_status; /* what ff_pair_decide returned */
    bool proof_shm;           /* its decision.shm */
    const char *proof_reason; /* its decision.reason (when !shm or on a conflict); may be NULL */
} ff_pair_inputs_t;

typedef struct ff_pair_outcome {
    ff_pair_route_t route;
    ff_pair_reason_t reason;
    ff_path_kind_t path; /* the pair's planned path, the same for both ranks (shm when unplanned) */
    char text[48];       /* the docs/btl-report.md identifier, e.g. "path-table-says-tcp" */
} ff_pair_outcome_t;

/* Decides; never fails (NULL arguments give FF_PAIR_ROUTE_NEXT_BTL with FF_PAIR_REASON_NO_MODEX). */
FF_API void ff_pair_policy_decide(const ff_pair_inputs_t *in, ff_pair_outcome_t *out);
/* "FF_PAIR_ROUTE_SHM" / "FF_PAIR_REASON_HOST_MISMATCH" */
FF_API const char *ff_pair_route_name(ff_pair_route_t route);
FF_API const char *ff_pair_reason_name(ff_pair_reason_t reason);

/* ================================================================================================ */
/* END pair policy section                                                                           */
/* ================================================================================================ */

/* ================================================================================================ */
/* Shared window memory (docs/onesided.md, single copy for MPI one-sided between containers)        */
/* ================================================================================================ */

/* The owner's side: the whole pages of a registered range, moved with their contents into a file of the
 * shared directory mapped at the same addresses. */
typedef struct ff_window ff_window_t;
/* The file's name for a registration slot (buf >= 96 bytes). */
FF_API int ff_window_name(uint64_t owner_id, uint32_t index, uint32_t generation, char *buf, size_t len);
/* Shares the whole pages of [base, base + len). FF_ERR_INVALID_ARGUMENT: fewer than `min_bytes` (or one
 * page) of whole pages; FF_ERR_UNTRUSTED: the pages are not all private anonymous memory, or the name is
 * taken; FF_ERR_SYSTEM: errno. On any error the memory is untouched and the caller keeps it private. */
FF_API ff_status_t ff_window_share(int dirfd, uint64_t owner_id, uint32_t index, uint32_t generation, uint64_t key,
                                   void *base, size_t len, size_t min_bytes, ff_window_t **out);
FF_API uintptr_t ff_window_base(const ff_window_t *window); /* first shared byte (page aligned) */
FF_API size_t ff_window_len(const ff_window_t *window);
/* Revokes peers' views, unlinks the file and makes the pages private again (same contents). */
FF_API void ff_window_unshare(ff_window_t *window);

/* A peer's mapping of an owner's shared window, verified against the registration handle (owner, slot,
 * generation, key) and the file's size: FF_ERR_NOT_FOUND (not shared), FF_ERR_UNTRUSTED, FF_ERR_BAD_MAGIC,
 * FF_ERR_VERSION_MISMATCH, FF_ERR_OWNER_MISMATCH, FF_ERR_FOREIGN_JOB (other key), FF_ERR_CORRUPT. */
typedef struct ff_window_view ff_window_view_t;
FF_API ff_status_t ff_window_view_open(int dirfd, uint64_t owner_id, uint32_t index, uint32_t generation, uint64_t key,
                                       ff_window_view_t **out);
/* Our address for the owner's [address, address + len), or NULL unless all of it is shared. */
FF_API void *ff_window_view_address(const ff_window_view_t *view, uint64_t address, size_t len);
/* The owner's addresses that are shared: [*base, *base + *len). */
FF_API void ff_window_view_range(const ff_window_view_t *view, uint64_t *base, uint64_t *len);
/* The owner unshared it (deregistration): the view must be closed and not used again. */
FF_API bool ff_window_view_revoked(const ff_window_view_t *view);
FF_API void ff_window_view_close(ff_window_view_t *view);

#ifdef __cplusplus
}
#endif

#endif /* FREEFLOW_H */
