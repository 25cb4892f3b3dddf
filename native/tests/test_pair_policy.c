/* The BTL's per-pair decision (ff_pair_policy_decide): every branch with its docs/btl-report.md text,
 * and symmetry: the peer, given the mirrored inputs, decides the same route. Pure: no root, no MPI. */
#include "check.h"

#include "freeflow.h"

/* A pair of ranks on one host, in the table's job, planned shm both ways, proof not run yet. */
static ff_pair_inputs_t base(void)
{
    ff_pair_inputs_t in = {
        .modex_present = true,
        .modex_layout_ok = true,
        .key_equal = true,
        .table_covers_me = true,
        .table_covers_peer = true,
        .peer_in_my_mpi_job = true,
        .path_to_peer = FF_PATH_SHM,
        .path_from_peer = FF_PATH_SHM,
        .host_equal = true,
        .my_agent_registered = false,
        .peer_agent_registered = false,
        .proof_done = false,
        .proof_status = FF_OK,
        .proof_shm = false,
        .proof_reason = NULL,
    };
    return in;
}

/* The peer's view: directions and registrations swap; the rest is a property of the pair. */
static ff_pair_inputs_t mirrored(ff_pair_inputs_t in)
{
    ff_path_kind_t to = in.path_to_peer;
    in.path_to_peer = in.path_from_peer;
    in.path_from_peer = to;
    bool mine = in.my_agent_registered;
    in.my_agent_registered = in.peer_agent_registered;
    in.peer_agent_registered = mine;
    return in;
}

/* Checks the outcome and that the peer, from the mirrored inputs, takes the same route; its reason is
 * the same except that, when only one rank is registered, "agent-unreachable" on one side is
 * "peer-agent-unreachable" on the other. */
static void expect(ff_pair_inputs_t in, ff_pair_route_t route, ff_pair_reason_t reason, const char *text, int line)
{
    ff_pair_outcome_t out, peer;
    memset(&out, 0xa5, sizeof(out));
    memset(&peer, 0xa5, sizeof(peer));
    ff_pair_policy_decide(&in, &out);
    const ff_pair_inputs_t other = mirrored(in);
    ff_pair_policy_decide(&other, &peer);
    ff_pair_reason_t peer_reason = reason;
    if (in.my_agent_registered == in.peer_agent_registered) {
        /* the same on both sides */
    } else if (FF_PAIR_REASON_AGENT_UNREACHABLE == reason) {
        peer_reason = FF_PAIR_REASON_PEER_AGENT_UNREACHABLE;
    } else if (FF_PAIR_REASON_PEER_AGENT_UNREACHABLE == reason) {
        peer_reason = FF_PAIR_REASON_AGENT_UNREACHABLE;
    }
    const bool same_text = peer_reason != reason || strcmp(out.text, peer.text) == 0;
    if (out.route != route || out.reason != reason || strcmp(out.text, text) != 0 || peer.route != out.route ||
        peer.reason != peer_reason || !same_text || peer.path != out.path) {
        fprintf(stderr, "line %d: got %s/%s \"%s\" (peer %s/%s \"%s\"), expected %s/%s \"%s\"\n", line,
                ff_pair_route_name(out.route), ff_pair_reason_name(out.reason), out.text,
                ff_pair_route_name(peer.route), ff_pair_reason_name(peer.reason), peer.text, ff_pair_route_name(route),
                ff_pair_reason_name(reason), text);
        ++check_failures;
    }
}

static ff_pair_inputs_t planned(ff_path_kind_t to, ff_path_kind_t from)
{
    ff_pair_inputs_t in = base();
    in.path_to_peer = to;
    in.path_from_peer = from;
    return in;
}

static ff_pair_inputs_t proved(ff_status_t status, bool shm, const char *reason)
{
    ff_pair_inputs_t in = base();
    in.proof_done = true;
    in.proof_status = status;
    in.proof_shm = shm;
    in.proof_reason = reason;
    return in;
}

int main(void)
{
    ff_pair_inputs_t in;

    /* the modex comes first: without a usable one nothing else is read */
    in = base(), in.modex_present = false, in.key_equal = false;
    expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_NO_MODEX, "no-modex", __LINE__);
    in = base(), in.modex_layout_ok = false, in.key_equal = false;
    expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_VERSION_MISMATCH, "segment-version-mismatch", __LINE__);
    in = planned(FF_PATH_HANDOFF, FF_PATH_HANDOFF), in.key_equal = false, in.my_agent_registered = true;
    in.peer_agent_registered = true;
    expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_FOREIGN_JOB, "segment-foreign-job", __LINE__);

    /* the table: tcp either way wins over shm the other way; the letter both ways is followed */
    expect(planned(FF_PATH_TCP, FF_PATH_TCP), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_PATH_TABLE_SAYS,
           "path-table-says-tcp", __LINE__);
    expect(planned(FF_PATH_SHM, FF_PATH_TCP), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_PATH_TABLE_SAYS,
           "path-table-says-tcp", __LINE__);
    expect(planned(FF_PATH_TCP, FF_PATH_SHM), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_PATH_TABLE_SAYS,
           "path-table-says-tcp", __LINE__);
    /* the table says tcp even though the hosts look equal: the plan is followed, nothing is attached */
    in = planned(FF_PATH_TCP, FF_PATH_TCP), in.proof_done = true, in.proof_shm = true;
    expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_PATH_TABLE_SAYS, "path-table-says-tcp", __LINE__);
    expect(planned(FF_PATH_KIND_COUNT, FF_PATH_SHM), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_PATH_TABLE_SAYS,
           "path-table-says-unknown", __LINE__);

    /* h and r: the letter both ways and both ranks registered */
    for (int letter = 0; letter < 2; ++letter) {
        const ff_path_kind_t path = letter ? FF_PATH_ROUTER : FF_PATH_HANDOFF;
        const ff_pair_route_t route = letter ? FF_PAIR_ROUTE_ROUTER : FF_PAIR_ROUTE_HANDOFF;
        char says[48], one_way[48];
        snprintf(says, sizeof(says), "path-table-says-%s", ff_path_kind_name(path));
        snprintf(one_way, sizeof(one_way), "path-table-says-%s-one-way", ff_path_kind_name(path));
        in = planned(path, path), in.my_agent_registered = true, in.peer_agent_registered = true;
        /* host identity plays no part between hosts; equal or not, the module takes the pair */
        in.host_equal = false;
        expect(in, route, FF_PAIR_REASON_PATH_TABLE_SAYS, says, __LINE__);
        in.host_equal = true;
        expect(in, route, FF_PAIR_REASON_PATH_TABLE_SAYS, says, __LINE__);
        in.my_agent_registered = false;
        expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_AGENT_UNREACHABLE, "agent-unreachable", __LINE__);
        in.my_agent_registered = true, in.peer_agent_registered = false;
        expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_PEER_AGENT_UNREACHABLE, "peer-agent-unreachable", __LINE__);
        in.my_agent_registered = false;
        expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_AGENT_UNREACHABLE, "agent-unreachable", __LINE__);
        /* one way only, whichever direction and whatever the other says; registration does not matter */
        const ff_path_kind_t others[] = {FF_PATH_SHM, FF_PATH_TCP, FF_PATH_SELF};
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); ++i) {
            in = planned(path, others[i]), in.my_agent_registered = true, in.peer_agent_registered = true;
            expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_ONE_WAY, one_way, __LINE__);
            in = planned(others[i], path);
            expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_ONE_WAY, one_way, __LINE__);
        }
    }
    /* h one way and r the other: the same text on both sides */
    in = planned(FF_PATH_HANDOFF, FF_PATH_ROUTER), in.my_agent_registered = true, in.peer_agent_registered = true;
    expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_ONE_WAY, "path-table-says-handoff-one-way", __LINE__);

    /* pairs the table does not cover: unrestricted by it, but a rank of my own MPI job missing from it is
     * a table that does not describe this job */
    in = base(), in.table_covers_peer = false, in.path_to_peer = FF_PATH_TCP, in.path_from_peer = FF_PATH_TCP;
    expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_NOT_IN_PATH_TABLE, "not-in-path-table", __LINE__);
    in.peer_in_my_mpi_job = false; /* a spawned job's rank: host identity and the proof decide */
    expect(in, FF_PAIR_ROUTE_PROVE, FF_PAIR_REASON_NEEDS_PROOF, "needs-proof", __LINE__);
    in = base(), in.table_covers_me = false, in.table_covers_peer = false; /* mpirun without ffrun */
    in.path_to_peer = FF_PATH_TCP, in.path_from_peer = FF_PATH_HANDOFF;
    expect(in, FF_PAIR_ROUTE_PROVE, FF_PAIR_REASON_NEEDS_PROOF, "needs-proof", __LINE__);
    in.host_equal = false;
    expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_HOST_MISMATCH, "host-mismatch", __LINE__);

    /* same host per identity */
    in = base(), in.host_equal = false;
    expect(in, FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_HOST_MISMATCH, "host-mismatch", __LINE__);
    expect(base(), FF_PAIR_ROUTE_PROVE, FF_PAIR_REASON_NEEDS_PROOF, "needs-proof", __LINE__);

    /* the proof's result */
    expect(proved(FF_OK, true, NULL), FF_PAIR_ROUTE_SHM, FF_PAIR_REASON_SHM, "shm", __LINE__);
    expect(proved(FF_OK, false, "own-segment-corrupt"), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_VERDICT,
           "own-segment-corrupt", __LINE__);
    expect(proved(FF_OK, false, "verdict-unwritable"), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_VERDICT,
           "verdict-unwritable", __LINE__);
    /* a reason that is not an identifier never reaches the report as it is */
    expect(proved(FF_OK, false, "bad reason\nend"), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_VERDICT, "untrusted-verdict",
           __LINE__);
    expect(proved(FF_OK, false, NULL), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_VERDICT, "untrusted-verdict", __LINE__);
    expect(proved(FF_ERR_BAD_MAGIC, false, NULL), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_SEGMENT_STATUS,
           "segment-bad-magic", __LINE__);
    expect(proved(FF_ERR_NOT_FOUND, false, NULL), FF_PAIR_ROUTE_NEXT_BTL, FF_PAIR_REASON_SEGMENT_STATUS,
           "segment-not-found", __LINE__);
    expect(proved(FF_ERR_VERDICT_CONFLICT, false, "segment-untrusted"), FF_PAIR_ROUTE_FATAL,
           FF_PAIR_REASON_VERDICT_CONFLICT, "segment-untrusted", __LINE__);
    expect(proved(FF_ERR_VERDICT_CONFLICT, false, NULL), FF_PAIR_ROUTE_FATAL, FF_PAIR_REASON_VERDICT_CONFLICT,
           "verdict-conflict", __LINE__);

    /* the outcome's path is the pair's, the same on both sides */
    ff_pair_outcome_t out;
    in = planned(FF_PATH_SHM, FF_PATH_TCP);
    ff_pair_policy_decide(&in, &out);
    CHECK(out.path == FF_PATH_TCP);
    in = base(), in.table_covers_peer = false, in.peer_in_my_mpi_job = false, in.path_to_peer = FF_PATH_TCP;
    ff_pair_policy_decide(&in, &out);
    CHECK(out.path == FF_PATH_SHM);

    /* NULL inputs: declined, never a crash; NULL output: nothing written */
    ff_pair_policy_decide(NULL, &out);
    CHECK(out.route == FF_PAIR_ROUTE_NEXT_BTL && out.reason == FF_PAIR_REASON_NO_MODEX);
    ff_pair_policy_decide(&in, NULL);

    /* names */
    CHECK(strcmp(ff_pair_route_name(FF_PAIR_ROUTE_HANDOFF), "FF_PAIR_ROUTE_HANDOFF") == 0);
    CHECK(strcmp(ff_pair_route_name(FF_PAIR_ROUTE_FATAL), "FF_PAIR_ROUTE_FATAL") == 0);
    CHECK(strcmp(ff_pair_route_name(FF_PAIR_ROUTE_COUNT), "FF_PAIR_ROUTE_UNKNOWN") == 0);
    CHECK(strcmp(ff_pair_reason_name(FF_PAIR_REASON_VERDICT_CONFLICT), "FF_PAIR_REASON_VERDICT_CONFLICT") == 0);
    CHECK(strcmp(ff_pair_reason_name(FF_PAIR_REASON_COUNT), "FF_PAIR_REASON_UNKNOWN") == 0);
    for (int r = 0; r < FF_PAIR_REASON_COUNT; ++r) {
        CHECK(strncmp(ff_pair_reason_name((ff_pair_reason_t) r), "FF_PAIR_REASON_", 15) == 0);
    }
    return check_exit_code("test_pair_policy");
}
