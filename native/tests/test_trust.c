/* Issue 7: trust rules (directories, segments, path tables, reports), pair verdicts, private copies of
 * segment layout values, and a fuzz test of the owner's ring operations against a hostile writer. */
#include "check.h"
#include "freeflow.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define NOBODY 65534

static const ff_job_key_t key = {{0x11, 0x22, 0x33, 0x44, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};

static ff_segment_config_t config_for(const char *dir, int dirfd, uint64_t owner)
{
    ff_segment_config_t config = {
        .dir = dir, .key = key, .owner_id = owner, .ring_size = 8192, .max_rings = 4, .dir_fd = dirfd};
    if (ff_host_id_read(dir, &config.host) != FF_OK) {
        exit(2);
    }
    return config;
}

static void seg_path(const char *dir, uint64_t owner, char *buf)
{
    ff_segment_path(dir, &key, owner, buf, 4096);
}

static void test_directories(const char *dir)
{
    int fd = -1;
    char reason[512], sub[4096], link_path[4096];
    CHECK_STATUS(ff_dir_open(dir, &fd, reason, sizeof(reason)), FF_OK);
    close(fd);
    /* world-writable without sticky */
    snprintf(sub, sizeof(sub), "%s/open", dir);
    CHECK(mkdir(sub, 0777) == 0 && chmod(sub, 0777) == 0);
    CHECK_STATUS(ff_dir_open(sub, &fd, reason, sizeof(reason)), FF_ERR_UNTRUSTED);
    CHECK(strstr(reason, "sticky") != NULL);
    CHECK(chmod(sub, 01777) == 0);
    CHECK_STATUS(ff_dir_open(sub, &fd, reason, sizeof(reason)), FF_OK);
    close(fd);
    /* another user's directory */
    CHECK(chmod(sub, 0755) == 0 && chown(sub, NOBODY, NOBODY) == 0);
    CHECK_STATUS(ff_dir_open(sub, &fd, reason, sizeof(reason)), FF_ERR_UNTRUSTED);
    CHECK(strstr(reason, "owned by uid 65534") != NULL);
    rmdir(sub);
    /* a symlink to a good directory */
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    CHECK(symlink(dir, link_path) == 0);
    CHECK_STATUS(ff_dir_open(link_path, &fd, reason, sizeof(reason)), FF_ERR_UNTRUSTED);
    unlink(link_path);

    /* the private default: created 0700, reused, refused when planted by someone else or a symlink */
    char path[4096];
    CHECK_STATUS(ff_dir_open_private(dir, "job1", path, sizeof(path), &fd, reason, sizeof(reason)), FF_OK);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0700 && st.st_uid == geteuid());
    close(fd);
    CHECK_STATUS(ff_dir_open_private(dir, "job1", path, sizeof(path), &fd, reason, sizeof(reason)), FF_OK);
    close(fd);
    CHECK(chmod(path, 0755) == 0);
    CHECK_STATUS(ff_dir_open_private(dir, "job1", path, sizeof(path), &fd, reason, sizeof(reason)), FF_ERR_UNTRUSTED);
    CHECK(chmod(path, 0700) == 0 && chown(path, NOBODY, NOBODY) == 0);
    CHECK_STATUS(ff_dir_open_private(dir, "job1", path, sizeof(path), &fd, reason, sizeof(reason)), FF_ERR_UNTRUSTED);
    rmdir(path);
    CHECK(symlink("/tmp", path) == 0);
    CHECK_STATUS(ff_dir_open_private(dir, "job1", path, sizeof(path), &fd, reason, sizeof(reason)), FF_ERR_UNTRUSTED);
    unlink(path);
}

static void test_segment_trust(const char *dir, int dirfd)
{
    ff_segment_config_t config = config_for(dir, dirfd, 7);
    ff_segment_t *own = NULL, *peer = NULL;
    char path[4096], other[4096];
    seg_path(dir, 7, path);
    seg_path(dir, 8, other);

    /* create refuses a planted symlink or another user's file under our name, and does not follow it */
    int victim = open(other, O_CREAT | O_WRONLY, 0600);
    CHECK(victim >= 0 && write(victim, "keep", 4) == 4);
    close(victim);
    CHECK(symlink(other, path) == 0);
    CHECK_STATUS(ff_segment_create(&config, &own), FF_ERR_UNTRUSTED);
    struct stat st;
    CHECK(stat(other, &st) == 0 && st.st_size == 4);
    unlink(path);
    int planted = open(path, O_CREAT | O_WRONLY, 0600);
    close(planted);
    CHECK(chown(path, NOBODY, NOBODY) == 0);
    CHECK_STATUS(ff_segment_create(&config, &own), FF_ERR_UNTRUSTED);
    unlink(path);
    unlink(other);

    /* a stale file of ours is replaced */
    planted = open(path, O_CREAT | O_WRONLY, 0600);
    close(planted);
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    CHECK_STATUS(ff_segment_verify_own(own), FF_OK);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* attach: a symlink to a valid segment, a fifo (must not block), another owner, open to others */
    CHECK(symlink(path, other) == 0);
    CHECK_STATUS(ff_segment_attach_at(dirfd, &key, 8, &config.host, &peer), FF_ERR_UNTRUSTED);
    unlink(other);
    CHECK(mkfifo(other, 0600) == 0);
    CHECK_STATUS(ff_segment_attach_at(dirfd, &key, 8, &config.host, &peer), FF_ERR_UNTRUSTED);
    unlink(other);
    CHECK(chown(path, NOBODY, NOBODY) == 0);
    CHECK_STATUS(ff_segment_attach_at(dirfd, &key, 7, &config.host, &peer), FF_ERR_UNTRUSTED);
    CHECK_STATUS(ff_segment_verify_own(own), FF_ERR_UNTRUSTED);
    CHECK(chown(path, 0, 0) == 0 && chmod(path, 0644) == 0);
    CHECK_STATUS(ff_segment_attach_at(dirfd, &key, 7, &config.host, &peer), FF_ERR_UNTRUSTED);
    CHECK(chmod(path, 0600) == 0);
    CHECK_STATUS(ff_segment_attach_at(dirfd, &key, 7, &config.host, &peer), FF_OK);
    ff_segment_close(peer);

    /* verify_own notices what would make a peer's attach fail */
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0 && pwrite(fd, "X", 1, 40) == 1); /* inside the key */
    CHECK_STATUS(ff_segment_verify_own(own), FF_ERR_CORRUPT);
    CHECK(pwrite(fd, &key.bytes[0], 1, 40) == 1 || true);
    close(fd);
    ff_segment_close(own);
    CHECK(stat(path, &st) != 0);
}

static void test_path_table_trust(const char *dir, int dirfd)
{
    static const char table[] = "freeflow-path-table 1\njob j1\nkey 8d2f0a4be61c9d7700112233445566ff\nhosts 1\n"
                                "host 0 h0\nranks 2\nrank 0 0 c0\nrank 1 0 c1\npaths\nsm\nms\nend\n";
    char path[4096], error[512];
    snprintf(path, sizeof(path), "%s/paths", dir);
    ff_path_table_t *t = NULL;
    CHECK_STATUS(ff_path_table_load_at(dirfd, "paths", &t, error, sizeof(error)), FF_ERR_NOT_FOUND);
    int fd = open(path, O_CREAT | O_WRONLY, 0400);
    CHECK(fd >= 0 && write(fd, table, sizeof(table) - 1) == (ssize_t) sizeof(table) - 1);
    close(fd);
    CHECK_STATUS(ff_path_table_load_at(dirfd, "paths", &t, error, sizeof(error)), FF_OK);
    ff_path_table_free(t);
    /* planted by nobody */
    CHECK(chown(path, NOBODY, NOBODY) == 0);
    CHECK_STATUS(ff_path_table_load_at(dirfd, "paths", &t, error, sizeof(error)), FF_ERR_UNTRUSTED);
    CHECK(strstr(error, "65534") != NULL);
    /* ours but writable by others */
    CHECK(chown(path, 0, 0) == 0 && chmod(path, 0666) == 0);
    CHECK_STATUS(ff_path_table_load_at(dirfd, "paths", &t, error, sizeof(error)), FF_ERR_UNTRUSTED);
    /* a symlink to a good table, and a fifo (must not block) */
    char real[4096];
    snprintf(real, sizeof(real), "%s/real-table", dir);
    CHECK(chmod(path, 0400) == 0 && rename(path, real) == 0 && symlink(real, path) == 0);
    CHECK_STATUS(ff_path_table_load_at(dirfd, "paths", &t, error, sizeof(error)), FF_ERR_UNTRUSTED);
    unlink(path);
    unlink(real);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK_STATUS(ff_path_table_load_at(dirfd, "paths", &t, error, sizeof(error)), FF_ERR_UNTRUSTED);
    unlink(path);
}

static void test_write_file(const char *dir, int dirfd)
{
    char target[4096], name[4096];
    snprintf(target, sizeof(target), "%s/precious", dir);
    int fd = open(target, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "precious\n", 9) == 9);
    close(fd);
    /* planted symlinks under the final name and every old-style temporary name */
    snprintf(name, sizeof(name), "%s/report.0", dir);
    CHECK(symlink(target, name) == 0);
    for (int pid = 2; pid <= 64; ++pid) {
        snprintf(name, sizeof(name), "%s/report.0.tmp.%d", dir, pid);
        CHECK(symlink(target, name) == 0);
    }
    CHECK_STATUS(ff_dir_write_file(dirfd, "report.0", "freeflow-report 1\n", 18), FF_OK);
    char buf[64] = {0};
    fd = open(target, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 9 && strcmp(buf, "precious\n") == 0);
    close(fd);
    struct stat st;
    snprintf(name, sizeof(name), "%s/report.0", dir);
    CHECK(lstat(name, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 && st.st_size == 18);
    for (int pid = 2; pid <= 64; ++pid) {
        snprintf(name, sizeof(name), "%s/report.0.tmp.%d", dir, pid);
        unlink(name);
    }
    unlink(target);
    snprintf(name, sizeof(name), "%s/report.0", dir);
    unlink(name);
    /* temporary names are random */
    char a[33], b[33];
    CHECK_STATUS(ff_random_name(a, sizeof(a)), FF_OK);
    CHECK_STATUS(ff_random_name(b, sizeof(b)), FF_OK);
    CHECK(strlen(a) == 32 && strcmp(a, b) != 0);
}

/* How the peer's segment is broken before the pair is decided. */
enum sabotage { SAB_NONE, SAB_CORRUPT, SAB_TRUNCATE, SAB_UNLINK, SAB_SYMLINK, SAB_FIFO, SAB_COUNT };
static const char *sabotage_name[] = {"none", "corrupt", "truncate", "unlink", "symlink", "fifo"};

static void sabotage(const char *path, enum sabotage how)
{
    char moved[4200];
    snprintf(moved, sizeof(moved), "%s.moved", path);
    switch (how) {
    case SAB_NONE: break;
    case SAB_CORRUPT: {
        int fd = open(path, O_RDWR);
        CHECK(fd >= 0 && pwrite(fd, "\xff\xff\xff\xff", 4, 0) == 4);
        close(fd);
        break;
    }
    case SAB_TRUNCATE: CHECK(truncate(path, 4096) == 0); break;
    case SAB_UNLINK: CHECK(unlink(path) == 0); break;
    case SAB_SYMLINK: CHECK(rename(path, moved) == 0 && symlink(moved, path) == 0); break;
    case SAB_FIFO: CHECK(unlink(path) == 0 && mkfifo(path, 0600) == 0); break;
    default: break;
    }
}

/* Two sides A (id 1) and B (id 2) in one process; B's segment is broken; each side decides in each
 * order. Both must reach the same verdict, and it is shm only when nothing was broken. */
static void test_verdicts(const char *dir, int dirfd)
{
    for (int how = SAB_NONE; how < SAB_COUNT; ++how) {
        for (int a_first = 0; a_first < 2; ++a_first) {
            ff_segment_config_t ca = config_for(dir, dirfd, 1), cb = config_for(dir, dirfd, 2);
            ff_segment_t *a = NULL, *b = NULL, *a_peer = NULL, *b_peer = NULL;
            CHECK_STATUS(ff_segment_create(&ca, &a), FF_OK);
            CHECK_STATUS(ff_segment_create(&cb, &b), FF_OK);
            char path_b[4096];
            seg_path(dir, 2, path_b);
            sabotage(path_b, (enum sabotage) how);
            ff_pair_decision_t da, db;
            ff_status_t sa, sb;
            if (a_first) {
                sa = ff_pair_decide(dirfd, a, &key, 2, &ca.host, &a_peer, &da);
                sb = ff_pair_decide(dirfd, b, &key, 1, &cb.host, &b_peer, &db);
            } else {
                sb = ff_pair_decide(dirfd, b, &key, 1, &cb.host, &b_peer, &db);
                sa = ff_pair_decide(dirfd, a, &key, 2, &ca.host, &a_peer, &da);
            }
            CHECK_STATUS(sa, FF_OK);
            CHECK_STATUS(sb, FF_OK);
            if (da.shm != db.shm || da.shm != (how == SAB_NONE) || da.published == db.published ||
                (!da.shm && strcmp(da.reason, db.reason) != 0)) {
                fprintf(stderr, "verdict %s, %s first: A %s (%s) B %s (%s)\n", sabotage_name[how], a_first ? "A" : "B",
                        da.shm ? "shm" : "not", da.reason, db.shm ? "shm" : "not", db.reason);
                ++check_failures;
            }
            CHECK((a_peer != NULL) == da.shm && (b_peer != NULL) == db.shm);
            /* the adopter removed the verdict file */
            char name[64], vpath[4200];
            ff_pair_verdict_name(&key, 1, 2, name, sizeof(name));
            snprintf(vpath, sizeof(vpath), "%s/%s", dir, name);
            struct stat st;
            CHECK(stat(vpath, &st) != 0);
            ff_segment_close(a_peer);
            ff_segment_close(b_peer);
            ff_segment_close(a);
            ff_segment_close(b);
            char moved[4200];
            snprintf(moved, sizeof(moved), "%s.moved", path_b);
            unlink(moved);
            unlink(path_b);
        }
    }

    /* The verdict said shm, then B's segment was broken before A adopted: A cannot honour it. */
    ff_segment_config_t ca = config_for(dir, dirfd, 1), cb = config_for(dir, dirfd, 2);
    ff_segment_t *a = NULL, *b = NULL, *a_peer = NULL, *b_peer = NULL;
    CHECK_STATUS(ff_segment_create(&ca, &a), FF_OK);
    CHECK_STATUS(ff_segment_create(&cb, &b), FF_OK);
    ff_pair_decision_t da, db;
    CHECK_STATUS(ff_pair_decide(dirfd, b, &key, 1, &cb.host, &b_peer, &db), FF_OK);
    CHECK(db.shm && db.published);
    char path_b[4096];
    seg_path(dir, 2, path_b);
    sabotage(path_b, SAB_CORRUPT);
    CHECK_STATUS(ff_pair_decide(dirfd, a, &key, 2, &ca.host, &a_peer, &da), FF_ERR_VERDICT_CONFLICT);
    CHECK(!da.shm && strcmp(da.reason, "segment-bad-magic") == 0);
    ff_segment_close(b_peer);
    ff_segment_close(a);
    ff_segment_close(b);

    /* A verdict file planted by another user is not trusted, and left for the other side to see too. */
    CHECK_STATUS(ff_segment_create(&ca, &a), FF_OK);
    CHECK_STATUS(ff_segment_create(&cb, &b), FF_OK);
    char name[64], vpath[4200];
    ff_pair_verdict_name(&key, 1, 2, name, sizeof(name));
    snprintf(vpath, sizeof(vpath), "%s/%s", dir, name);
    int fd = open(vpath, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0 && write(fd, "shm\n", 4) == 4);
    close(fd);
    CHECK(chown(vpath, NOBODY, NOBODY) == 0);
    a_peer = b_peer = NULL;
    CHECK_STATUS(ff_pair_decide(dirfd, a, &key, 2, &ca.host, &a_peer, &da), FF_OK);
    CHECK_STATUS(ff_pair_decide(dirfd, b, &key, 1, &cb.host, &b_peer, &db), FF_OK);
    CHECK(!da.shm && !db.shm && strcmp(da.reason, "untrusted-verdict") == 0 && !a_peer && !b_peer);
    unlink(vpath);
    ff_segment_close(a);
    ff_segment_close(b);
}

/* Both sides decide at the same moment (two processes), again and again: one publishes, the other
 * adopts, and they always agree; with the peer's segment broken, both decline. */
static void test_verdict_race(const char *dir, int dirfd)
{
    for (int i = 0; i < 60; ++i) {
        const bool broken = i % 3 == 2;
        ff_segment_config_t ca = config_for(dir, dirfd, 1), cb = config_for(dir, dirfd, 2);
        ff_segment_t *a = NULL, *b = NULL;
        CHECK_STATUS(ff_segment_create(&ca, &a), FF_OK);
        CHECK_STATUS(ff_segment_create(&cb, &b), FF_OK);
        if (broken) {
            char path_b[4096];
            seg_path(dir, 2, path_b);
            sabotage(path_b, SAB_CORRUPT);
        }
        pid_t child = fork();
        if (child == 0) {
            ff_segment_t *peer = NULL;
            ff_pair_decision_t d;
            ff_status_t st = ff_pair_decide(dirfd, b, &key, 1, &cb.host, &peer, &d);
            _exit(st != FF_OK ? 3 : d.shm ? (d.published ? 10 : 11) : (d.published ? 20 : 21));
        }
        ff_segment_t *peer = NULL;
        ff_pair_decision_t d;
        CHECK_STATUS(ff_pair_decide(dirfd, a, &key, 2, &ca.host, &peer, &d), FF_OK);
        int status = 0;
        CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status));
        const int code = WEXITSTATUS(status);
        const bool child_shm = code == 10 || code == 11, child_published = code == 10 || code == 20;
        if (code == 3 || child_shm != d.shm || child_published == d.published || d.shm == broken) {
            fprintf(stderr, "race %d: parent %s/%s, child code %d\n", i, d.shm ? "shm" : "not",
                    d.published ? "published" : "adopted", code);
            ++check_failures;
        }
        ff_segment_close(peer);
        /* the parent's copy of b: the child's close does not unlink it (it only had b's struct copy) */
        ff_segment_close(a);
        ff_segment_close(b);
        char name[64], vpath[4200];
        ff_pair_verdict_name(&key, 1, 2, name, sizeof(name));
        snprintf(vpath, sizeof(vpath), "%s/%s", dir, name);
        unlink(vpath);
    }
}

/* The owner's layout values are private: rewriting the shared header after create changes nothing the
 * owner computes (old code re-read rings_offset / ring_stride and crashed). */
static void test_private_copies(const char *dir, int dirfd)
{
    ff_segment_config_t config = config_for(dir, dirfd, 9);
    ff_segment_t *own = NULL, *producer_view = NULL;
    CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
    CHECK_STATUS(ff_segment_attach_at(dirfd, &key, 9, &config.host, &producer_view), FF_OK);
    uint32_t index = 0;
    CHECK_STATUS(ff_segment_ring_claim(producer_view, 77, &index), FF_OK);
    ff_ring_tx_t tx;
    CHECK_STATUS(ff_ring_tx_open(&tx, producer_view, index, 77), FF_OK);
    void *p = ff_ring_reserve(&tx, 100);
    CHECK(p != NULL);
    memset(p, 0x5a, 100);
    ff_ring_commit(&tx, p, 100, 100, 3);
    /* overwrite everything in the header after the fixed fields' start: sizes, offsets, counters */
    char path[4096];
    seg_path(dir, 9, path);
    int fd = open(path, O_RDWR);
    uint8_t junk[4096];
    memset(junk, 0xff, sizeof(junk));
    CHECK(fd >= 0 && pwrite(fd, junk + 16, 4096 - 16, 16) == 4096 - 16);
    close(fd);
    uint32_t cursor = 0, ring = 0;
    uint64_t producer = 0;
    CHECK(ff_segment_next_ring(own, &cursor, &producer, &ring) && producer == 77 && ring == index);
    CHECK(!ff_segment_next_ring(own, &cursor, &producer, &ring));
    ff_ring_rx_t rx;
    CHECK_STATUS(ff_ring_rx_open(&rx, own, ring), FF_OK);
    ff_ring_record_t record;
    CHECK(ff_ring_peek(&rx, &record) && record.len == 100 && record.tag == 3 && ((uint8_t *) record.data)[99] == 0x5a);
    ff_ring_consume(&rx);
    CHECK(ff_segment_owner_id(own) == 9);
    CHECK(ff_segment_bytes_in_use(own) == ff_segment_bytes_for(8192, 4));
    CHECK_STATUS(ff_segment_verify_own(own), FF_ERR_CORRUPT);
    /* a forged record header breaks the ring instead of steering the read */
    uint64_t forged = ff_ring_header_word(FF_RECORD_DATA, 1, 0x7fffffffu);
    atomic_store((_Atomic uint64_t *) (void *) (rx.data + (rx.pos & (rx.size - 1))), forged);
    CHECK(!ff_ring_peek(&rx, &record) && rx.broken && rx.bad_word == forged);
    /* a forged consumer position: the producer sees an impossible tail instead of waiting forever */
    atomic_store(rx.tail, (uint64_t) 1 << 40);
    CHECK(!tx.broken);
    for (int i = 0; i < 100 && ff_ring_reserve(&tx, 1000); ++i) {
    }
    CHECK(tx.broken);
    ff_segment_close(producer_view);
    ff_segment_close(own);
}

/* A live segment with a producer sending while a hostile process writes random bytes into the header,
 * the ring control blocks and the ring's record headers; the owner keeps polling. It must never crash:
 * a broken ring (an error for that peer) is fine. */
static void test_fuzz(const char *dir, int dirfd)
{
    for (int round = 0; round < 12; ++round) {
        ff_segment_config_t config = config_for(dir, dirfd, 100);
        config.max_rings = 2;
        ff_segment_t *own = NULL;
        CHECK_STATUS(ff_segment_create(&config, &own), FF_OK);
        char path[4096];
        seg_path(dir, 100, path);
        pid_t producer = fork();
        if (producer == 0) {
            ff_segment_t *peer = NULL;
            uint32_t index;
            if (ff_segment_attach_at(dirfd, &key, 100, &config.host, &peer) != FF_OK ||
                ff_segment_ring_claim(peer, 5, &index) != FF_OK) {
                _exit(0);
            }
            ff_ring_tx_t tx;
            if (ff_ring_tx_open(&tx, peer, index, 5) != FF_OK) {
                _exit(0);
            }
            for (uint32_t i = 0; i < 200000; ++i) {
                uint32_t len = (i * 2654435761u) % 2000;
                void *p = ff_ring_reserve(&tx, len);
                if (p) {
                    memset(p, (int) i, len);
                    ff_ring_commit(&tx, p, len, len, 1);
                }
            }
            _exit(0);
        }
        pid_t vandal = fork();
        if (vandal == 0) {
            int fd = open(path, O_RDWR);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) != 0) {
                _exit(0);
            }
            uint8_t *base = mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            unsigned seed = (unsigned) round * 7919u + 1;
            for (int i = 0; i < 20000; ++i) {
                uint32_t r[4];
                if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
                    r[0] = rand_r(&seed);
                    r[1] = rand_r(&seed);
                }
                size_t where;
                switch (r[0] % 4) {
                case 0: where = r[1] % 256; break;                                    /* header */
                case 1: where = 4096 + (r[1] % 2) * (8192 + 128) + r[2] % 128; break; /* control blocks */
                default: where = 4096 + 128 + ((r[1] % 8192) & ~7u); break;           /* record headers */
                }
                if (where + 8 <= (size_t) st.st_size) {
                    memcpy(base + where, &r[2], 8);
                }
                if (i % 64 == 0) {
                    struct timespec ts = {0, 20000};
                    nanosleep(&ts, NULL);
                }
            }
            _exit(0);
        }
        /* the owner polls in a child too, so a crash is seen as a signal, not as this test dying */
        pid_t owner = fork();
        if (owner == 0) {
            ff_ring_rx_t rx[2];
            bool open_ring[2] = {false, false};
            uint32_t cursor = 0;
            struct timespec now, end;
            clock_gettime(CLOCK_MONOTONIC, &end);
            end.tv_nsec += 400000000L;
            if (end.tv_nsec >= 1000000000L) {
                end.tv_sec += 1;
                end.tv_nsec -= 1000000000L;
            }
            for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec > end.tv_nsec)) {
                    break;
                }
                uint64_t who;
                uint32_t ring;
                while (ff_segment_next_ring(own, &cursor, &who, &ring)) {
                    if (ring < 2 && ff_ring_rx_open(&rx[ring], own, ring) == FF_OK) {
                        open_ring[ring] = true;
                    }
                }
                for (int r = 0; r < 2; ++r) {
                    ff_ring_record_t record;
                    while (open_ring[r] && !rx[r].broken && ff_ring_peek(&rx[r], &record)) {
                        volatile uint8_t sink = 0;
                        for (uint32_t k = 0; k < record.len; ++k) {
                            sink ^= ((uint8_t *) record.data)[k];
                        }
                        (void) sink;
                        ff_ring_consume(&rx[r]);
                    }
                }
                (void) ff_segment_bytes_in_use(own);
                (void) ff_segment_verify_own(own);
            }
            _exit(0);
        }
        int status = 0;
        CHECK(waitpid(owner, &status, 0) == owner);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "fuzz round %d: the owner died (%s)\n", round,
                    WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exit");
            ++check_failures;
        }
        kill(producer, SIGKILL);
        kill(vandal, SIGKILL);
        waitpid(producer, &status, 0);
        waitpid(vandal, &status, 0);
        ff_segment_close(own);
    }
}

int main(int argc, char **argv)
{
    if (geteuid() != 0) {
        printf("test_trust: needs root (chown to nobody)\n");
        return 77;
    }
    char *dir = scratch_dir_create();
    int dirfd = -1;
    CHECK_STATUS(ff_dir_open(dir, &dirfd, NULL, 0), FF_OK);
    const char *only = argc > 1 ? argv[1] : "";
    if (!*only || !strcmp(only, "dirs")) test_directories(dir);
    if (!*only || !strcmp(only, "segments")) test_segment_trust(dir, dirfd);
    if (!*only || !strcmp(only, "paths")) test_path_table_trust(dir, dirfd);
    if (!*only || !strcmp(only, "write")) test_write_file(dir, dirfd);
    if (!*only || !strcmp(only, "verdicts")) test_verdicts(dir, dirfd);
    if (!*only || !strcmp(only, "race")) test_verdict_race(dir, dirfd);
    if (!*only || !strcmp(only, "private")) test_private_copies(dir, dirfd);
    if (!*only || !strcmp(only, "fuzz")) test_fuzz(dir, dirfd);
    close(dirfd);
    scratch_dir_remove(dir);
    return check_exit_code("test_trust");
}
