/* Shared window memory: the owner's pages move into a file with their contents, another process writes
 * and reads them through a verified view, nothing outside the registration is reachable, forged or stale
 * files are refused, and unsharing makes the memory private again. */
#include "check.h"
#include "freeflow.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define OWNER 0x0000000700000003ULL
#define KEY   0x1234567890abcdefULL

static size_t page(void)
{
    return (size_t) sysconf(_SC_PAGESIZE);
}

/* In a child (another process, as the peer in another container): writes `byte` over the whole shared
 * range through a view, returns what it read first at `probe`. Exit status 0 on success. */
static int peer_write(int dirfd, uint32_t generation, uint64_t base, uint64_t len, unsigned char byte, uint64_t probe,
                      unsigned char expect_at_probe)
{
    pid_t pid = fork();
    if (pid == 0) {
        ff_window_view_t *view = NULL;
        if (ff_window_view_open(dirfd, OWNER, 5, generation, KEY, &view) != FF_OK) {
            _exit(10);
        }
        unsigned char *at_probe = ff_window_view_address(view, probe, 1);
        if (!at_probe || *at_probe != expect_at_probe) {
            _exit(11);
        }
        unsigned char *all = ff_window_view_address(view, base, len);
        if (!all) {
            _exit(12);
        }
        memset(all, byte, len);
        ff_window_view_close(view);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static void test_share_and_unshare(int dirfd)
{
    const size_t pg = page();
    const size_t len = 64 * pg + 123;
    /* unaligned on purpose: the bytes before the first and after the last whole page must stay private */
    unsigned char *block = mmap(NULL, len + 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(block != MAP_FAILED);
    unsigned char *base = block + 100;
    for (size_t i = 0; i < len; ++i) {
        base[i] = (unsigned char) (i * 7);
    }
    ff_window_t *window = NULL;
    CHECK_STATUS(ff_window_share(dirfd, OWNER, 5, 9, KEY, base, len, 0, &window), FF_OK);
    if (!window) {
        return;
    }
    const uintptr_t lo = ff_window_base(window);
    const size_t shared = ff_window_len(window);
    CHECK(lo == (uintptr_t) block + pg);
    CHECK(lo + shared <= (uintptr_t) base + len && (uintptr_t) base + len - (lo + shared) < pg);
    bool same = true;
    for (size_t i = 0; i < len; ++i) {
        same = same && base[i] == (unsigned char) (i * 7);
    }
    CHECK(same); /* contents survive the move */

    /* another process writes through its view; we see it in our own memory at the same addresses */
    CHECK(0 == peer_write(dirfd, 9, lo, shared, 0xa5, lo + 5, (unsigned char) ((lo + 5 - (uintptr_t) base) * 7)));
    bool written = true;
    for (size_t i = 0; i < shared; ++i) {
        written = written && ((unsigned char *) lo)[i] == 0xa5;
    }
    CHECK(written);
    CHECK(base[0] == 0 && base[len - 1] == (unsigned char) ((len - 1) * 7)); /* edges untouched */

    ff_window_view_t *view = NULL;
    CHECK_STATUS(ff_window_view_open(dirfd, OWNER, 5, 9, KEY, &view), FF_OK);
    if (view) {
        /* nothing outside the shared range, however the range is expressed */
        CHECK(ff_window_view_address(view, lo - 1, 1) == NULL);
        CHECK(ff_window_view_address(view, lo, shared + 1) == NULL);
        CHECK(ff_window_view_address(view, lo + shared, 1) == NULL);
        CHECK(ff_window_view_address(view, lo + 8, SIZE_MAX) == NULL);
        CHECK(ff_window_view_address(view, UINT64_MAX, 2) == NULL);
        CHECK(ff_window_view_address(view, lo + shared - 8, 8) != NULL);
        CHECK(!ff_window_view_revoked(view));
    }
    /* the wrong key, generation or owner is refused */
    ff_window_view_t *other = NULL;
    CHECK_STATUS(ff_window_view_open(dirfd, OWNER, 5, 9, KEY + 1, &other), FF_ERR_FOREIGN_JOB);
    CHECK_STATUS(ff_window_view_open(dirfd, OWNER, 5, 10, KEY, &other), FF_ERR_NOT_FOUND);
    CHECK(other == NULL);
    /* the name is taken: a second share of the same slot keeps its memory private */
    unsigned char *second = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ff_window_t *dup = NULL;
    CHECK_STATUS(ff_window_share(dirfd, OWNER, 5, 9, KEY, second, 4 * pg, 0, &dup), FF_ERR_UNTRUSTED);
    munmap(second, 4 * pg);

    ff_window_unshare(window);
    char name[96];
    ff_window_name(OWNER, 5, 9, name, sizeof(name));
    struct stat st;
    CHECK(fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0); /* unlinked */
    if (view) {
        CHECK(ff_window_view_revoked(view));
        /* a peer holding a stale view no longer reaches our memory */
        unsigned char *stale = ff_window_view_address(view, lo, 1);
        *stale = 0x11;
        CHECK(((unsigned char *) lo)[0] == 0xa5);
        ff_window_view_close(view);
    }
    CHECK(((unsigned char *) lo)[shared - 1] == 0xa5); /* contents kept */
    ((unsigned char *) lo)[0] = 0x22;                  /* and still writable */
    CHECK(((unsigned char *) lo)[0] == 0x22);
    munmap(block, len + 2 * pg);
}

static void test_refusals(int dirfd, const char *dir)
{
    const size_t pg = page();
    ff_window_t *window = NULL;
    /* less than a whole page, or below the caller's minimum */
    unsigned char *small = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_STATUS(ff_window_share(dirfd, OWNER, 6, 0, KEY, small + 1, pg, 0, &window), FF_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ff_window_share(dirfd, OWNER, 6, 0, KEY, small, 4 * pg, 8 * pg, &window), FF_ERR_INVALID_ARGUMENT);
    munmap(small, 8 * pg);
    /* a file mapping is not ours to move */
    char path[4096];
    snprintf(path, sizeof(path), "%s/user-file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t) (4 * pg)) == 0);
    void *file_map = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK_STATUS(ff_window_share(dirfd, OWNER, 6, 0, KEY, file_map, 4 * pg, 0, &window), FF_ERR_UNTRUSTED);
    munmap(file_map, 4 * pg);
    close(fd);
    unlink(path);
    CHECK(window == NULL);

    /* planted files under a window's name */
    char name[96];
    ff_window_name(OWNER, 7, 0, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ff_window_view_t *view = NULL;
    CHECK(symlink("/etc/passwd", path) == 0);
    CHECK_STATUS(ff_window_view_open(dirfd, OWNER, 7, 0, KEY, &view), FF_ERR_UNTRUSTED);
    unlink(path);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644); /* readable by others: not ours */
    CHECK(fd >= 0 && ftruncate(fd, (off_t) (4 * pg)) == 0);
    fchmod(fd, 0644);
    CHECK_STATUS(ff_window_view_open(dirfd, OWNER, 7, 0, KEY, &view), FF_ERR_UNTRUSTED);
    fchmod(fd, 0600);
    CHECK_STATUS(ff_window_view_open(dirfd, OWNER, 7, 0, KEY, &view), FF_ERR_BAD_MAGIC);
    close(fd);
    unlink(path);

    /* a genuine header whose range claims more than the file holds */
    unsigned char *memory = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_STATUS(ff_window_share(dirfd, OWNER, 7, 0, KEY, memory, 4 * pg, 0, &window), FF_OK);
    fd = open(path, O_RDWR);
    uint64_t huge = 1ULL << 40;
    CHECK(fd >= 0 && pwrite(fd, &huge, sizeof(huge), 48) == (ssize_t) sizeof(huge)); /* header.len */
    close(fd);
    CHECK_STATUS(ff_window_view_open(dirfd, OWNER, 7, 0, KEY, &view), FF_ERR_CORRUPT);
    CHECK(view == NULL);
    ff_window_unshare(window);
    munmap(memory, 4 * pg);
}

int main(void)
{
    char *dir = scratch_dir_create();
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(dirfd >= 0);
    test_share_and_unshare(dirfd);
    test_refusals(dirfd, dir);
    close(dirfd);
    scratch_dir_remove(dir);
    return check_exit_code("test_window");
}
