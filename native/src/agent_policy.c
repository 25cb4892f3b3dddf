/* The inter-host data plane decision: pure, so unit tests reach every branch without root, agents or
 * Open MPI. ffrun (path table) and the BTL (pairs the table does not cover) call the same function. */
#include "freeflow.h"

#include <string.h>

ff_plane_t ff_plane_decide(ff_plane_choice_t choice, const ff_host_caps_t *a, const ff_host_caps_t *b,
                           ff_plane_reason_t *reason)
{
    ff_plane_reason_t why;
    ff_plane_t plane;
    const bool agents = a && b && a->agent_reachable && b->agent_reachable;
    switch (choice) {
    case FF_PLANE_CHOICE_TCP: plane = FF_PLANE_TCP, why = FF_PLANE_REASON_USER_TCP; break;
    case FF_PLANE_CHOICE_AUTO:
        if (!agents) {
            plane = FF_PLANE_TCP, why = FF_PLANE_REASON_AGENT_UNREACHABLE;
        } else if (a->rdma_active && b->rdma_active) {
            /* RDMA queue pairs are not descriptors: they cannot be handed off, so RDMA means the router */
            plane = FF_PLANE_ROUTER, why = FF_PLANE_REASON_BOTH_RDMA;
        } else {
            plane = FF_PLANE_HANDOFF, why = FF_PLANE_REASON_NO_COMMON_RDMA;
        }
        break;
    case FF_PLANE_CHOICE_HANDOFF:
    case FF_PLANE_CHOICE_ROUTER:
        if (!agents) {
            /* Both planes need an agent on each side; the overlay always exists. The reason lets the
             * caller warn that the user's choice could not be honoured. */
            plane = FF_PLANE_TCP, why = FF_PLANE_REASON_CHOICE_NEEDS_AGENT;
        } else if (choice == FF_PLANE_CHOICE_HANDOFF) {
            plane = FF_PLANE_HANDOFF, why = FF_PLANE_REASON_USER_HANDOFF;
        } else {
            plane = FF_PLANE_ROUTER, why = FF_PLANE_REASON_USER_ROUTER;
        }
        break;
    default: plane = FF_PLANE_TCP, why = FF_PLANE_REASON_INVALID_CHOICE; break;
    }
    if (reason) {
        *reason = why;
    }
    return plane;
}

ff_plane_t ff_plane_decide_pair(ff_plane_choice_t choice, const ff_host_caps_t *a, const ff_host_caps_t *b,
                                bool agents_reach_each_other, ff_plane_reason_t *reason)
{
    ff_plane_reason_t why;
    ff_plane_t plane = ff_plane_decide(choice, a, b, &why);
    /* Only a plane the agents carry depends on their link; tcp (whatever the reason) stays as decided. */
    if (plane != FF_PLANE_TCP && !agents_reach_each_other) {
        plane = FF_PLANE_TCP, why = FF_PLANE_REASON_AGENTS_CANNOT_REACH;
    }
    if (reason) {
        *reason = why;
    }
    return plane;
}

const char *ff_plane_name(ff_plane_t plane)
{
    static const char *const names[FF_PLANE_COUNT] = {"handoff", "router", "tcp"};
    return (unsigned) plane < FF_PLANE_COUNT ? names[plane] : "unknown";
}

static const char *const choice_names[FF_PLANE_CHOICE_COUNT] = {"auto", "handoff", "router", "tcp"};

const char *ff_plane_choice_name(ff_plane_choice_t choice)
{
    return (unsigned) choice < FF_PLANE_CHOICE_COUNT ? choice_names[choice] : "unknown";
}

ff_status_t ff_plane_choice_parse(const char *name, ff_plane_choice_t *out)
{
    if (!name || !out) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    for (int i = 0; i < FF_PLANE_CHOICE_COUNT; ++i) {
        if (strcmp(name, choice_names[i]) == 0) {
            *out = (ff_plane_choice_t) i;
            return FF_OK;
        }
    }
    return FF_ERR_INVALID_ARGUMENT;
}

static const struct {
    const char *name;
    const char *text;
} reasons[FF_PLANE_REASON_COUNT] = {
    {"FF_PLANE_REASON_USER_TCP", "tcp was chosen by the user: traffic takes the containers' overlay network"},
    {"FF_PLANE_REASON_AGENT_UNREACHABLE",
     "an ffagent is not running or does not serve this job on one of the hosts, so only the overlay is left; "
     "start ffagent on every host (deploy/systemd/ffagent.service) to get the host network"},
    {"FF_PLANE_REASON_BOTH_RDMA", "both hosts have an active RDMA port: traffic goes through the routers"},
    {"FF_PLANE_REASON_NO_COMMON_RDMA",
     "the hosts do not both have RDMA: the agents hand host-network TCP sockets to the ranks (the default)"},
    {"FF_PLANE_REASON_USER_HANDOFF", "handoff was chosen by the user"},
    {"FF_PLANE_REASON_USER_ROUTER", "router was chosen by the user"},
    {"FF_PLANE_REASON_CHOICE_NEEDS_AGENT",
     "handoff and router need an ffagent on both hosts and one is missing, so the overlay (tcp) is used; "
     "start ffagent on every host or choose tcp"},
    {"FF_PLANE_REASON_INVALID_CHOICE", "the choice is not one of auto, handoff, router, tcp: tcp is used"},
    {"FF_PLANE_REASON_AGENTS_CANNOT_REACH",
     "the ffagents of both hosts serve the job but could not complete their handshake with each other over the "
     "hosts' network (agent port filtered or a link down?), so the overlay (tcp) is used; let the agents reach "
     "each other's --listen port"},
};

const char *ff_plane_reason_name(ff_plane_reason_t reason)
{
    return (unsigned) reason < FF_PLANE_REASON_COUNT ? reasons[reason].name : "FF_PLANE_REASON_UNKNOWN";
}

const char *ff_plane_reason_describe(ff_plane_reason_t reason)
{
    return (unsigned) reason < FF_PLANE_REASON_COUNT ? reasons[reason].text : "unknown reason";
}
