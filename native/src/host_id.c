#define _POSIX_C_SOURCE 200809L
#include "freeflow.h"
#include "hex.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"

/* The boot id is the same in every namespace of one kernel: it tells machines (or VMs) apart. */
static ff_status_t read_boot_id(uint8_t out[16])
{
    char text[64] = {0};
    FILE *file = fopen(BOOT_ID_FILE, "r");
    if (!file) {
        return FF_ERR_SYSTEM;
    }
    const size_t n = fread(text, 1, sizeof(text) - 1, file);
    fclose(file);
    text[n] = '\0';
    if (!ff_hex16_parse(text, true, out)) {
        errno = EINVAL;
        return FF_ERR_SYSTEM;
    }
    return FF_OK;
}

ff_status_t ff_host_id_read(const char *shared_dir, ff_host_id_t *out)
{
    struct stat st;
    if (!shared_dir || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    memset(out, 0, sizeof(*out));
    ff_status_t status = read_boot_id(out->boot_id);
    if (status != FF_OK) {
        return status;
    }
    /* The shared directory tells simulated hosts (and jobs) on one kernel apart: each host of each job
     * has its own tmpfs, so its device number differs. */
    if (stat(shared_dir, &st) != 0) {
        return errno == ENOENT ? FF_ERR_NOT_FOUND : FF_ERR_SYSTEM;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return FF_ERR_INVALID_ARGUMENT;
    }
    out->dir_dev = (uint64_t) st.st_dev;
    out->dir_ino = (uint64_t) st.st_ino;
    return FF_OK;
}

bool ff_host_id_equal(const ff_host_id_t *a, const ff_host_id_t *b)
{
    return memcmp(a->boot_id, b->boot_id, sizeof(a->boot_id)) == 0 && a->dir_dev == b->dir_dev &&
           a->dir_ino == b->dir_ino;
}

int ff_host_id_format(const ff_host_id_t *id, char *buf, size_t len)
{
    char boot[33];
    ff_hex16_format(id->boot_id, boot);
    return snprintf(buf, len, "boot=%s dir=%llu:%llu", boot, (unsigned long long) id->dir_dev,
                    (unsigned long long) id->dir_ino);
}
