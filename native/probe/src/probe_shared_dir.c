#include <errno.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "probe_internal.h"

/* The filesystems a shared directory is likely to live on, by statfs magic. ext2, ext3 and ext4 share one
 * magic. What matters to freeflow is mostly whether it is memory-backed (tmpfs, ramfs, hugetlbfs). */
static const struct {
    uint64_t magic;
    const char *name;
} known_filesystems[] = {
    {TMPFS_MAGIC, "tmpfs"},
    {RAMFS_MAGIC, "ramfs"},
    {HUGETLBFS_MAGIC, "hugetlbfs"},
    {EXT4_SUPER_MAGIC, "ext2/3/4"},
    {XFS_SUPER_MAGIC, "xfs"},
    {BTRFS_SUPER_MAGIC, "btrfs"},
    {OVERLAYFS_SUPER_MAGIC, "overlay"},
    {0x2fc12fc1, "zfs"},
    {NFS_SUPER_MAGIC, "nfs"},
    {CIFS_SUPER_MAGIC, "cifs"},
    {SMB2_SUPER_MAGIC, "smb2"},
    {CEPH_SUPER_MAGIC, "ceph"},
    {FUSE_SUPER_MAGIC, "fuse"},
    {V9FS_MAGIC, "9p"},
    {SQUASHFS_MAGIC, "squashfs"},
};

static const char *filesystem_name(uint64_t magic)
{
    for (size_t i = 0; i < sizeof(known_filesystems) / sizeof(known_filesystems[0]); i++) {
        if (known_filesystems[i].magic == magic) return known_filesystems[i].name;
    }
    return "unknown";
}

static ff_probe_status_t path_failure(const char *step, const char *path, int error, char *detail, size_t detail_len)
{
    ff_probe_status_t status = FF_PROBE_ERR_SYSTEM;
    if (error == ENOENT || error == ENOTDIR) status = FF_PROBE_ERR_SHARED_DIR_NOT_FOUND;
    if (error == EACCES || error == EPERM) status = FF_PROBE_ERR_SHARED_DIR_ACCESS;
    return ff_probe_fail(status, detail, detail_len, "%s(\"%s\") failed: %s", step, path, strerror(error));
}

ff_probe_status_t ff_probe_read_shared_dir(const char *path, ff_probe_shared_dir_t *out, char *detail,
                                           size_t detail_len)
{
    struct stat info;
    if (stat(path, &info) != 0) return path_failure("stat", path, errno, detail, detail_len);
    if (!S_ISDIR(info.st_mode)) {
        return ff_probe_fail(FF_PROBE_ERR_SHARED_DIR_NOT_DIRECTORY, detail, detail_len,
                             "shared directory \"%s\" is not a directory", path);
    }
    struct statfs fs;
    if (statfs(path, &fs) != 0) return path_failure("statfs", path, errno, detail, detail_len);

    uint64_t block = fs.f_frsize != 0 ? (uint64_t) fs.f_frsize : (uint64_t) fs.f_bsize;
    out->fs_magic = (uint64_t) (unsigned long) fs.f_type;
    ff_probe_copy_name(out->fs, sizeof(out->fs), filesystem_name(out->fs_magic));
    out->total_bytes = (uint64_t) fs.f_blocks * block;
    out->free_bytes = (uint64_t) fs.f_bfree * block;
    out->available_bytes = (uint64_t) fs.f_bavail * block;
    return FF_PROBE_OK;
}
