/*
 * Pair verdicts: both directions of a pair of co-located ranks take the same path (issue 7, item 2).
 *
 * Each side attaches the other's segment on its own, lazily (Open MPI adds a peer on the first send to
 * it, and a rank that only receives may never add the sender), and either attach can be refused. ob1
 * cannot run a pair whose two directions use different BTLs, so the first side to decide writes the
 * verdict into the shared directory and the other adopts it. linkat() of a complete file is the atomic
 * register: it fails with EEXIST when the other side was first. Nobody waits for anybody.
 */
#define _GNU_SOURCE
#include "freeflow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERDICT_MAX 64

int ff_pair_verdict_name(const ff_job_key_t *key, uint64_t a, uint64_t b, char *buf, size_t len)
{
    const uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
    return snprintf(buf, len, "freeflow-%02x%02x%02x%02x-pair-%016llx-%016llx", key->bytes[0], key->bytes[1],
                    key->bytes[2], key->bytes[3], (unsigned long long) lo, (unsigned long long) hi);
}

void ff_status_reason(ff_status_t status, const char *prefix, char *buf, size_t len)
{
    const char *name = ff_status_name(status);
    if (strncmp(name, "FF_ERR_", 7) == 0) {
        name += 7;
    }
    int n = snprintf(buf, len, "%s", prefix);
    if (n < 0 || (size_t) n >= len) {
        return;
    }
    for (; *name && (size_t) n + 1 < len; ++name, ++n) {
        buf[n] = *name == '_' ? '-' : (char) (*name >= 'A' && *name <= 'Z' ? *name - 'A' + 'a' : *name);
    }
    buf[n] = '\0';
}

static bool reason_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

enum verdict { VERDICT_NONE, VERDICT_SHM, VERDICT_NOT, VERDICT_UNTRUSTED };

/* Reads the pair's verdict. A file we cannot trust (a symlink, a fifo, another user's, garbage) reads as
 * VERDICT_UNTRUSTED and is left in place: the other side must see the same thing. */
static enum verdict read_verdict(int dirfd, const char *name, char *reason, size_t reason_len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? VERDICT_NONE : VERDICT_UNTRUSTED;
    }
    struct stat st;
    char text[VERDICT_MAX + 1];
    ssize_t got = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 077)) {
        got = read(fd, text, VERDICT_MAX);
    }
    close(fd);
    if (got <= 0) {
        return VERDICT_UNTRUSTED;
    }
    text[got] = '\0';
    if (strcmp(text, "shm\n") == 0) {
        return VERDICT_SHM;
    }
    if (strncmp(text, "not ", 4) == 0) {
        size_t n = 0;
        const char *r = text + 4;
        while (reason_char(r[n])) {
            ++n;
        }
        if (n > 0 && n < reason_len && r[n] == '\n' && r[n + 1] == '\0') {
            memcpy(reason, r, n);
            reason[n] = '\0';
            return VERDICT_NOT;
        }
    }
    return VERDICT_UNTRUSTED;
}

/* 0: published; EEXIST: the other side was first; another errno: cannot publish. */
static int publish_verdict(int dirfd, const char *name, bool shm, const char *reason)
{
    char text[VERDICT_MAX + 8];
    int len = shm ? snprintf(text, sizeof(text), "shm\n") : snprintf(text, sizeof(text), "not %s\n", reason);
    char temporary[64] = ".ff-verdict-";
    if (ff_random_name(temporary + 12, 33) != FF_OK) {
        return errno ? errno : EIO;
    }
    int fd = openat(dirfd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return errno;
    }
    int rc = 0;
    if (write(fd, text, (size_t) len) != len) {
        rc = errno ? errno : EIO;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = errno;
    }
    /* linkat publishes the complete file under the pair's name, or fails with EEXIST: one winner */
    if (rc == 0 && linkat(dirfd, temporary, dirfd, name, 0) != 0) {
        rc = errno;
    }
    unlinkat(dirfd, temporary, 0);
    return rc;
}

static void set_not(ff_pair_decision_t *decision, const char *reason)
{
    decision->shm = false;
    snprintf(decision->reason, sizeof(decision->reason), "%s", reason);
}

ff_status_t ff_pair_decide(int dirfd, ff_segment_t *own, const ff_job_key_t *key, uint64_t peer_id,
                           const ff_host_id_t *host, ff_segment_t **peer, ff_pair_decision_t *decision)
{
    if (dirfd < 0 || !own || !key || !peer || !decision) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    memset(decision, 0, sizeof(*decision));
    *peer = NULL;
    char name[VERDICT_MAX];
    ff_pair_verdict_name(key, ff_segment_owner_id(own), peer_id, name, sizeof(name));

    /* Two rounds at most: when our publish loses, the winner's verdict is there to adopt. A third look
     * only happens if a file we could not trust vanished in between. `held`: the peer's segment we
     * attached before losing the race, reused rather than attached twice (attaching counts towards
     * expected_peers). */
    ff_segment_t *held = NULL;
    for (int round = 0; round < 3; ++round) {
        char reason[sizeof(decision->reason)];
        enum verdict verdict = read_verdict(dirfd, name, reason, sizeof(reason));
        if (verdict == VERDICT_UNTRUSTED) {
            ff_segment_close(held);
            set_not(decision, "untrusted-verdict");
            return FF_OK;
        }
        if (verdict != VERDICT_NONE) {
            /* adopt: we are the last reader (the publisher never reads it again) */
            unlinkat(dirfd, name, 0);
            if (verdict == VERDICT_NOT) {
                ff_segment_close(held);
                set_not(decision, reason);
                return FF_OK;
            }
            if (held) {
                *peer = held;
                decision->shm = true;
                return FF_OK;
            }
            ff_status_t status = ff_segment_attach_at(dirfd, key, peer_id, host, peer);
            if (status != FF_OK) {
                /* The peer proved our segment and its own and already sends through shared memory; we
                 * cannot reach it: only tampering between its check and ours gets here. */
                ff_status_reason(status, "segment-", reason, sizeof(reason));
                set_not(decision, reason);
                return FF_ERR_VERDICT_CONFLICT;
            }
            decision->shm = true;
            return FF_OK;
        }

        /* Nobody decided yet: shm only if both directions will work, that is our attach of the peer's
         * segment succeeds and the peer's later attach of ours will. */
        ff_segment_t *attached = held;
        held = NULL;
        ff_status_t status = attached ? FF_OK : ff_segment_attach_at(dirfd, key, peer_id, host, &attached);
        if (status != FF_OK) {
            ff_status_reason(status, "segment-", reason, sizeof(reason));
        } else if ((status = ff_segment_verify_own(own)) != FF_OK) {
            ff_status_reason(status, "own-segment-", reason, sizeof(reason));
        }
        const bool shm = status == FF_OK;
        int rc = publish_verdict(dirfd, name, shm, reason);
        if (rc == EEXIST) {
            held = attached; /* NULL when our attach failed */
            continue;        /* the other side decided first: adopt its verdict */
        }
        if (rc != 0) {
            /* We cannot write the directory; neither, then, can the peer: it also declines. */
            ff_segment_close(attached);
            set_not(decision, "verdict-unwritable");
            return FF_OK;
        }
        decision->published = true;
        if (shm) {
            decision->shm = true;
            *peer = attached;
        } else {
            ff_segment_close(attached);
            set_not(decision, reason);
        }
        return FF_OK;
    }
    ff_segment_close(held);
    set_not(decision, "untrusted-verdict");
    return FF_OK;
}

void ff_pair_verdict_remove(int dirfd, const ff_job_key_t *key, uint64_t a, uint64_t b)
{
    char name[VERDICT_MAX];
    ff_pair_verdict_name(key, a, b, name, sizeof(name));
    struct stat st;
    /* only a verdict file of ours: never remove what another user put there */
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
        unlinkat(dirfd, name, 0);
    }
}
