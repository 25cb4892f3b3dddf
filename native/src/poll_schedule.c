/* The consumer's poll schedule (freeflow.h, "Poll schedule"): storage only; a pass is inline. */
#include "freeflow.h"

#include <stdlib.h>
#include <string.h>

ff_status_t ff_poll_schedule_init(ff_poll_schedule_t *schedule, uint32_t capacity, uint32_t cold_per_pass,
                                  uint32_t demote_after)
{
    if (!schedule || capacity == 0 || capacity >= FF_POLL_COLD) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    memset(schedule, 0, sizeof(*schedule));
    schedule->hot = calloc(capacity, sizeof(uint32_t));
    schedule->hot_slot = calloc(capacity, sizeof(uint32_t));
    schedule->quiet = calloc(capacity, sizeof(uint32_t));
    if (!schedule->hot || !schedule->hot_slot || !schedule->quiet) {
        ff_poll_schedule_fini(schedule);
        return FF_ERR_NO_MEMORY;
    }
    schedule->capacity = capacity;
    schedule->cold_per_pass = cold_per_pass ? cold_per_pass : 1;
    schedule->demote_after = demote_after;
    return FF_OK;
}

void ff_poll_schedule_fini(ff_poll_schedule_t *schedule)
{
    if (!schedule) {
        return;
    }
    free(schedule->hot);
    free(schedule->hot_slot);
    free(schedule->quiet);
    memset(schedule, 0, sizeof(*schedule));
}

ff_status_t ff_poll_schedule_add(ff_poll_schedule_t *schedule)
{
    if (!schedule || !schedule->hot) {
        return FF_ERR_INVALID_ARGUMENT;
    }
    if (schedule->rings >= schedule->capacity) {
        return FF_ERR_FULL;
    }
    const uint32_t ring = schedule->rings++;
    schedule->quiet[ring] = 0;
    schedule->hot_slot[ring] = schedule->hot_count;
    schedule->hot[schedule->hot_count++] = ring;
    return FF_OK;
}
