/* Minimal test support: CHECK records a failure with its location and keeps going; tests return
 * check_exit_code(). */
#ifndef FREEFLOW_TEST_CHECK_H
#define FREEFLOW_TEST_CHECK_H

#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_failures;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                                   \
            ++check_failures;                                                                                          \
        }                                                                                                              \
    } while (0)

#define CHECK_STATUS(expr, expected)                                                                                   \
    do {                                                                                                               \
        ff_status_t check_status_ = (expr);                                                                            \
        if (check_status_ != (expected)) {                                                                             \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__, __LINE__, #expr,                         \
                    ff_status_name(check_status_), ff_status_name(expected));                                          \
            ++check_failures;                                                                                          \
        }                                                                                                              \
    } while (0)

/* An enum's names: every value from 0 to `count` - 1 parses back from its name, and `unknown` (a word
 * that is no name) is refused. */
#define CHECK_NAMES_ROUND_TRIP(type, count, name_of, parse, unknown)                                                   \
    do {                                                                                                               \
        for (int value_ = 0; value_ < (int) (count); ++value_) {                                                       \
            type parsed_;                                                                                              \
            CHECK_STATUS(parse(name_of((type) value_), &parsed_), FF_OK);                                              \
            CHECK(parsed_ == (type) value_);                                                                           \
        }                                                                                                              \
        type unused_;                                                                                                  \
        CHECK_STATUS(parse(unknown, &unused_), FF_ERR_INVALID_ARGUMENT);                                               \
    } while (0)

static inline int check_exit_code(const char *name)
{
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* A scratch directory on tmpfs (/dev/shm), like the shared directories segments live in. */
static inline char *scratch_dir_create(void)
{
    static char path[] = "/dev/shm/freeflow-test-XXXXXX";
    char *dir = mkdtemp(path);
    if (!dir) {
        perror("mkdtemp");
        exit(2);
    }
    return dir;
}

static inline void scratch_dir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *entry;
        char path[4096];
        while ((entry = readdir(d))) {
            if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) {
                snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
                unlink(path);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

#endif
