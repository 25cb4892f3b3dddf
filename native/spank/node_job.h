/*
 * The node side of a freeflow job on an existing Slurm (docs/slurm.md, "Your own Slurm"): what the SPANK
 * plugin does as root on each node from the path table that ffrun passed through srun (--freeflow-table).
 * Everything here takes its input as hostile: the table comes from the submitting user, the files from
 * directories other users might reach.
 */
#ifndef FREEFLOW_SPANK_NODE_JOB_H
#define FREEFLOW_SPANK_NODE_JOB_H

#include <stddef.h>
#include <sys/types.h>

#define NODE_JOB_MAX_NAME  64
#define NODE_JOB_MAX_HOSTS 1024
#define NODE_JOB_MAX_RANKS 4096
/* What a SPANK option value may carry: far below the kernel's 128 KiB per environment string. */
#define NODE_JOB_MAX_TABLE (120 * 1024)

struct node_job_table {
    char job[NODE_JOB_MAX_NAME + 1];
    char key[33];
    int host_count;
    int rank_count;
    char (*host_names)[NODE_JOB_MAX_NAME + 1];
    int *rank_host;
    char (*rank_container)[NODE_JOB_MAX_NAME + 1];
    /* the table as the BTL reads it (lines ended by '\n'), written to <dir>/paths */
    char *text;
    size_t text_length;
};

/* Parses the transported table (lines separated by ','; docs/path-table.md) strictly: version 1 or 2,
 * the given job id, counts that match, names of [A-Za-z0-9._-], path letters of the version, `end` last.
 * Returns 0, or -1 with a reason in `why`. */
int node_job_parse_table(const char *encoded, const char *job, struct node_job_table *out, char *why, size_t why_size);
void node_job_free_table(struct node_job_table *table);

/* The index of `node` among the table's hosts, or -1. */
int node_job_host_index(const struct node_job_table *table, const char *node);

/* Builds the agent's `peers=` value from the site's agents file (lines "<node> <ipv4>:<port>", root's, not
 * writable by group or others): every host of the table must be listed. 0, or -1 with `why`. */
int node_job_peers(const char *agents_file, const struct node_job_table *table, char *peers, size_t peers_size,
                   char *why, size_t why_size);

/* Removes `name` below `parent_fd` and everything in it without following a symlink (bounded depth).
 * Missing is success. */
int node_job_remove_tree(int parent_fd, const char *name);

/* One request line to the agent's control socket and its reply line; the connection stays open in
 * *fd_inout when it was -1 and the reply is `ok` (a lease=1 registration lives as long as it). */
int node_job_agent_request(const char *control, int *fd_inout, const char *request, char *reply, size_t reply_size);

/* Reads all of fd (a regular file of at most `max` bytes) into a NUL-terminated buffer to free(); closes fd.
 * NULL on failure. */
char *node_job_read_all(int fd, size_t max, size_t *size_out);

/* A name of the table or the agents file: 1-64 of [A-Za-z0-9._-]. */
int node_job_valid_name(const char *text, size_t length);

#endif
