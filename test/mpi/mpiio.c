/*
 * ffcheck_mpiio: MPI-IO on a directory every rank sees (issue 9: "MPI-IO on a shared volume across
 * containers and hosts"), every byte checked. The directory is --dir, else $FFRUN_SCRATCH (ffrun
 * --scratch). Run it once per io component (`--mca io ompio`, `--mca io romio321`); --expect-io checks
 * that the one asked for is the one that served the files.
 *
 * open_delete      open (create, exclusive), write_at by the last rank, close; every rank reads the file
 *                  with plain POSIX I/O (the same bytes on every host), a second exclusive create fails,
 *                  MPI_File_delete removes it for every rank.
 * independent      write_at and seek + write (individual file pointer) of interleaved chunks; every rank
 *                  reads its neighbour's with read_at; a read past the end returns 0 bytes.
 * collective_view  a file view of a derived datatype (vector of blocks strided by the rank count, resized),
 *                  write_at_all through it; read_all through the neighbour's view; read_at_all of the whole
 *                  file with the default view.
 * nonblocking      iwrite_at / iread_at (many in flight, MPI_Waitall), iwrite_at_all / iread_at_all.
 * shared_pointer   write_shared (records of different lengths, any order: each exactly once), then
 *                  seek_shared + write_ordered (rank order), read_ordered, get_position_shared.
 * size_sync        set_size (grow: zeros; shrink), get_size on every rank, sync, and the
 *                  size every rank sees with stat().
 * Every subtest deletes its file; at the end no file of the run may be left in the directory.
 */
#include "ffcheck.h"
#include "ffcheck_internal.h" /* ff_subtest_selected: main runs the subtests itself, after checking the directory */

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_LEN 512
/* Chunks each rank writes per subtest. */
#define CHUNKS 3

static const char *dir_option = NULL;
static size_t block = 65536 + 13; /* odd on purpose: no chunk is aligned to anything */
static const char *expect_io = NULL;
/* ROMIO 3.2.1 in Open MPI 4.1 has no nonblocking collective I/O: MPI_File_iwrite_at_all calls a NULL
 * function pointer (open-mpi/ompi#4520). Runs with --mca io romio321 skip those two calls. */
static bool skip_nonblocking_collective = false;

static char base[PATH_LEN]; /* <dir>/ffcheck_mpiio-<pid of rank 0>, the same on every rank */

enum { TAG_OPEN = 1, TAG_INDEP, TAG_COLL, TAG_NB, TAG_NB_COLL, TAG_SHARED, TAG_ORDERED };

/* ff_fail with MPI's own error text unless rc is MPI_SUCCESS. */
static bool mpi_ok(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return true;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0, class = 0;
    MPI_Error_string(rc, text, &len);
    MPI_Error_class(rc, &class);
    ff_fail("%s failed: %s (error class %d)", what, text, class);
    return false;
}

static void file_name(char *out, const char *what)
{
    snprintf(out, PATH_LEN, "%.400s-%.40s", base, what);
}

/* Bytes a read or write moved, checked against what was asked. */
static bool moved(const MPI_Status *st, size_t expected, const char *what)
{
    int count = -1;
    MPI_Get_count(st, MPI_BYTE, &count);
    return ff_expect(count == (int) expected, "%s moved %d bytes, expected %zu", what, count, expected);
}

static ff_msg chunk_msg(int owner, int tag, int chunk)
{
    return (ff_msg){owner, 0, tag, (uint64_t) chunk};
}

/* The MPI consistency recipe for data written by one rank and read by another (MPI-3.1 13.6.10). */
static void sync_barrier_sync(MPI_File fh)
{
    mpi_ok(MPI_File_sync(fh), "MPI_File_sync");
    MPI_Barrier(MPI_COMM_WORLD);
    mpi_ok(MPI_File_sync(fh), "MPI_File_sync");
}

static bool open_file(const char *path, int amode, MPI_File *fh)
{
    char what[PATH_LEN + 32];
    snprintf(what, sizeof what, "MPI_File_open(%s)", path);
    return mpi_ok(MPI_File_open(MPI_COMM_WORLD, path, amode, MPI_INFO_NULL, fh), what);
}

static void close_and_delete(MPI_File *fh, const char *path)
{
    mpi_ok(MPI_File_close(fh), "MPI_File_close");
    MPI_Barrier(MPI_COMM_WORLD);
    if (ff.rank == 0) mpi_ok(MPI_File_delete(path, MPI_INFO_NULL), "MPI_File_delete");
    MPI_Barrier(MPI_COMM_WORLD);
}

static void test_open_delete(void)
{
    char path[PATH_LEN];
    file_name(path, "open");
    unsigned char *buf = ff_xmalloc(block);
    MPI_File fh;
    if (!open_file(path, MPI_MODE_CREATE | MPI_MODE_EXCL | MPI_MODE_WRONLY, &fh)) goto out;
    int writer = ff.size - 1;
    if (ff.rank == writer) {
        ff_fill_msg(buf, block, chunk_msg(writer, TAG_OPEN, 0));
        MPI_Status st;
        if (mpi_ok(MPI_File_write_at(fh, 0, buf, (int) block, MPI_BYTE, &st), "MPI_File_write_at"))
            moved(&st, block, "write_at");
    }
    mpi_ok(MPI_File_close(&fh), "MPI_File_close");
    MPI_Barrier(MPI_COMM_WORLD);

    /* Plain POSIX on every rank: the file is the same file on every host. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (ff_expect(fd >= 0, "open(%s) with POSIX after MPI_File_close: %s", path, strerror(errno))) {
        struct stat sb;
        ff_expect(fstat(fd, &sb) == 0 && sb.st_size == (off_t) block, "%s has %lld bytes, expected %zu", path,
                  (long long) sb.st_size, block);
        memset(buf, FF_POISON, block);
        ssize_t got = pread(fd, buf, block, 0);
        if (ff_expect(got == (ssize_t) block, "pread of %s returned %zd", path, got))
            ff_check_msg(buf, block, chunk_msg(writer, TAG_OPEN, 0));
        close(fd);
    }

    /* A second exclusive create must fail on every rank. */
    MPI_File again = MPI_FILE_NULL;
    int rc =
        MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_EXCL | MPI_MODE_WRONLY, MPI_INFO_NULL, &again);
    int class = MPI_SUCCESS;
    MPI_Error_class(rc, &class);
    if (!ff_expect(rc != MPI_SUCCESS, "a second MPI_MODE_EXCL create of %s succeeded", path))
        MPI_File_close(&again);
    else
        ff_expect(class == MPI_ERR_FILE_EXISTS || class == MPI_ERR_IO || class == MPI_ERR_FILE,
                  "a second MPI_MODE_EXCL create failed with error class %d, not MPI_ERR_FILE_EXISTS", class);

    if (ff.rank == 0) mpi_ok(MPI_File_delete(path, MPI_INFO_NULL), "MPI_File_delete");
    MPI_Barrier(MPI_COMM_WORLD);
    struct stat sb;
    ff_expect(stat(path, &sb) != 0 && errno == ENOENT, "%s still exists for rank %d after MPI_File_delete", path,
              ff.rank);
    rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &again);
    MPI_Error_class(rc, &class);
    if (!ff_expect(rc != MPI_SUCCESS, "MPI_File_open of deleted %s succeeded", path))
        MPI_File_close(&again);
    else
        ff_expect(class == MPI_ERR_NO_SUCH_FILE,
                  "opening the deleted file failed with class %d, not MPI_ERR_NO_SUCH_FILE", class);
    ff_note("%zu B written by rank %d, read by every rank with POSIX", block, writer);
out:
    free(buf);
}

/* Chunk j of rank r sits at (j * size + r) * block: ranks interleave. */
static MPI_Offset chunk_offset(int owner, int chunk)
{
    return ((MPI_Offset) chunk * ff.size + owner) * (MPI_Offset) block;
}

static void test_independent(void)
{
    char path[PATH_LEN];
    file_name(path, "independent");
    unsigned char *buf = ff_xmalloc(block);
    MPI_File fh;
    if (!open_file(path, MPI_MODE_CREATE | MPI_MODE_RDWR, &fh)) goto out;
    for (int j = 0; j < CHUNKS; j++) {
        ff_fill_msg(buf, block, chunk_msg(ff.rank, TAG_INDEP, j));
        MPI_Status st;
        if (j % 2 == 0) {
            if (mpi_ok(MPI_File_write_at(fh, chunk_offset(ff.rank, j), buf, (int) block, MPI_BYTE, &st),
                       "MPI_File_write_at"))
                moved(&st, block, "write_at");
        } else if (mpi_ok(MPI_File_seek(fh, chunk_offset(ff.rank, j), MPI_SEEK_SET), "MPI_File_seek") &&
                   mpi_ok(MPI_File_write(fh, buf, (int) block, MPI_BYTE, &st), "MPI_File_write")) {
            moved(&st, block, "write");
        }
    }
    sync_barrier_sync(fh);
    int peer = ff_peer_to(1);
    for (int j = 0; j < CHUNKS; j++) {
        memset(buf, FF_POISON, block);
        MPI_Status st;
        ff_context("chunk %d of rank %d", j, peer);
        if (mpi_ok(MPI_File_read_at(fh, chunk_offset(peer, j), buf, (int) block, MPI_BYTE, &st), "MPI_File_read_at") &&
            moved(&st, block, "read_at"))
            ff_check_msg(buf, block, chunk_msg(peer, TAG_INDEP, j));
    }
    ff_context(NULL);
    MPI_Status st;
    MPI_Offset end = chunk_offset(0, CHUNKS);
    if (mpi_ok(MPI_File_read_at(fh, end, buf, (int) block, MPI_BYTE, &st), "MPI_File_read_at past the end"))
        moved(&st, 0, "read_at past the end");
    close_and_delete(&fh, path);
    ff_note("%d chunks of %zu B per rank", CHUNKS, block);
out:
    free(buf);
}

/* Rank `owner`'s view: blocks of `block` bytes, one in every ff.size, starting at its own. */
static bool set_rank_view(MPI_File fh, int owner, MPI_Datatype *filetype)
{
    MPI_Datatype vector;
    MPI_Type_vector(CHUNKS, (int) block, (int) block * ff.size, MPI_BYTE, &vector);
    MPI_Type_create_resized(vector, 0, (MPI_Aint) chunk_offset(0, CHUNKS), filetype);
    MPI_Type_free(&vector);
    MPI_Type_commit(filetype);
    return mpi_ok(
        MPI_File_set_view(fh, (MPI_Offset) owner * (MPI_Offset) block, MPI_BYTE, *filetype, "native", MPI_INFO_NULL),
        "MPI_File_set_view");
}

static void test_collective_view(void)
{
    char path[PATH_LEN];
    file_name(path, "collective");
    size_t mine = CHUNKS * block, total = mine * (size_t) ff.size;
    unsigned char *buf = ff_xmalloc(total);
    MPI_File fh;
    MPI_Datatype filetype = MPI_DATATYPE_NULL;
    if (!open_file(path, MPI_MODE_CREATE | MPI_MODE_RDWR, &fh)) goto out;
    for (int j = 0; j < CHUNKS; j++) ff_fill_msg(buf + (size_t) j * block, block, chunk_msg(ff.rank, TAG_COLL, j));
    MPI_Status st;
    if (set_rank_view(fh, ff.rank, &filetype) &&
        mpi_ok(MPI_File_write_at_all(fh, 0, buf, (int) mine, MPI_BYTE, &st), "MPI_File_write_at_all"))
        moved(&st, mine, "write_at_all");
    MPI_Type_free(&filetype);
    sync_barrier_sync(fh);

    /* The neighbour's blocks through its view, with the individual file pointer. */
    int peer = ff_peer_from(1);
    memset(buf, FF_POISON, mine);
    if (set_rank_view(fh, peer, &filetype) &&
        mpi_ok(MPI_File_read_all(fh, buf, (int) mine, MPI_BYTE, &st), "MPI_File_read_all") &&
        moved(&st, mine, "read_all")) {
        for (int j = 0; j < CHUNKS; j++) {
            ff_context("read_all through rank %d's view, block %d", peer, j);
            ff_check_msg(buf + (size_t) j * block, block, chunk_msg(peer, TAG_COLL, j));
        }
    }
    MPI_Type_free(&filetype);

    /* The whole file, contiguously: every rank's blocks where its view put them. */
    MPI_Offset size = -1;
    mpi_ok(MPI_File_get_size(fh, &size), "MPI_File_get_size");
    ff_expect(size == (MPI_Offset) total, "file size %lld, expected %zu", (long long) size, total);
    memset(buf, FF_POISON, total);
    if (mpi_ok(MPI_File_set_view(fh, 0, MPI_BYTE, MPI_BYTE, "native", MPI_INFO_NULL), "MPI_File_set_view (default)") &&
        mpi_ok(MPI_File_read_at_all(fh, 0, buf, (int) total, MPI_BYTE, &st), "MPI_File_read_at_all") &&
        moved(&st, total, "read_at_all")) {
        for (int j = 0; j < CHUNKS; j++)
            for (int r = 0; r < ff.size; r++) {
                ff_context("whole file, block %d of rank %d", j, r);
                ff_check_msg(buf + chunk_offset(r, j), block, chunk_msg(r, TAG_COLL, j));
            }
    }
    ff_context(NULL);
    close_and_delete(&fh, path);
    ff_note("vector(%d x %zu B, stride %d blocks) view, %zu B in all", CHUNKS, block, ff.size, total);
out:
    free(buf);
}

static void test_nonblocking(void)
{
    char path[PATH_LEN];
    file_name(path, "nonblocking");
    unsigned char *buf = ff_xmalloc(CHUNKS * block);
    MPI_Request requests[CHUNKS];
    MPI_Status statuses[CHUNKS];
    MPI_File fh;
    if (!open_file(path, MPI_MODE_CREATE | MPI_MODE_RDWR, &fh)) goto out;
    bool posted = true;
    for (int j = 0; j < CHUNKS; j++) {
        ff_fill_msg(buf + (size_t) j * block, block, chunk_msg(ff.rank, TAG_NB, j));
        requests[j] = MPI_REQUEST_NULL;
        posted &= mpi_ok(MPI_File_iwrite_at(fh, chunk_offset(ff.rank, j), buf + (size_t) j * block, (int) block,
                                            MPI_BYTE, &requests[j]),
                         "MPI_File_iwrite_at");
    }
    if (mpi_ok(MPI_Waitall(CHUNKS, requests, statuses), "MPI_Waitall (iwrite_at)") && posted)
        for (int j = 0; j < CHUNKS; j++) moved(&statuses[j], block, "iwrite_at");
    sync_barrier_sync(fh);
    int peer = ff_peer_from(1);
    memset(buf, FF_POISON, CHUNKS * block);
    posted = true;
    for (int j = 0; j < CHUNKS; j++) {
        requests[j] = MPI_REQUEST_NULL;
        posted &= mpi_ok(
            MPI_File_iread_at(fh, chunk_offset(peer, j), buf + (size_t) j * block, (int) block, MPI_BYTE, &requests[j]),
            "MPI_File_iread_at");
    }
    if (mpi_ok(MPI_Waitall(CHUNKS, requests, statuses), "MPI_Waitall (iread_at)") && posted)
        for (int j = 0; j < CHUNKS; j++) {
            ff_context("iread_at, chunk %d of rank %d", j, peer);
            if (moved(&statuses[j], block, "iread_at"))
                ff_check_msg(buf + (size_t) j * block, block, chunk_msg(peer, TAG_NB, j));
        }
    ff_context(NULL);

    if (skip_nonblocking_collective) {
        close_and_delete(&fh, path);
        ff_note("%d iwrite_at + %d iread_at in flight per rank (no iwrite_at_all / iread_at_all: "
                "--skip-nonblocking-collective)",
                CHUNKS, CHUNKS);
        goto out;
    }
    /* Nonblocking collectives (MPI-3.1): one more chunk per rank after the others. */
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Status st;
    ff_fill_msg(buf, block, chunk_msg(ff.rank, TAG_NB_COLL, 0));
    if (mpi_ok(MPI_File_iwrite_at_all(fh, chunk_offset(ff.rank, CHUNKS), buf, (int) block, MPI_BYTE, &request),
               "MPI_File_iwrite_at_all") &&
        mpi_ok(MPI_Wait(&request, &st), "MPI_Wait (iwrite_at_all)"))
        moved(&st, block, "iwrite_at_all");
    sync_barrier_sync(fh);
    memset(buf, FF_POISON, block);
    if (mpi_ok(MPI_File_iread_at_all(fh, chunk_offset(peer, CHUNKS), buf, (int) block, MPI_BYTE, &request),
               "MPI_File_iread_at_all") &&
        mpi_ok(MPI_Wait(&request, &st), "MPI_Wait (iread_at_all)") && moved(&st, block, "iread_at_all")) {
        ff_context("iread_at_all of rank %d", peer);
        ff_check_msg(buf, block, chunk_msg(peer, TAG_NB_COLL, 0));
        ff_context(NULL);
    }
    close_and_delete(&fh, path);
    ff_note("%d iwrite_at + %d iread_at in flight per rank, iwrite_at_all + iread_at_all", CHUNKS, CHUNKS);
out:
    free(buf);
}

/* Rank r's shared-pointer record: a 4-byte rank number, then a pattern; lengths differ per rank. */
static size_t record_len(int r)
{
    return 1000 + 517 * (size_t) r;
}

static void fill_record(unsigned char *p, int r, int tag)
{
    uint32_t id = (uint32_t) r;
    memcpy(p, &id, sizeof id);
    ff_fill_msg(p + sizeof id, record_len(r) - sizeof id, chunk_msg(r, tag, 0));
}

/* Checks that the file holds every rank's record exactly once; in rank order when `ordered`. */
static void check_records(const unsigned char *file, size_t total, int tag, bool ordered)
{
    bool *seen = ff_xmalloc((size_t) ff.size);
    memset(seen, 0, (size_t) ff.size);
    size_t pos = 0;
    for (int i = 0; i < ff.size && pos < total; i++) {
        uint32_t id;
        memcpy(&id, file + pos, sizeof id);
        int expected = ordered ? i : (int) id;
        if (!ff_expect(id < (uint32_t) ff.size && !seen[id] && (int) id == expected,
                       "record %d at offset %zu is from rank %u (%s)", i, pos, id,
                       id >= (uint32_t) ff.size ? "no such rank"
                       : seen[id]               ? "seen twice"
                                                : "out of rank order"))
            break;
        seen[id] = true;
        if (pos + record_len((int) id) > total) {
            ff_fail("record of rank %u at offset %zu runs past the end (%zu B)", id, pos, total);
            break;
        }
        ff_context("%s record of rank %u at offset %zu", ordered ? "write_ordered" : "write_shared", id, pos);
        ff_check_msg((void *) (file + pos + sizeof id), record_len((int) id) - sizeof id, chunk_msg((int) id, tag, 0));
        pos += record_len((int) id);
    }
    ff_context(NULL);
    ff_expect(pos == total, "records end at offset %zu of %zu", pos, total);
    free(seen);
}

/* After every rank's write_shared or write_ordered of its record: the shared pointer stands at the end, and
 * the file holds each record once (in rank order for write_ordered). */
static void check_shared_writes(MPI_File fh, unsigned char *file, size_t total, int tag, bool ordered)
{
    MPI_Offset position = -1;
    MPI_Status st;
    sync_barrier_sync(fh);
    mpi_ok(MPI_File_get_position_shared(fh, &position), "MPI_File_get_position_shared");
    ff_expect(position == (MPI_Offset) total, "shared file pointer at %lld after %s, expected %zu",
              (long long) position, ordered ? "write_ordered" : "write_shared", total);
    memset(file, FF_POISON, total);
    if (mpi_ok(MPI_File_read_at(fh, 0, file, (int) total, MPI_BYTE, &st), "MPI_File_read_at") &&
        moved(&st, total, "read_at"))
        check_records(file, total, tag, ordered);
}

static void test_shared_pointer(void)
{
    char path[PATH_LEN];
    file_name(path, "shared");
    size_t total = 0;
    for (int r = 0; r < ff.size; r++) total += record_len(r);
    unsigned char *mine = ff_xmalloc(record_len(ff.rank));
    unsigned char *file = ff_xmalloc(total);
    MPI_File fh;
    MPI_Status st;
    if (!open_file(path, MPI_MODE_CREATE | MPI_MODE_RDWR, &fh)) goto out;

    fill_record(mine, ff.rank, TAG_SHARED);
    if (mpi_ok(MPI_File_write_shared(fh, mine, (int) record_len(ff.rank), MPI_BYTE, &st), "MPI_File_write_shared"))
        moved(&st, record_len(ff.rank), "write_shared");
    check_shared_writes(fh, file, total, TAG_SHARED, false);

    /* Back to the start (collective), then the same records in rank order. */
    MPI_Barrier(MPI_COMM_WORLD);
    if (mpi_ok(MPI_File_seek_shared(fh, 0, MPI_SEEK_SET), "MPI_File_seek_shared")) {
        fill_record(mine, ff.rank, TAG_ORDERED);
        if (mpi_ok(MPI_File_write_ordered(fh, mine, (int) record_len(ff.rank), MPI_BYTE, &st),
                   "MPI_File_write_ordered"))
            moved(&st, record_len(ff.rank), "write_ordered");
    }
    check_shared_writes(fh, file, total, TAG_ORDERED, true);

    /* read_ordered from the start: each rank gets its own record back. Collective calls do not
     * synchronise: without the barrier rank 0 may reset the pointer while another still reads it. */
    memset(mine, FF_POISON, record_len(ff.rank));
    MPI_Barrier(MPI_COMM_WORLD);
    if (mpi_ok(MPI_File_seek_shared(fh, 0, MPI_SEEK_SET), "MPI_File_seek_shared") &&
        mpi_ok(MPI_File_read_ordered(fh, mine, (int) record_len(ff.rank), MPI_BYTE, &st), "MPI_File_read_ordered") &&
        moved(&st, record_len(ff.rank), "read_ordered")) {
        uint32_t id;
        memcpy(&id, mine, sizeof id);
        ff_context("read_ordered");
        if (ff_expect(id == (uint32_t) ff.rank, "read_ordered gave rank %d the record of rank %u", ff.rank, id))
            ff_check_msg(mine + sizeof id, record_len(ff.rank) - sizeof id, chunk_msg(ff.rank, TAG_ORDERED, 0));
        ff_context(NULL);
    }
    close_and_delete(&fh, path);
    ff_note("%d records, %zu B, any order then rank order", ff.size, total);
out:
    free(mine);
    free(file);
}

static void expect_sizes(MPI_File fh, const char *path, MPI_Offset expected, const char *when)
{
    MPI_Offset size = -1;
    mpi_ok(MPI_File_get_size(fh, &size), "MPI_File_get_size");
    ff_expect(size == expected, "MPI_File_get_size %s: %lld, expected %lld", when, (long long) size,
              (long long) expected);
    struct stat sb;
    if (ff_expect(stat(path, &sb) == 0, "stat(%s) %s: %s", path, when, strerror(errno)))
        ff_expect(sb.st_size == expected, "stat(%s) %s: %lld bytes, expected %lld", path, when, (long long) sb.st_size,
                  (long long) expected);
}

static void test_size_sync(void)
{
    char path[PATH_LEN];
    file_name(path, "size");
    MPI_Offset grown = (MPI_Offset) (3 * block + 5), shrunk = (MPI_Offset) (block / 2);
    unsigned char *buf = ff_xmalloc((size_t) grown);
    MPI_File fh;
    MPI_Status st;
    if (!open_file(path, MPI_MODE_CREATE | MPI_MODE_RDWR, &fh)) goto out;
    mpi_ok(MPI_File_set_size(fh, grown), "MPI_File_set_size (grow)");
    sync_barrier_sync(fh);
    expect_sizes(fh, path, grown, "after set_size");
    /* What set_size added reads as zeros. */
    memset(buf, FF_POISON, (size_t) grown);
    if (mpi_ok(MPI_File_read_at(fh, 0, buf, (int) grown, MPI_BYTE, &st), "MPI_File_read_at") &&
        moved(&st, (size_t) grown, "read_at")) {
        ff_maybe_inject(buf, (size_t) grown);
        size_t nonzero = 0;
        for (MPI_Offset i = 0; i < grown; i++) nonzero += buf[i] != 0;
        ff_expect(nonzero == 0, "%zu of %lld bytes after set_size are not zero", nonzero, (long long) grown);
    }
    /* No MPI_File_preallocate: with ompio (Open MPI 4.1.4) the next set_size fails now and then on the ranks
     * other than 0 ("tmp != size": they get a broadcast of another call) and the job hangs; bare host too. */
    /* set_size does not synchronise either (ompio truncates after a bcast from rank 0): others may still read. */
    MPI_Barrier(MPI_COMM_WORLD);
    mpi_ok(MPI_File_set_size(fh, shrunk), "MPI_File_set_size (shrink)");
    sync_barrier_sync(fh);
    expect_sizes(fh, path, shrunk, "after shrinking");
    close_and_delete(&fh, path);
    ff_note("grown to %lld B, shrunk to %lld B", (long long) grown, (long long) shrunk);
out:
    free(buf);
}

/* Which io components are loaded once a file is open (`--mca io X` loads only X; ompio's info hints are
 * empty in Open MPI 4.1, as are ROMIO's, so the mapped plugins are what tells them apart). */
static void test_component(void)
{
    char path[PATH_LEN];
    file_name(path, "component");
    MPI_File fh;
    if (!open_file(path, MPI_MODE_CREATE | MPI_MODE_RDWR | MPI_MODE_DELETE_ON_CLOSE, &fh)) return;
    char loaded[128] = "";
    FILE *maps = fopen("/proc/self/maps", "r");
    if (ff_expect(maps != NULL, "cannot read /proc/self/maps: %s", strerror(errno))) {
        char line[1024];
        while (fgets(line, sizeof line, maps)) {
            const char *plugin = strstr(line, "/mca_io_");
            if (!plugin || !strstr(line, " r-xp ")) continue;
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int) strcspn(plugin + 8, ".\n"), plugin + 8);
            if (!strstr(loaded, name) && strlen(loaded) + strlen(name) + 2 < sizeof loaded)
                snprintf(loaded + strlen(loaded), sizeof loaded - strlen(loaded), "%s%s", loaded[0] ? "," : "", name);
        }
        fclose(maps);
    }
    mpi_ok(MPI_File_close(&fh), "MPI_File_close");
    if (expect_io)
        ff_expect(strcmp(expect_io, loaded) == 0, "--expect-io %s, but the io components loaded are: %s", expect_io,
                  loaded[0] ? loaded : "none");
    ff_note("io components loaded: %s", loaded[0] ? loaded : "none (built into libmpi?)");
}

static void test_leftovers(void)
{
    /* Every subtest deleted its file; the shared-pointer helpers of ompio and ROMIO must be gone too. */
    MPI_Barrier(MPI_COMM_WORLD);
    const char *name = strrchr(base, '/') + 1;
    char dir[PATH_LEN];
    snprintf(dir, sizeof dir, "%.*s", (int) (name - base), base);
    DIR *d = opendir(dir);
    if (!ff_expect(d != NULL, "cannot list %s: %s", dir, strerror(errno))) return;
    for (struct dirent *e; (e = readdir(d));)
        ff_expect(strncmp(e->d_name, name, strlen(name)) != 0, "%s%s is left in the directory", dir, e->d_name);
    closedir(d);
}

static const ff_option options[] = {
    {"dir", FF_OPT_STRING, &dir_option, 0, 0,
     "directory every rank sees (default: $FFRUN_SCRATCH, set by ffrun --scratch)"},
    {"block", FF_OPT_SIZE, &block, 0, INT_MAX, "bytes per chunk"},
    {"skip-nonblocking-collective", FF_OPT_FLAG, &skip_nonblocking_collective, 0, 0,
     "no iwrite_at_all / iread_at_all (ROMIO 3.2.1 in Open MPI 4.1 crashes in them: open-mpi/ompi#4520)"},
    {"expect-io", FF_OPT_STRING, &expect_io, 0, 0, "ompio or romio321: fail unless that io component serves the files"},
    {0},
};

static const ff_subtest subtests[] = {
    {"component", test_component, "which io component serves the files (--expect-io)"},
    {"open_delete", test_open_delete, "create, exclusive create, POSIX read on every rank, delete"},
    {"independent", test_independent, "write_at, seek + write, read_at of the neighbour's chunks"},
    {"collective_view", test_collective_view, "write_at_all / read_all through a vector file view, read_at_all"},
    {"nonblocking", test_nonblocking, "iwrite_at / iread_at, iwrite_at_all / iread_at_all"},
    {"shared_pointer", test_shared_pointer, "write_shared, seek_shared, write_ordered, read_ordered"},
    {"size_sync", test_size_sync, "set_size, get_size, sync, stat"},
    {"leftovers", test_leftovers, "no file of the run is left in the directory"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_mpiio",
        .summary = "MPI-IO on a shared directory: independent, collective, nonblocking, shared file pointers",
        .min_ranks = 1,
        .data_options = true,
        .default_timeout = 120,
        .options = options,
        .subtests = subtests,
    };
    /* ff_main cannot know the directory: parse ahead here and refuse a bad one before any subtest. */
    if (!ff_begin(argc, argv, &prog)) return ff_finish();
    const char *dir = dir_option ? dir_option : getenv("FFRUN_SCRATCH");
    struct stat sb;
    if (!dir || !*dir)
        ff_usage_error("no directory: give --dir DIR (one that every rank sees) or run under `ffrun --scratch`, which "
                       "sets FFRUN_SCRATCH.");
    else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK) != 0)
        ff_usage_error("%s is not a writable directory on rank %d: give --dir a directory every rank can write.", dir,
                       ff.rank);
    else if (block < 16 || block > 64 * FF_MIB)
        ff_usage_error("--block %zu is out of range: use 16 B to 64 MiB.", block);
    else if (expect_io && strcmp(expect_io, "ompio") != 0 && strcmp(expect_io, "romio321") != 0)
        ff_usage_error("--expect-io %s: use ompio or romio321 (see `ompi_info | grep 'MCA io'`).", expect_io);
    else {
        /* pid and time of rank 0: unique among runs sharing the directory (pids repeat across containers). */
        long unique[2] = {(long) getpid(), (long) time(NULL)};
        MPI_Bcast(unique, 2, MPI_LONG, 0, MPI_COMM_WORLD);
        snprintf(base, sizeof base, "%s/ffcheck_mpiio-%ld-%ld", dir, unique[0], unique[1]);
        for (const ff_subtest *t = subtests; t->name; t++) {
            if (!ff_subtest_selected(t->name)) continue;
            ff_subtest_begin(t->name);
            t->run();
            ff_subtest_end();
        }
    }
    return ff_finish();
}
