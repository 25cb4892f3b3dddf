/*
 * Idle waiting with more ranks than cores (docs/btl.md, "4 ranks in 4 containers"): a rank with nothing
 * to do sleeps on the doorbell of its segment (freeflow.h) instead of yielding, and a sender that commits
 * into its ring wakes it. component.c sleeps; the send paths ring.
 */
#ifndef MCA_BTL_FREEFLOW_IDLE_H
#define MCA_BTL_FREEFLOW_IDLE_H

#include "btl_freeflow_endpoint.h"

#include "opal/runtime/opal_progress.h"

/* After a commit into the endpoint's ring. Only oversubscribed jobs (mpi_yield_when_idle, the same in
 * every rank mpirun starts) sleep, so elsewhere a commit pays one predictable branch and no fence. A
 * receiver that sleeps while its sender does not ring only waits out its bounded timeout. */
static inline void mca_btl_freeflow_wake_receiver(mca_btl_freeflow_endpoint_t *endpoint)
{
    if (OPAL_UNLIKELY(opal_progress_yield_when_idle)) {
        (void) ff_doorbell_ring(endpoint->peer_segment);
    }
}

/* True when a ring of our segment holds a record or a ring was claimed but not yet accepted: the re-check
 * between ff_doorbell_arm and ff_doorbell_wait (recv.c). Also true when another thread is polling. */
bool mca_btl_freeflow_inbound_pending(void);

#endif
