/* The BTL's per-pair decision (freeflow.h, "pair policy"): pure, so ctest reaches every branch without
 * root or Open MPI. The BTL (btl/btl_freeflow_module.c) gathers the inputs and does the I/O. */
#include "freeflow.h"

#include <stdio.h>
#include <string.h>

/* Both directions of the table as one path both ranks compute alike: max() is symmetric, and the
 * enum's order (self < shm < tcp < router < handoff) makes the more restrictive direction win, so a
 * table that says shm one way and tcp the other reads as tcp on both sides. */
static ff_path_kind_t pair_path(ff_path_kind_t to, ff_path_kind_t from)
{
    const unsigned a = (unsigned) to, b = (unsigned) from;
    const unsigned merged = a > b ? a : b;
    return merged < FF_PATH_KIND_COUNT ? (ff_path_kind_t) merged : FF_PATH_KIND_COUNT;
}

static void finish(ff_pair_outcome_t *out, ff_pair_route_t route, ff_pair_reason_t reason, const char *text)
{
    out->route = route;
    out->reason = reason;
    snprintf(out->text, sizeof(out->text), "%s", text ? text : "");
}

/* A reason handed in from the verdict file: pair.c accepts only [a-z0-9-] there, but this function
 * trusts no caller with its output format, so anything else becomes "untrusted-verdict". */
static const char *identifier_or(const char *text, const char *fallback)
{
    if (!text || !*text) {
        return fallback;
    }
    for (const char *p = text; *p; ++p) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
            return fallback;
        }
    }
    return text;
}

void ff_pair_policy_decide(const ff_pair_inputs_t *in, ff_pair_outcome_t *out)
{
    if (!out) {
        return;
    }
    out->path = FF_PATH_SHM;
    if (!in || !in->modex_present) {
        finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_NO_MODEX, "no-modex");
        return;
    }
    if (!in->modex_layout_ok) {
        finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_VERSION_MISMATCH, "segment-version-mismatch");
        return;
    }
    if (!in->key_equal) {
        finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_FOREIGN_JOB, "segment-foreign-job");
        return;
    }
    const bool planned = in->table_covers_me && in->table_covers_peer;
    /* a pair the plan does not cover is not restricted by it */
    const ff_path_kind_t path = planned ? pair_path(in->path_to_peer, in->path_from_peer) : FF_PATH_SHM;
    out->path = path;
    char text[48];
    if (FF_PATH_HANDOFF == path || FF_PATH_ROUTER == path) {
        /* h and r: the table says the letter both ways and both ranks are registered with their agents.
         * The registration flags are mirrored between the two sides, so they decline alike. */
        if (in->path_to_peer != in->path_from_peer) {
            snprintf(text, sizeof(text), "path-table-says-%s-one-way", ff_path_kind_name(path));
            finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_ONE_WAY, text);
        } else if (!in->my_agent_registered) {
            finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_AGENT_UNREACHABLE, "agent-unreachable");
        } else if (!in->peer_agent_registered) {
            finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_PEER_AGENT_UNREACHABLE, "peer-agent-unreachable");
        } else {
            /* the shm module's reason for leaving the pair to the module that carries it */
            snprintf(text, sizeof(text), "path-table-says-%s", ff_path_kind_name(path));
            finish(out, FF_PATH_HANDOFF == path ? FF_PAIR_ROUTE_HANDOFF : FF_PAIR_ROUTE_ROUTER,
                   FF_PAIR_REASON_PATH_TABLE_SAYS, text);
        }
        return;
    }
    if (FF_PATH_SHM != path) {
        snprintf(text, sizeof(text), "path-table-says-%s", ff_path_kind_name(path));
        finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_PATH_TABLE_SAYS, text);
        return;
    }
    if (in->table_covers_me && !in->table_covers_peer && in->peer_in_my_mpi_job) {
        finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_NOT_IN_PATH_TABLE, "not-in-path-table");
        return;
    }
    if (!in->host_equal) {
        finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_HOST_MISMATCH, "host-mismatch");
        return;
    }
    /* Host identity is a claim; opening the peer's segment is the proof (the I/O stays in the caller). */
    if (!in->proof_done) {
        finish(out, FF_PAIR_ROUTE_PROVE, FF_PAIR_REASON_NEEDS_PROOF, "needs-proof");
        return;
    }
    if (FF_ERR_VERDICT_CONFLICT == in->proof_status) {
        finish(out, FF_PAIR_ROUTE_FATAL, FF_PAIR_REASON_VERDICT_CONFLICT,
               identifier_or(in->proof_reason, "verdict-conflict"));
        return;
    }
    if (FF_OK != in->proof_status) {
        ff_status_reason(in->proof_status, "segment-", text, sizeof(text));
        finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_SEGMENT_STATUS, text);
        return;
    }
    if (in->proof_shm) {
        finish(out, FF_PAIR_ROUTE_SHM, FF_PAIR_REASON_SHM, "shm");
        return;
    }
    finish(out, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_VERDICT, identifier_or(in->proof_reason, "untrusted-verdict"));
}

const char *ff_pair_route_name(ff_pair_route_t route)
{
    static const char *const names[FF_PAIR_ROUTE_COUNT] = {
        "FF_PAIR_ROUTE_SHM",      "FF_PAIR_ROUTE_HANDOFF", "FF_PAIR_ROUTE_ROUTER",
        "FF_PAIR_ROUTE_NEXT_BTL", "FF_PAIR_ROUTE_PROVE",   "FF_PAIR_ROUTE_FATAL",
    };
    return (unsigned) route < FF_PAIR_ROUTE_COUNT ? names[route] : "FF_PAIR_ROUTE_UNKNOWN";
}

const char *ff_pair_reason_name(ff_pair_reason_t reason)
{
    static const char *const names[FF_PAIR_REASON_COUNT] = {
        "FF_PAIR_REASON_SHM",
        "FF_PAIR_REASON_NEEDS_PROOF",
        "FF_PAIR_REASON_NO_MODEX",
        "FF_PAIR_REASON_VERSION_MISMATCH",
        "FF_PAIR_REASON_FOREIGN_JOB",
        "FF_PAIR_REASON_PATH_TABLE_SAYS",
        "FF_PAIR_REASON_ONE_WAY",
        "FF_PAIR_REASON_AGENT_UNREACHABLE",
        "FF_PAIR_REASON_PEER_AGENT_UNREACHABLE",
        "FF_PAIR_REASON_NOT_IN_PATH_TABLE",
        "FF_PAIR_REASON_HOST_MISMATCH",
        "FF_PAIR_REASON_SEGMENT_STATUS",
        "FF_PAIR_REASON_VERDICT",
        "FF_PAIR_REASON_VERDICT_CONFLICT",
    };
    return (unsigned) reason < FF_PAIR_REASON_COUNT ? names[reason] : "FF_PAIR_REASON_UNKNOWN";
}
