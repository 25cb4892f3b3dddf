/*
 * What each pair actually used, written for ffrun at MPI_Finalize (docs/btl-report.md).
 */
#include "btl_freeflow.h"
#include "btl_freeflow_endpoint.h"

#include "opal/util/output.h"
#include "opal/util/proc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

OBJ_CLASS_INSTANCE(mca_btl_freeflow_decline_t, opal_list_item_t, NULL, NULL);

void mca_btl_freeflow_record_decline(uint32_t vpid, const char *reason)
{
    mca_btl_freeflow_decline_t *decline = OBJ_NEW(mca_btl_freeflow_decline_t);
    if (NULL == decline) {
        return;
    }
    decline->vpid = vpid;
    snprintf(decline->reason, sizeof(decline->reason), "%s", reason);
    opal_list_append(&mca_btl_freeflow_component.declines, &decline->super);
}

static bool report_wanted(void)
{
    const mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    return c->report != 0 && c->paths_apply_to_me;
}

void mca_btl_freeflow_write_report(void)
{
    mca_btl_freeflow_component_t *c = &mca_btl_freeflow_component;
    if (!report_wanted()) {
        return;
    }
    const opal_vpid_t rank = OPAL_PROC_MY_NAME.vpid;
    char path[4096], temporary[4200];
    snprintf(path, sizeof(path), "%s/report.%u", c->dir, (unsigned) rank);
    snprintf(temporary, sizeof(temporary), "%s.tmp.%d", path, (int) getpid());
    FILE *file = fopen(temporary, "w");
    if (NULL == file) {
        opal_output(0, "freeflow: cannot write the path report %s: %s", temporary, strerror(errno));
        return;
    }
    fprintf(file, "freeflow-report 1\nrank %u\n", (unsigned) rank);
    mca_btl_freeflow_endpoint_t *endpoint;
    /* the peer's name comes from peer_id: Open MPI may have released the proc objects by now */
    OPAL_LIST_FOREACH(endpoint, &c->endpoints, mca_btl_freeflow_endpoint_t) {
        if ((opal_jobid_t) (endpoint->peer_id >> 32) == OPAL_PROC_MY_NAME.jobid) {
            fprintf(file, "peer %u shm %llu %llu\n", (unsigned) (endpoint->peer_id & 0xffffffffu),
                    (unsigned long long) endpoint->sent_fragments, (unsigned long long) endpoint->sent_bytes);
        }
    }
    mca_btl_freeflow_decline_t *decline;
    OPAL_LIST_FOREACH(decline, &c->declines, mca_btl_freeflow_decline_t) {
        fprintf(file, "peer %u declined %s\n", (unsigned) decline->vpid, decline->reason);
    }
    fprintf(file, "end\n");
    const bool written = 0 == ferror(file);
    if (0 != fclose(file) || !written || 0 != rename(temporary, path)) {
        opal_output(0, "freeflow: cannot write the path report %s: %s", path, strerror(errno));
        unlink(temporary);
    }
}
