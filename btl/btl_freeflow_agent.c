/*
 * The rank's one registration with its host's ffagent, shared by the handoff module (path `h`) and the
 * router module (path `r`). The agent knows a rank by its owner id once (a second registration of the
 * same owner is refused, DUPLICATE_OWNER), and both planes need it: `h` for the sockets the agent pushes
 * over it, `r` because the agent opens a route only for a registered owner. A rank whose row has both
 * letters (hosts with and without RDMA in one job) registers once and both modules use the connection.
 * Only the handoff module reads from it (ff_agent_accept); the router keeps it as its proof of
 * registration.
 *
 * Acquired in the component's init and released in the modules' finalize, both on the thread that
 * initializes and finalizes MPI: no lock.
 */
#include "btl_freeflow.h"

static struct {
    ff_agent_conn_t *conn;
    unsigned int users;
} shared;

ff_status_t mca_btl_freeflow_agent_acquire(ff_agent_conn_t **conn, ff_agent_refusal_t *why)
{
    if (0 == shared.users) {
        mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
        const ff_status_t status = ff_agent_register(c->dir, &c->key, c->my_id, &shared.conn, why);
        if (FF_OK != status) {
            shared.conn = NULL;
            *conn = NULL;
            return status;
        }
    }
    ++shared.users;
    *conn = shared.conn;
    return FF_OK;
}

void mca_btl_freeflow_agent_release(ff_agent_conn_t *conn)
{
    if (NULL == conn || conn != shared.conn || 0 == shared.users) {
        return;
    }
    if (0 == --shared.users) {
        ff_agent_close(shared.conn); /* the agent forgets the registration: EOF */
        shared.conn = NULL;
    }
}
