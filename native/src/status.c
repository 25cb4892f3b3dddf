#include "freeflow.h"

static const struct {
    const char *name;
    const char *description;
} status_table[FF_STATUS_COUNT] = {
    [FF_OK] = {"FF_OK", "success"},
    [FF_ERR_INVALID_ARGUMENT] = {"FF_ERR_INVALID_ARGUMENT",
                                 "an argument is out of range: check the sizes and names passed in"},
    [FF_ERR_NO_MEMORY] = {"FF_ERR_NO_MEMORY", "out of memory: free memory or lower the ring size"},
    [FF_ERR_SYSTEM] = {"FF_ERR_SYSTEM", "a system call failed (see errno): check the shared directory's "
                                        "permissions and free space"},
    [FF_ERR_NOT_FOUND] = {"FF_ERR_NOT_FOUND",
                          "the file does not exist: the peer is on another host, has not started, or "
                          "already removed it"},
    [FF_ERR_TRUNCATED] = {"FF_ERR_TRUNCATED",
                          "the segment file is shorter than its header requires: it was truncated or is "
                          "still being created; remove stale files from the shared directory"},
    [FF_ERR_BAD_MAGIC] = {"FF_ERR_BAD_MAGIC",
                          "the file is not a freeflow segment: something else wrote to the shared directory"},
    [FF_ERR_VERSION_MISMATCH] = {"FF_ERR_VERSION_MISMATCH",
                                 "the segment was made by another version of freeflow: run every rank of "
                                 "the job with the same build of the freeflow BTL"},
    [FF_ERR_FOREIGN_JOB] = {"FF_ERR_FOREIGN_JOB",
                            "the segment belongs to another job (other job key): the shared directory is "
                            "shared between jobs, or a stale file was left; give each job its own directory"},
    [FF_ERR_OWNER_MISMATCH] = {"FF_ERR_OWNER_MISMATCH", "the segment or ring belongs to another process than expected"},
    [FF_ERR_HOST_MISMATCH] = {"FF_ERR_HOST_MISMATCH",
                              "the segment was made on another host (other boot id or shared directory): "
                              "the peer is not co-located"},
    [FF_ERR_NOT_READY] = {"FF_ERR_NOT_READY", "the segment's owner has not finished creating it"},
    [FF_ERR_FULL] = {"FF_ERR_FULL", "no free ring left in the segment: raise the maximum number of peers"},
    [FF_ERR_PARSE] = {"FF_ERR_PARSE", "the path table is malformed: regenerate it with ffrun"},
    [FF_ERR_UNSUPPORTED_VERSION] = {"FF_ERR_UNSUPPORTED_VERSION",
                                    "the path table has a format version this build does not know: use "
                                    "the same freeflow version for ffrun and the BTL"},
    [FF_ERR_UNTRUSTED] = {"FF_ERR_UNTRUSTED",
                          "a file or directory freeflow would use is a symlink, a fifo, owned by another user, "
                          "or open to group or others: another user may have planted it; remove it, or give "
                          "freeflow a directory only you can write (btl_freeflow_dir)"},
    [FF_ERR_CORRUPT] = {"FF_ERR_CORRUPT",
                        "shared memory holds a value no freeflow process writes: another process with access "
                        "to the shared directory overwrote it; find it and restart the job"},
    [FF_ERR_VERDICT_CONFLICT] = {"FF_ERR_VERDICT_CONFLICT",
                                 "the peer chose shared memory for the pair, but its segment no longer attaches "
                                 "here: it was changed after the peer checked it; find what touches the shared "
                                 "directory and restart the job"},
};

const char *ff_status_name(ff_status_t status)
{
    if ((unsigned) status >= FF_STATUS_COUNT) {
        return "FF_ERR_UNKNOWN";
    }
    return status_table[status].name;
}

const char *ff_status_describe(ff_status_t status)
{
    if ((unsigned) status >= FF_STATUS_COUNT) {
        return "unknown status";
    }
    return status_table[status].description;
}
