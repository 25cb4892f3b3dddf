/*
 * Trusted directories and files (item 1 of issue 7). The shared directory may be /dev/shm or another
 * place other users can write to, and root ranks write files there: every name is resolved relative to
 * one verified directory fd, never through a symlink, and files we create are new (O_EXCL) with names
 * nobody can predict.
 */
#define _GNU_SOURCE
#include "freeflow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static ff_status_t say(ff_status_t status, char *reason, size_t len, const char *format, ...)
{
    if (reason && len) {
        va_list args;
        va_start(args, format);
        vsnprintf(reason, len, format, args);
        va_end(args);
    }
    return status;
}

/* A directory we may put segments in: not a symlink (O_NOFOLLOW refused it already), owned by us or
 * root, and if others may write to it, sticky (so they cannot rename or remove our files). */
static ff_status_t verify_dir(int fd, const char *path, bool private_only, char *reason, size_t len)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return say(FF_ERR_SYSTEM, reason, len, "cannot stat %s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return say(FF_ERR_UNTRUSTED, reason, len, "%s is not a directory", path);
    }
    const uid_t me = geteuid();
    if (private_only) {
        if (st.st_uid != me || (st.st_mode & 077)) {
            return say(FF_ERR_UNTRUSTED, reason, len,
                       "%s must be owned by uid %u with mode 0700 (it is uid %u, mode %03o): another user may "
                       "have planted it; remove it",
                       path, (unsigned) me, (unsigned) st.st_uid, (unsigned) (st.st_mode & 0777));
        }
        return FF_OK;
    }
    if (st.st_uid != me && st.st_uid != 0) {
        return say(FF_ERR_UNTRUSTED, reason, len, "%s is owned by uid %u, neither this user (%u) nor root", path,
                   (unsigned) st.st_uid, (unsigned) me);
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        return say(FF_ERR_UNTRUSTED, reason, len,
                   "%s is writable by group or others without the sticky bit (mode %04o): others could replace "
                   "files in it",
                   path, (unsigned) (st.st_mode & 07777));
    }
    return FF_OK;
}

static ff_status_t open_verified(const char *path, bool private_only, int *dirfd, char *reason, size_t len)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return say(FF_ERR_NOT_FOUND, reason, len, "%s does not exist", path);
        }
        if (errno == ELOOP || errno == ENOTDIR) {
            return say(FF_ERR_UNTRUSTED, reason, len, "%s is a symlink or not a directory", path);
        }
        return say(FF_ERR_SYSTEM, reason, len, "cannot open %s: %s", path, strerror(errno));
    }
    ff_status_t status = verify_dir(fd, path, private_only, reason, len);
    if (status != FF_OK) {
        close(fd);
        return status;
    }
    *dirfd = fd;
    return FF_OK;
}

ff_status_t ff_dir_open(const char *path, int *dirfd, char *reason, size_t reason_len)
{
    if (!path || !dirfd) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    return open_verified(path, false, dirfd, reason, reason_len);
}

ff_status_t ff_dir_open_private(const char *parent, const char *scope, char *path, size_t path_len, int *dirfd,
                                char *reason, size_t reason_len)
{
    if (!parent || !scope || !*scope || strchr(scope, '/') || !path || !dirfd) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    int n = snprintf(path, path_len, "%s/freeflow-%u-%s", parent, (unsigned) geteuid(), scope);
    if (n < 0 || (size_t) n >= path_len) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    /* mkdir never follows a symlink at the last component; whatever is there is checked below */
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return say(FF_ERR_SYSTEM, reason, reason_len, "cannot create %s: %s", path, strerror(errno));
    }
    return open_verified(path, true, dirfd, reason, reason_len);
}

ff_status_t ff_random_name(char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf || len == 0) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    uint8_t bytes[64];
    size_t digits = len - 1 > 2 * sizeof(bytes) ? 2 * sizeof(bytes) : len - 1;
    size_t need = (digits + 1) / 2;
    if (getrandom(bytes, need, 0) != (ssize_t) need) {
        return FF_ERR_SYSTEM;
    }
    for (size_t i = 0; i < digits; ++i) {
        buf[i] = hex[(bytes[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    }
    buf[digits] = '\0';
    return FF_OK;
}

ff_status_t ff_dir_write_file(int dirfd, const char *name, const void *data, size_t len)
{
    if (dirfd < 0 || !name || (!data && len)) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    char temporary[64] = ".ff-tmp-";
    ff_status_t status = ff_random_name(temporary + 8, 33);
    if (status != FF_OK) {
        return status;
    }
    int fd = openat(dirfd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return FF_ERR_SYSTEM;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int saved = errno;
            close(fd);
            unlinkat(dirfd, temporary, 0);
            errno = saved;
            return FF_ERR_SYSTEM;
        }
        p += n;
        left -= (size_t) n;
    }
    /* rename replaces whatever `name` is, a planted symlink included, without following it */
    if (close(fd) != 0 || renameat(dirfd, temporary, dirfd, name) != 0) {
        int saved = errno;
        unlinkat(dirfd, temporary, 0);
        errno = saved;
        return FF_ERR_SYSTEM;
    }
    return FF_OK;
}

ff_status_t ff_dir_read_trusted(int dirfd, const char *name, size_t max_len, char **text, char *reason,
                                size_t reason_len)
{
    if (dirfd < 0 || !name || !text) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    *text = NULL;
    /* O_NONBLOCK: a fifo planted under the name must not block us */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return FF_ERR_NOT_FOUND;
        }
        if (errno == ELOOP) {
            return say(FF_ERR_UNTRUSTED, reason, reason_len, "%s is a symlink", name);
        }
        return say(FF_ERR_SYSTEM, reason, reason_len, "cannot open %s: %s", name, strerror(errno));
    }
    struct stat st;
    ff_status_t status = FF_OK;
    const uid_t me = geteuid();
    if (fstat(fd, &st) != 0) {
        status = say(FF_ERR_SYSTEM, reason, reason_len, "cannot stat %s: %s", name, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        status = say(FF_ERR_UNTRUSTED, reason, reason_len, "%s is not a regular file", name);
    } else if (st.st_uid != me && st.st_uid != 0) {
        status = say(FF_ERR_UNTRUSTED, reason, reason_len,
                     "%s is owned by uid %u, neither this user (%u) nor root: another user may have planted it", name,
                     (unsigned) st.st_uid, (unsigned) me);
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        status = say(FF_ERR_UNTRUSTED, reason, reason_len, "%s is writable by group or others (mode %04o)", name,
                     (unsigned) (st.st_mode & 07777));
    } else if ((size_t) st.st_size > max_len) {
        status = say(FF_ERR_PARSE, reason, reason_len, "%s is larger than %zu bytes", name, max_len);
    }
    char *buf = NULL;
    size_t got = 0;
    if (status == FF_OK && !(buf = malloc((size_t) st.st_size + 1))) {
        status = FF_ERR_NO_MEMORY;
    }
    while (status == FF_OK && got < (size_t) st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            status = say(FF_ERR_SYSTEM, reason, reason_len, "cannot read %s: %s", name, strerror(errno));
        } else if (n == 0) {
            break;
        }
        got += n > 0 ? (size_t) n : 0;
    }
    close(fd);
    if (status != FF_OK) {
        free(buf);
        return status;
    }
    buf[got] = '\0';
    *text = buf;
    return FF_OK;
}
