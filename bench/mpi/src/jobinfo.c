#include "jobinfo.h"

#include <ctype.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The affinity mask as a CPU list ("0-1,4"): a wrong binding (every rank on core 0, as Open MPI does
 * by default when each container looks like its own node) explains an absurd latency. */
static void describe_affinity(char *out, size_t len)
{
    cpu_set_t set;
    out[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        snprintf(out, len, "unknown");
        return;
    }
    size_t used = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && used < len; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        int last = cpu;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) last++;
        const char *comma = used > 0 ? "," : "";
        int n = last > cpu ? snprintf(out + used, len - used, "%s%d-%d", comma, cpu, last)
                           : snprintf(out + used, len - used, "%s%d", comma, cpu);
        if (n < 0) break;
        used += (size_t) n;
        cpu = last;
    }
}

static void trim_trailing_space(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char) s[n - 1])) s[--n] = '\0';
}

bool ffb_gather_job_info(MPI_Comm comm, struct ffb_job_info *info)
{
    int rank;
    memset(info, 0, sizeof *info);
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &info->nranks);

    char hostname[FFB_NAME_LEN] = {0}, cpus[FFB_NAME_LEN];
    if (gethostname(hostname, sizeof hostname - 1) != 0) snprintf(hostname, sizeof hostname, "unknown");
    describe_affinity(cpus, sizeof cpus);

    int allocated = 1;
    if (rank == 0) {
        info->hostnames = calloc((size_t) info->nranks, FFB_NAME_LEN);
        info->cpus = calloc((size_t) info->nranks, FFB_NAME_LEN);
        allocated = info->hostnames != NULL && info->cpus != NULL;
    }
    MPI_Bcast(&allocated, 1, MPI_INT, 0, comm);
    if (!allocated) {
        ffb_free_job_info(info);
        return false;
    }
    MPI_Gather(hostname, FFB_NAME_LEN, MPI_CHAR, info->hostnames, FFB_NAME_LEN, MPI_CHAR, 0, comm);
    MPI_Gather(cpus, FFB_NAME_LEN, MPI_CHAR, info->cpus, FFB_NAME_LEN, MPI_CHAR, 0, comm);

    int len = 0;
    MPI_Get_library_version(info->library_version, &len);
    trim_trailing_space(info->library_version);
    MPI_Get_version(&info->mpi_version, &info->mpi_subversion);
    info->wtick = MPI_Wtick();
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(info->started_at, sizeof info->started_at, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return true;
}

void ffb_free_job_info(struct ffb_job_info *info)
{
    free(info->hostnames);
    free(info->cpus);
    info->hostnames = info->cpus = NULL;
}
