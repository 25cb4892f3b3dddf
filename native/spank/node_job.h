/*
 * The node side of a freeflow job on an existing Slurm (docs/slurm.md, "Your own Slurm"): what the SPANK
 * plugin does as root on each node from the path table that ffrun passed through srun (--freeflow-table).
 * Everything here takes its input as hostile: the table comes from the submitting user, the files from
 * directories other users might reach.
 */
#ifndef FREEFLOW_SPANK_NODE_JOB_H
#define FREEFLOW_SPANK_NODE_JOB_H

#include "freeflow.h"

#include <stddef.h>
#include <sys/types.h>

/* What a SPANK option value may carry: far below the kernel's 128 KiB per environment string. */
#define NODE_JOB_MAX_TABLE (120 * 1024)

/* Decodes the transported table (lines separated by ','; docs/slurm.md) and reads it with the core's
 * reader (ff_path_table_parse, every check of docs/path-table.md); the table must be of job `job`. The
 * decoded text, lines ended by '\n', is the table's ff_path_table_text, written to <dir>/paths.
 * Returns the table (ff_path_table_free), or NULL with a reason in `why`. */
ff_path_table_t *node_job_parse_table(const char *encoded, const char *job, char *why, size_t why_size);

/* Builds the agent's `peers=` value from the site's agents file (lines "<node> <ipv4>:<port>", root's, not
 * writable by group or others): every host of the table must be listed. 0, or -1 with `why`. */
int node_job_peers(const char *agents_file, const ff_path_table_t *table, char *peers, size_t peers_size, char *why,
                   size_t why_size);

/* Removes `name` below `parent_fd` and everything in it without following a symlink (bounded depth).
 * Missing is success. */
int node_job_remove_tree(int parent_fd, const char *name);

/* One request line to the agent's control socket and its reply line; the connection stays open in
 * *fd_inout when it was -1 and the reply is `ok` (a lease=1 registration lives as long as it). */
int node_job_agent_request(const char *control, int *fd_inout, const char *request, char *reply, size_t reply_size);

/* Reads all of fd (a regular file of at most `max` bytes) into a NUL-terminated buffer to free(); closes fd.
 * NULL on failure. */
char *node_job_read_all(int fd, size_t max, size_t *size_out);

#endif
