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

void mca_btl_freeflow_record_decline(uint64_t peer_id, const char *reason, bool verdict_published)
{
    mca_btl_freeflow_decline_t *decline = OBJ_NEW(mca_btl_freeflow_decline_t);
    if (NULL == decline) {
        return;
    }
    decline->vpid = (uint32_t) (peer_id & 0xffffffffu);
    decline->peer_id = peer_id;
    decline->verdict_published = verdict_published;
    snprintf(decline->reason, sizeof(decline->reason), "%s", reason);
    opal_list_append(&mca_btl_freeflow_component.declines, &decline->super);
}

/* A pair is decided once: asking again could contradict the verdict the peer adopted. */
mca_btl_freeflow_decline_t *mca_btl_freeflow_find_decline(uint64_t peer_id)
{
    mca_btl_freeflow_decline_t *decline;
    OPAL_LIST_FOREACH(decline, &mca_btl_freeflow_component.declines, mca_btl_freeflow_decline_t)
    {
        if (decline->peer_id == peer_id) {
            return decline;
        }
    }
    return NULL;
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
    char name[64];
    snprintf(name, sizeof(name), "report.%u", (unsigned) rank);
    char *text = NULL;
    size_t len = 0;
    FILE *file = open_memstream(&text, &len);
    if (NULL == file) {
        MCA_BTL_FREEFLOW_SHOW_HELP("report-not-written", c->dir, name, strerror(errno));
        return;
    }
    fprintf(file, "freeflow-report 1\nrank %u\n", (unsigned) rank);
    mca_btl_freeflow_endpoint_t *endpoint;
    /* the peer's name comes from peer_id: Open MPI may have released the proc objects by now */
    OPAL_LIST_FOREACH(endpoint, &c->endpoints, mca_btl_freeflow_endpoint_t)
    {
        if ((opal_jobid_t) (endpoint->peer_id >> 32) == OPAL_PROC_MY_NAME.jobid) {
            fprintf(file, "peer %u shm %llu %llu\n", (unsigned) (endpoint->peer_id & 0xffffffffu),
                    (unsigned long long) endpoint->sent_fragments, (unsigned long long) endpoint->sent_bytes);
        }
    }
    mca_btl_freeflow_sock_report(file);
    mca_btl_freeflow_router_report(file);
    mca_btl_freeflow_decline_t *decline;
    OPAL_LIST_FOREACH(decline, &c->declines, mca_btl_freeflow_decline_t)
    {
        /* a pair the shm module declined because it is planned h is reported by the sock module */
        if ((opal_jobid_t) (decline->peer_id >> 32) == OPAL_PROC_MY_NAME.jobid &&
            !mca_btl_freeflow_sock_carries(decline->peer_id) && !mca_btl_freeflow_router_carries(decline->peer_id)) {
            fprintf(file, "peer %u declined %s\n", (unsigned) decline->vpid, decline->reason);
        }
    }
    fprintf(file, "end\n");
    const bool written = 0 == ferror(file);
    fclose(file);
    /* the core writes it safely: unguessable temporary name, O_EXCL|O_NOFOLLOW, renamed into place in the
     * verified directory; a symlink planted under either name is never followed */
    ff_status_t status = written ? ff_dir_write_file(c->dirfd, name, text, len) : FF_ERR_NO_MEMORY;
    if (FF_OK != status) {
        char detail[128];
        snprintf(detail, sizeof(detail), "%s (%s)", ff_status_name(status), strerror(errno));
        MCA_BTL_FREEFLOW_SHOW_HELP("report-not-written", c->dir, name, detail);
    }
    free(text);
}
