/*
 * ffcheck_sabotage: two ranks; one breaks a freeflow segment (its own or its peer's) in the shared
 * directory, before the pair's first message or after both sides attached, then the pair exchanges
 * eager (1 KiB), rendezvous (70,000 B) and pipelined (1 MiB, 16 MiB) messages in both directions and
 * checks every byte. The job must either finish with correct data ("sabotage: ok") or stop with a clear
 * freeflow error; never hang, never crash (issue 7, items 2 and 3). `ring` (with --target own --when after)
 * overwrites the ring the peer sends through: the owner must stop the job naming the corrupt ring.
 *
 *   ffcheck_sabotage --how none|corrupt|ring|truncate|unlink|symlink|fifo --target own|peer --by 0|1
 *                    --when before|after --first 0|1 [--dir DIR]
 *
 * "before" breaks the segment before the first message between the two ranks (the BTL adds peers on the
 * first send), "after" once both have sent to each other. --first is the rank that sends first (it decides
 * the pair first). The ranks coordinate through a marker file, not MPI, so nothing is sent before the
 * sabotage. The directory is $FREEFLOW_DIR, /run/freeflow (ffrun), or /dev/shm/freeflow-<euid>-<job family>.
 */
#define _GNU_SOURCE
#include "ff_cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[4096];

static void die(const char *message)
{
    fprintf(stderr, "sabotage: %s\n", message);
    MPI_Abort(MPI_COMM_WORLD, 3);
}

/* The segment of `rank` in the shared directory: freeflow-<key>-<jobid 8 hex><vpid 8 hex>.seg. */
static bool find_segment(int rank, char *path, size_t len)
{
    char suffix[32];
    snprintf(suffix, sizeof(suffix), "%08x.seg", (unsigned) rank);
    DIR *d = opendir(dir);
    if (!d) {
        return false;
    }
    struct dirent *e;
    bool found = false;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > strlen(suffix) && !strncmp(e->d_name, "freeflow-", 9) &&
            !strcmp(e->d_name + n - strlen(suffix), suffix) && !strstr(e->d_name, "-pair-")) {
            snprintf(path, len, "%s/%s", dir, e->d_name);
            found = true;
            break;
        }
    }
    closedir(d);
    return found;
}

static void breakit(const char *how, const char *path)
{
    char moved[4200];
    snprintf(moved, sizeof(moved), "%s.moved", path);
    int rc = 0;
    if (!strcmp(how, "none")) {
        return; /* a control run */
    } else if (!strcmp(how, "corrupt")) {
        int fd = open(path, O_RDWR);
        uint8_t junk[64];
        memset(junk, 0xa5, sizeof(junk));
        rc = fd < 0 || pwrite(fd, junk, sizeof(junk), 0) != (ssize_t) sizeof(junk);
        if (fd >= 0) close(fd);
    } else if (!strcmp(how, "ring")) {
        /* Overwrite the data of ring 0 (the peer's ring in this segment: there is one peer) with bytes no
         * producer writes; its owner must stop the job with an error, not crash or wait forever. Layout 2:
         * ring_size at byte 88 of the header, ring 0's data after the 4096-byte header and its 128-byte
         * control block. */
        int fd = open(path, O_RDWR);
        uint32_t ring_size = 0;
        rc = fd < 0 || pread(fd, &ring_size, sizeof(ring_size), 88) != (ssize_t) sizeof(ring_size) || !ring_size ||
             ring_size > (1u << 30);
        uint8_t *junk = rc ? NULL : malloc(ring_size);
        if (junk) {
            memset(junk, 0xa5, ring_size);
            rc = pwrite(fd, junk, ring_size, 4096 + 128) != (ssize_t) ring_size;
            free(junk);
        }
        if (fd >= 0) close(fd);
    } else if (!strcmp(how, "truncate")) {
        rc = truncate(path, 100);
    } else if (!strcmp(how, "unlink")) {
        rc = unlink(path);
    } else if (!strcmp(how, "symlink")) {
        rc = rename(path, moved) || symlink(moved, path);
    } else if (!strcmp(how, "fifo")) {
        rc = unlink(path) || mkfifo(path, 0600);
    } else {
        die("unknown --how");
    }
    if (rc) {
        perror("sabotage");
        die("could not break the segment");
    }
    printf("sabotage: broke %s (%s)\n", path, how);
    fflush(stdout);
}

static void marker(const char *name, bool create)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/sabotage-%s", dir, name);
    if (create) {
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        if (fd >= 0) close(fd);
        return;
    }
    for (int i = 0; i < 3000 && access(path, F_OK) != 0; ++i) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (access(path, F_OK) != 0) die("the other rank never finished its sabotage");
    unlink(path);
}

static uint8_t byte_at(int from, size_t size, size_t i)
{
    return (uint8_t) (from * 31 + size * 7 + i * 13 + (i >> 9));
}

/* `first` sends each size, the other checks it and sends it back changed. */
static void exchange(int rank, int first, const size_t *sizes, int count)
{
    const int other = 1 - rank;
    for (int s = 0; s < count; ++s) {
        const size_t size = sizes[s];
        uint8_t *buf = malloc(size);
        if (!buf) die("out of memory");
        for (int turn = 0; turn < 2; ++turn) {
            const int sender = turn == 0 ? first : 1 - first;
            if (rank == sender) {
                for (size_t i = 0; i < size; ++i) buf[i] = byte_at(sender, size, i);
                MPI_Send(buf, (int) size, MPI_BYTE, other, 7, MPI_COMM_WORLD);
            } else {
                memset(buf, 0, size);
                MPI_Recv(buf, (int) size, MPI_BYTE, other, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                for (size_t i = 0; i < size; ++i) {
                    if (buf[i] != byte_at(sender, size, i)) {
                        fprintf(stderr, "sabotage: data mismatch: %zu bytes from %d, byte %zu\n", size, sender, i);
                        MPI_Abort(MPI_COMM_WORLD, 4);
                    }
                }
            }
        }
        free(buf);
    }
}

int main(int argc, char **argv)
{
    static const ff_choice hows[] = {{"none", 0},   {"corrupt", 1}, {"ring", 2}, {"truncate", 3},
                                     {"unlink", 4}, {"symlink", 5}, {"fifo", 6}, {0}};
    static const ff_choice targets[] = {{"own", 0}, {"peer", 1}, {0}};
    static const ff_choice whens[] = {{"before", 0}, {"after", 1}, {0}};
    int how_index = 1, target_index = 0, when_index = 0;
    long by = 1, first = 0;
    const char *dir_option = NULL;
    const ff_option options[] = {
        {"how", FF_OPT_CHOICE, &how_index, 0, 0, "how the segment is broken", .choices = hows},
        {"target", FF_OPT_CHOICE, &target_index, 0, 0, "whose segment: the breaking rank's or its peer's",
         .choices = targets},
        {"by", FF_OPT_LONG, &by, 0, 1, "the rank that breaks it"},
        {"when", FF_OPT_CHOICE, &when_index, 0, 0, "before the pair's first message or after both attached",
         .choices = whens},
        {"first", FF_OPT_LONG, &first, 0, 1, "the rank that sends first"},
        {"dir", FF_OPT_STRING, &dir_option, 0, 0, "the BTL's segment directory (btl_freeflow_dir)",
         .value_name = "DIR"},
        {0},
    };
    const ff_cli cli = {.program = "ffcheck_sabotage", .usage = "[options]   (under mpirun -n 2)", .tables = {options}};
    /* Before MPI_Init: a bad command line stops every rank the same way, with exit code 2. */
    const int status = ff_cli_parse_or_status(&cli, argc, argv, NULL, true);
    if (status != FF_CLI_PROCEED) return status;
    const char *how = hows[how_index].name, *target = targets[target_index].name, *when = whens[when_index].name;
    if (dir_option) snprintf(dir, sizeof(dir), "%s", dir_option);
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) die("needs exactly 2 ranks");
    if (!dir[0]) {
        const char *env = getenv("FREEFLOW_DIR");
        struct stat st;
        if (env && *env)
            snprintf(dir, sizeof(dir), "%s", env);
        else if (stat("/run/freeflow", &st) == 0)
            snprintf(dir, sizeof(dir), "/run/freeflow");
        else {
            /* plain mpirun: the BTL's private directory of this launcher job family */
            const char *jobid = getenv("OMPI_MCA_ess_base_jobid");
            if (!jobid) die("cannot tell the BTL's directory: give --dir");
            snprintf(dir, sizeof(dir), "/dev/shm/freeflow-%u-%04x", (unsigned) geteuid(),
                     (unsigned) (strtoul(jobid, NULL, 10) >> 16));
        }
    }
    const size_t small[] = {1024};
    const size_t sizes[] = {1024, 70000, 1 << 20, 16 << 20};
    const bool after = !strcmp(when, "after");
    if (after) {
        exchange(rank, first, small, 1); /* both directions attached */
        /* ob1 may still be finishing the last send's completion: no more messages until the marker */
    }
    if (!strcmp(how, "none")) {
        /* control run: no sabotage, no marker */
    } else if (rank == by) {
        char path[4096];
        const int victim = !strcmp(target, "own") ? rank : 1 - rank;
        if (!find_segment(victim, path, sizeof(path))) die("segment not found");
        breakit(how, path);
        if (!strcmp(how, "ring")) {
            /* Let progress look at the ring before the peer sends again: the peer's next record would
             * overwrite the forged header at our position and hide the damage. */
            for (int i = 0; i < 100; ++i) {
                int flag;
                MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
            }
        }
        marker("done", true);
    } else {
        marker("done", false);
    }
    exchange(rank, first, sizes, 4);
    exchange(rank, 1 - first, sizes, 4);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) printf("sabotage: ok\n");
    MPI_Finalize();
    return 0;
}
