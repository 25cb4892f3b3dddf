/* The inter-host plane decision: every branch, its reason, and the names. Pure: no root, no agent. */
#include "check.h"

#include "freeflow.h"

static void expect(ff_plane_choice_t choice, bool agent_a, bool rdma_a, bool agent_b, bool rdma_b, ff_plane_t plane,
                   ff_plane_reason_t reason, int line)
{
    const ff_host_caps_t a = {agent_a, rdma_a}, b = {agent_b, rdma_b};
    ff_plane_reason_t got_reason = FF_PLANE_REASON_COUNT;
    const ff_plane_t got = ff_plane_decide(choice, &a, &b, &got_reason);
    /* symmetric: the two hosts of a pair must decide the same plane */
    ff_plane_reason_t swapped_reason = FF_PLANE_REASON_COUNT;
    const ff_plane_t swapped = ff_plane_decide(choice, &b, &a, &swapped_reason);
    if (got != plane || got_reason != reason || swapped != got || swapped_reason != got_reason) {
        fprintf(stderr,
                "line %d: %s with a(agent=%d rdma=%d) b(agent=%d rdma=%d): got %s/%s (swapped %s/%s), "
                "expected %s/%s\n",
                line, ff_plane_choice_name(choice), agent_a, rdma_a, agent_b, rdma_b, ff_plane_name(got),
                ff_plane_reason_name(got_reason), ff_plane_name(swapped), ff_plane_reason_name(swapped_reason),
                ff_plane_name(plane), ff_plane_reason_name(reason));
        ++check_failures;
    }
}

int main(void)
{
    /* auto */
    expect(FF_PLANE_CHOICE_AUTO, true, false, true, false, FF_PLANE_HANDOFF, FF_PLANE_REASON_NO_COMMON_RDMA, __LINE__);
    expect(FF_PLANE_CHOICE_AUTO, true, true, true, false, FF_PLANE_HANDOFF, FF_PLANE_REASON_NO_COMMON_RDMA, __LINE__);
    expect(FF_PLANE_CHOICE_AUTO, true, true, true, true, FF_PLANE_ROUTER, FF_PLANE_REASON_BOTH_RDMA, __LINE__);
    expect(FF_PLANE_CHOICE_AUTO, false, true, true, true, FF_PLANE_TCP, FF_PLANE_REASON_AGENT_UNREACHABLE, __LINE__);
    expect(FF_PLANE_CHOICE_AUTO, false, false, false, false, FF_PLANE_TCP, FF_PLANE_REASON_AGENT_UNREACHABLE, __LINE__);
    /* forced tcp wins over everything */
    expect(FF_PLANE_CHOICE_TCP, true, true, true, true, FF_PLANE_TCP, FF_PLANE_REASON_USER_TCP, __LINE__);
    expect(FF_PLANE_CHOICE_TCP, false, false, true, false, FF_PLANE_TCP, FF_PLANE_REASON_USER_TCP, __LINE__);
    /* forced handoff: even with RDMA on both; falls back to tcp without an agent */
    expect(FF_PLANE_CHOICE_HANDOFF, true, true, true, true, FF_PLANE_HANDOFF, FF_PLANE_REASON_USER_HANDOFF, __LINE__);
    expect(FF_PLANE_CHOICE_HANDOFF, true, false, false, false, FF_PLANE_TCP, FF_PLANE_REASON_CHOICE_NEEDS_AGENT,
           __LINE__);
    /* forced router: also without RDMA (UCX over TCP); falls back to tcp without an agent */
    expect(FF_PLANE_CHOICE_ROUTER, true, false, true, false, FF_PLANE_ROUTER, FF_PLANE_REASON_USER_ROUTER, __LINE__);
    expect(FF_PLANE_CHOICE_ROUTER, false, true, true, true, FF_PLANE_TCP, FF_PLANE_REASON_CHOICE_NEEDS_AGENT, __LINE__);
    /* out-of-range choice */
    expect((ff_plane_choice_t) 42, true, true, true, true, FF_PLANE_TCP, FF_PLANE_REASON_INVALID_CHOICE, __LINE__);
    /* agents that serve the job but cannot reach each other: tcp for every plane they would carry */
    const ff_host_caps_t both = {true, true}, none = {false, false};
    const ff_plane_choice_t agent_planes[] = {FF_PLANE_CHOICE_AUTO, FF_PLANE_CHOICE_HANDOFF, FF_PLANE_CHOICE_ROUTER};
    for (size_t i = 0; i < sizeof(agent_planes) / sizeof(agent_planes[0]); ++i) {
        ff_plane_reason_t why = FF_PLANE_REASON_COUNT;
        CHECK(ff_plane_decide_pair(agent_planes[i], &both, &both, false, &why) == FF_PLANE_TCP);
        CHECK(why == FF_PLANE_REASON_AGENTS_CANNOT_REACH);
        CHECK(ff_plane_decide_pair(agent_planes[i], &both, &both, true, &why) != FF_PLANE_TCP);
    }
    {
        ff_plane_reason_t why = FF_PLANE_REASON_COUNT;
        /* a missing agent or the user's tcp keeps its own reason */
        CHECK(ff_plane_decide_pair(FF_PLANE_CHOICE_AUTO, &none, &both, false, &why) == FF_PLANE_TCP);
        CHECK(why == FF_PLANE_REASON_AGENT_UNREACHABLE);
        CHECK(ff_plane_decide_pair(FF_PLANE_CHOICE_TCP, &both, &both, false, &why) == FF_PLANE_TCP);
        CHECK(why == FF_PLANE_REASON_USER_TCP);
        CHECK(ff_plane_decide_pair(FF_PLANE_CHOICE_ROUTER, &both, &both, true, &why) == FF_PLANE_ROUTER);
        CHECK(why == FF_PLANE_REASON_USER_ROUTER);
    }
    /* NULL capabilities count as "no agent"; a NULL reason pointer is allowed */
    const ff_host_caps_t ok = {true, false};
    CHECK(ff_plane_decide(FF_PLANE_CHOICE_AUTO, NULL, &ok, NULL) == FF_PLANE_TCP);

    /* names round-trip; every reason has a name and a sentence */
    CHECK_NAMES_ROUND_TRIP(ff_plane_choice_t, FF_PLANE_CHOICE_COUNT, ff_plane_choice_name, ff_plane_choice_parse,
                           "rdma");
    ff_plane_choice_t unused;
    CHECK_STATUS(ff_plane_choice_parse(NULL, &unused), FF_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(ff_plane_name(FF_PLANE_HANDOFF), "handoff") == 0);
    CHECK(strcmp(ff_plane_name(FF_PLANE_ROUTER), "router") == 0);
    CHECK(strcmp(ff_plane_name(FF_PLANE_TCP), "tcp") == 0);
    for (int r = 0; r < FF_PLANE_REASON_COUNT; ++r) {
        CHECK(strncmp(ff_plane_reason_name((ff_plane_reason_t) r), "FF_PLANE_REASON_", 16) == 0);
        CHECK(strlen(ff_plane_reason_describe((ff_plane_reason_t) r)) > 20);
    }
    CHECK(strcmp(ff_plane_reason_name(FF_PLANE_REASON_COUNT), "FF_PLANE_REASON_UNKNOWN") == 0);
    return check_exit_code("test_agent_policy");
}
