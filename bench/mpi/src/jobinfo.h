/* Facts about the job that make a result interpretable later: where every rank ran, on which CPUs,
 * with which MPI library. */
#ifndef FFBENCH_JOBINFO_H
#define FFBENCH_JOBINFO_H

#include <mpi.h>
#include <stdbool.h>

enum { FFB_NAME_LEN = 256 };

struct ffb_job_info {
    int nranks;
    char *hostnames; /* nranks * FFB_NAME_LEN (rank 0 only): the container names inside containers */
    char *cpus;      /* nranks * FFB_NAME_LEN (rank 0 only): each rank's CPU affinity, like "0-1" */
    char library_version[MPI_MAX_LIBRARY_VERSION_STRING];
    int mpi_version, mpi_subversion;
    double wtick;
    char started_at[32]; /* UTC, ISO 8601 */
};

/* Collective. Returns false on every rank if rank 0 could not allocate the tables. */
bool ffb_gather_job_info(MPI_Comm comm, struct ffb_job_info *info);
void ffb_free_job_info(struct ffb_job_info *info);

static inline const char *ffb_rank_hostname(const struct ffb_job_info *info, int rank)
{
    return info->hostnames + (size_t) rank * FFB_NAME_LEN;
}

static inline const char *ffb_rank_cpus(const struct ffb_job_info *info, int rank)
{
    return info->cpus + (size_t) rank * FFB_NAME_LEN;
}

#endif
