/*
 * RDMA operations of the freeflow BTL (docs/onesided.md): put, get and atomics between containers that
 * share nothing but the job's shared directory, so that Open MPI's osc rdma works there: done by the
 * origin itself on window pages shared through that directory (single copy), or carried over the rings
 * and handoff sockets as requests that the TARGET executes against its own registration table.
 *
 * They live in a module of their own (mca_btl_freeflow_rdma_module), without MCA_BTL_FLAGS_SEND: ob1
 * uses RDMA only through BTLs that also carry its sends to the same endpoint, so two-sided traffic keeps
 * its copy-once path, and only osc rdma sees these operations.
 */
#ifndef MCA_BTL_FREEFLOW_RDMA_H
#define MCA_BTL_FREEFLOW_RDMA_H

#include "btl_freeflow.h"

BEGIN_C_DECLS

/* Ring tags of the BTL-private range (MCA_BTL_TAG_BTL .. MCA_BTL_TAG_PML-1): never registered with
 * Open MPI; recv.c hands them to mca_btl_freeflow_rdma_receive with the ring's producer. */
#define MCA_BTL_FREEFLOW_TAG_RDMA_REQUEST  (MCA_BTL_TAG_BTL + 0x10)
#define MCA_BTL_FREEFLOW_TAG_RDMA_RESPONSE (MCA_BTL_TAG_BTL + 0x11)

extern mca_btl_freeflow_module_t mca_btl_freeflow_rdma_module;

/* Parameters (btl_freeflow_rdma*) and the module's fixed fields; called from component_register. */
void mca_btl_freeflow_rdma_register(void);
/* After the shm module is set up in component_init: false when disabled (btl_freeflow_rdma=0) or out of
 * memory; the module is then not offered to Open MPI. */
bool mca_btl_freeflow_rdma_init(void);
void mca_btl_freeflow_rdma_fini(void);

/* A request or response record from the ring `producer` claimed in our segment. `data` is in shared
 * memory the producer can still write: everything is copied out before it is checked. */
void mca_btl_freeflow_rdma_receive(uint64_t producer, uint8_t tag, const void *data, size_t len);

/* Responses that found no room in a ring; progress retries them. */
extern _Atomic int32_t mca_btl_freeflow_rdma_deferred_count;
int mca_btl_freeflow_rdma_progress(void);

END_C_DECLS

#endif
