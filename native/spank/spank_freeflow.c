/*
 * spank_freeflow: freeflow's SPANK plugin, the thin adapter between Slurm and a freeflow job (docs/slurm.md).
 *
 *   plugstack.conf:  required /path/to/spank_freeflow.so [state_root=/run/freeflow-jobs] [shared_dir=/run/freeflow]
 *   srun:            srun --mpi=pmix --freeflow=<job id> ... ffrun-fork-agent --slurm ... -- program
 *
 * In every task of a step that asked for it (--freeflow), before the task drops root, it
 *   - reads the job's task environment, <state_root>/<job>/slurm/task.env (lines NAME=VALUE written by
 *     ffrun: the BTL and its MCA settings, the container map), and puts it into the task's environment;
 *   - checks the node's shared directory (<shared_dir>, the per-node directory the job's containers share)
 *     and the job's path table in it, and names it in FREEFLOW_DIR;
 *   - sets FREEFLOW_SLURM_PLUGIN, without which ffrun-fork-agent --slurm refuses to start a rank (so a node
 *     whose slurmd did not load this plugin fails loudly instead of running ranks without freeflow).
 * Everything it reads lies in directories other users might reach on a real cluster, so all of it is
 * treated as forged until checked: no symlinks (O_NOFOLLOW at every step), owners and modes verified on
 * the open descriptor, sizes and every line bounded, only environment names of freeflow's own families.
 * A step without --freeflow is not touched.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/spank.h>

#include "node_job.h"

SPANK_PLUGIN(freeflow, 1);

#define MAX_JOB_ID     64
#define MAX_PATH       1024
#define MAX_ENV_FILE   (64 * 1024)
#define MAX_NAME       128
#define MAX_VALUE      4096
#define MAX_PATH_TABLE (16 * 1024 * 1024)

static char job_id[MAX_JOB_ID + 1];
static char state_root[MAX_PATH] = "/run/freeflow-jobs";
static char shared_dir[MAX_PATH] = "/run/freeflow";
/* Node pieces of an existing cluster (plugstack arguments; empty: this Slurm is ffrun's embedded one). */
static char node_root[MAX_PATH];
static char agents_file[MAX_PATH];
static char agent_control[MAX_PATH] = "/run/ffagent/control.sock";

/* --freeflow-table: the step's path table from ffrun, checked on arrival (node_job_parse_table); NULL in a
 * step without one. */
static char *table_option;
static ff_path_table_t *table;
static int32_t this_host = -1;
static char this_node[FF_PATH_TABLE_MAX_NAME + 1];
/* Set in slurmstepd by the step's set-up: what its exit must undo. */
static int job_dir_created;
static uint32_t slurm_job_id;
static int agent_lease_fd = -1;

static int take_job_option(int value, const char *optarg, int remote);
static int take_table_option(int value, const char *optarg, int remote);

struct spank_option spank_options[] = {
    {"freeflow", "JOB", "run the step's tasks as ranks of freeflow job JOB (ffrun sets this)", 1, 0, take_job_option},
    {"freeflow-table", "TABLE",
     "the job's path table, lines separated by ',' (ffrun sets this on an existing Slurm: the nodes then create the "
     "job's directory, register it with their ffagent and give each task its own namespaces)",
     1, 1, take_table_option},
    SPANK_OPTIONS_TABLE_END,
};

static int take_table_option(int value, const char *optarg, int remote)
{
    (void) value;
    (void) remote;
    if (optarg == NULL || strlen(optarg) > NODE_JOB_MAX_TABLE) {
        slurm_error("freeflow: --freeflow-table is empty or longer than %d bytes", NODE_JOB_MAX_TABLE);
        return -1;
    }
    free(table_option);
    table_option = strdup(optarg);
    return table_option == NULL ? -1 : 0;
}

static int valid_job_id(const char *text)
{
    size_t length = strlen(text);
    if (length == 0 || length > MAX_JOB_ID) return 0;
    for (size_t i = 0; i < length; i++)
        if (!(islower((unsigned char) text[i]) || isdigit((unsigned char) text[i]) || text[i] == '-')) return 0;
    return 1;
}

static int take_job_option(int value, const char *optarg, int remote)
{
    (void) value;
    (void) remote;
    if (optarg == NULL || !valid_job_id(optarg)) {
        slurm_error("freeflow: --freeflow needs a job id of 1-%d characters [a-z0-9-], not '%s'", MAX_JOB_ID,
                    optarg == NULL ? "" : optarg);
        return -1;
    }
    strcpy(job_id, optarg);
    return 0;
}

/* Plugin arguments from plugstack.conf: absolute paths without "..", bounded. */
static int take_path_argument(const char *argument, const char *key, char *out)
{
    size_t key_length = strlen(key);
    if (strncmp(argument, key, key_length) != 0 || argument[key_length] != '=') return 0;
    const char *value = argument + key_length + 1;
    if (value[0] != '/' || strlen(value) >= MAX_PATH || strstr(value, "..") != NULL) {
        slurm_error("freeflow: plugstack.conf argument %s must be an absolute path without '..'", key);
        return -1;
    }
    strcpy(out, value);
    return 1;
}

static int take_plugstack_arguments(int ac, char **av)
{
    static const struct {
        const char *key;
        char *value;
    } arguments[] = {{"state_root", state_root},
                     {"shared_dir", shared_dir},
                     {"node_root", node_root},
                     {"agents", agents_file},
                     {"agent_control", agent_control}};
    for (int i = 0; i < ac; i++) {
        int taken = 0;
        for (size_t k = 0; k < sizeof arguments / sizeof *arguments && taken == 0; k++)
            taken = take_path_argument(av[i], arguments[k].key, arguments[k].value);
        if (taken < 0) return -1;
        if (taken == 0) {
            slurm_error("freeflow: unknown plugstack.conf argument '%s' (known: state_root=DIR, shared_dir=DIR, "
                        "node_root=DIR, agents=FILE, agent_control=SOCKET)",
                        av[i]);
            return -1;
        }
    }
    return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
    (void) sp;
    return take_plugstack_arguments(ac, av);
}

/* Opens name below dir_fd without following a symlink at the last step (every earlier step was opened the
 * same way), and checks what it is, who owns it and that nobody else may write it. */
static int open_checked(int dir_fd, const char *shown, const char *name, int directory, uid_t owner, mode_t forbidden)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
    if (fd < 0) {
        slurm_error("freeflow: cannot open %s: %s", shown, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (directory ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) || st.st_uid != owner ||
        (st.st_mode & forbidden) != 0) {
        slurm_error("freeflow: refusing %s: it must be a %s owned by uid %u with mode without %04o", shown,
                    directory ? "directory" : "regular file", (unsigned) owner, (unsigned) forbidden);
        close(fd);
        return -1;
    }
    return fd;
}

/* Environment families the task file may set: freeflow's, Open MPI's, PMIx's, UCX's. Never LD_*, PATH
 * or anything else that changes what runs. */
static int allowed_name(const char *name, size_t length)
{
    static const char *const prefixes[] = {"OMPI_MCA_", "PMIX_MCA_", "FREEFLOW_", "FFRUN_", "UCX_"};
    if (length == 0 || length > MAX_NAME) return 0;
    for (size_t i = 0; i < length; i++)
        if (!(isupper((unsigned char) name[i]) || islower((unsigned char) name[i]) ||
              isdigit((unsigned char) name[i]) || name[i] == '_'))
            return 0;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (length > strlen(prefixes[i]) && strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

/* Applies the lines NAME=VALUE of text[0..size) to the task's environment; refuses the whole file on one bad line. */
static int apply_environment(spank_t sp, char *text, size_t size, const char *shown)
{
    /* first pass: validate everything, so that a bad file changes nothing */
    for (int apply = 0; apply <= 1; apply++) {
        size_t line_number = 0;
        for (size_t at = 0; at < size;) {
            char *line = text + at;
            char *end = memchr(line, '\n', size - at);
            if (end == NULL) {
                slurm_error("freeflow: %s: the last line has no newline (a cut-off file?)", shown);
                return -1;
            }
            size_t length = (size_t) (end - line);
            at += length + 1;
            line_number++;
            if (length == 0) continue;
            char *equals = memchr(line, '=', length);
            if (equals == NULL || !allowed_name(line, (size_t) (equals - line)) ||
                length - (size_t) (equals - line) - 1 > MAX_VALUE) {
                slurm_error("freeflow: %s line %zu is not NAME=VALUE with a name of OMPI_MCA_, PMIX_MCA_, FREEFLOW_, "
                            "FFRUN_ or UCX_",
                            shown, line_number);
                return -1;
            }
            for (char *c = equals + 1; c < end; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f) {
                    slurm_error("freeflow: %s line %zu holds a control character", shown, line_number);
                    return -1;
                }
            if (!apply) continue;
            *equals = '\0';
            *end = '\0';
            spank_err_t err = spank_setenv(sp, line, equals + 1, 1);
            *equals = '=';
            *end = '\n';
            if (err != ESPANK_SUCCESS) {
                slurm_error("freeflow: cannot set %.*s: %s", (int) (equals - line), line, spank_strerror(err));
                return -1;
            }
        }
    }
    return 0;
}

static int read_task_environment(spank_t sp)
{
    char shown[MAX_PATH * 2];
    int root_fd = open_checked(AT_FDCWD, state_root, state_root, 1, 0, S_IWGRP | S_IWOTH);
    if (root_fd < 0) return -1;
    snprintf(shown, sizeof shown, "%s/%s", state_root, job_id);
    int job_fd = open_checked(root_fd, shown, job_id, 1, 0, S_IWGRP | S_IWOTH);
    close(root_fd);
    if (job_fd < 0) return -1;
    snprintf(shown, sizeof shown, "%s/%s/slurm", state_root, job_id);
    int slurm_fd = open_checked(job_fd, shown, "slurm", 1, 0, S_IWGRP | S_IWOTH);
    close(job_fd);
    if (slurm_fd < 0) return -1;
    snprintf(shown, sizeof shown, "%s/%s/slurm/task.env", state_root, job_id);
    int fd = open_checked(slurm_fd, shown, "task.env", 0, 0, S_IWGRP | S_IWOTH);
    close(slurm_fd);
    if (fd < 0) return -1;
    size_t got;
    char *text = node_job_read_all(fd, MAX_ENV_FILE, &got);
    if (text == NULL) {
        slurm_error("freeflow: cannot read %s, or it is larger than %d bytes", shown, MAX_ENV_FILE);
        return -1;
    }
    int result = apply_environment(sp, text, got, shown);
    free(text);
    return result;
}

/* The node's shared directory belongs to the job's user and nobody else may enter it; the path table in
 * it must be the user's, a bounded regular file. */
static int check_shared_directory(spank_t sp)
{
    uid_t uid;
    if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS) {
        slurm_error("freeflow: cannot read the job's uid");
        return -1;
    }
    int dir_fd = open_checked(AT_FDCWD, shared_dir, shared_dir, 1, uid, S_IRWXG | S_IRWXO);
    if (dir_fd < 0) {
        slurm_error("freeflow: this node has no shared directory for job %s at %s: is the freeflow agent running on it "
                    "(docs/slurm.md)?",
                    job_id, shared_dir);
        return -1;
    }
    char shown[MAX_PATH + 16];
    snprintf(shown, sizeof shown, "%s/paths", shared_dir);
    int table_fd = open_checked(dir_fd, shown, "paths", 0, uid, S_IWGRP | S_IWOTH);
    close(dir_fd);
    if (table_fd < 0) return -1;
    struct stat st;
    int too_big = fstat(table_fd, &st) != 0 || st.st_size == 0 || st.st_size > MAX_PATH_TABLE;
    close(table_fd);
    if (too_big) {
        slurm_error("freeflow: %s is empty or larger than %d bytes", shown, MAX_PATH_TABLE);
        return -1;
    }
    if (spank_setenv(sp, "FREEFLOW_DIR", shared_dir, 1) != ESPANK_SUCCESS) return -1;
    return 0;
}

/* This node's Slurm name: slurmd's -N (SLURMD_NODENAME), else the short host name. */
static int find_this_node(void)
{
    const char *name = getenv("SLURMD_NODENAME");
    char host[256];
    if (name == NULL || name[0] == '\0') {
        if (gethostname(host, sizeof host) != 0) return -1;
        host[sizeof host - 1] = '\0';
        char *dot = strchr(host, '.');
        if (dot != NULL) *dot = '\0';
        name = host;
    }
    if (!ff_path_table_name_valid(name)) return -1;
    strcpy(this_node, name);
    return 0;
}

static void record_name(char *out, size_t size, uint32_t id)
{
    /* a leading '.' keeps it apart from every job directory (job ids are [a-z0-9-]) */
    snprintf(out, size, ".slurm-%u", (unsigned) id);
}

/* Undoes what set_up_node made, in slurmstepd at the step's end (the job epilog catches the rest). */
static void tear_down_node(void)
{
    char reply[256], request[128];
    if (agent_lease_fd >= 0) {
        /* synchronous, so that agent.sock is gone before the directory is removed */
        snprintf(request, sizeof request, "remove %s\n", job_id);
        if (node_job_agent_request(agent_control, &agent_lease_fd, request, reply, sizeof reply) != 0)
            slurm_error("freeflow: this node's ffagent did not remove job %s: %s", job_id, reply);
        close(agent_lease_fd);
        agent_lease_fd = -1;
    }
    if (slurm_job_id == 0) return;
    int root_fd = open(node_root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root_fd < 0) return;
    if (job_dir_created && node_job_remove_tree(root_fd, job_id) != 0)
        slurm_error("freeflow: could not remove %s/%s entirely", node_root, job_id);
    char record[32];
    record_name(record, sizeof record, slurm_job_id);
    unlinkat(root_fd, record, 0);
    close(root_fd);
    job_dir_created = 0;
    slurm_job_id = 0;
}

static int write_all(int fd, const char *text, size_t length)
{
    while (length > 0) {
        ssize_t n = write(fd, text, length);
        if (n <= 0) return -1;
        text += n;
        length -= (size_t) n;
    }
    return 0;
}

/* The job's directory on this node, <node_root>/<job> (the job's user's, 0700, with the path table in
 * it, 0400), registered with this node's ffagent for as long as slurmstepd holds the control connection
 * (lease=1: a killed slurmstepd drops the registration too). A root-only record, <node_root>/.slurm-<id>,
 * names the job for the epilog, so that a job can only ever remove what its own step created. */
static int set_up_node(spank_t sp)
{
    uid_t uid;
    gid_t gid;
    uint32_t id;
    if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
        spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS || spank_get_item(sp, S_JOB_ID, &id) != ESPANK_SUCCESS) {
        slurm_error("freeflow: cannot read the job's uid, gid or id");
        return -1;
    }
    char peers[16384], why[512];
    if (node_job_peers(agents_file, table, peers, sizeof peers, why, sizeof why) != 0) {
        slurm_error("freeflow: %s", why);
        return -1;
    }
    int root_fd = open_checked(AT_FDCWD, node_root, node_root, 1, 0, S_IWGRP | S_IWOTH);
    if (root_fd < 0) return -1;
    char record[32];
    record_name(record, sizeof record, id);
    int record_fd = openat(root_fd, record, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (record_fd < 0) {
        slurm_error("freeflow: cannot create %s/%s: %s (one freeflow step per Slurm job)", node_root, record,
                    strerror(errno));
        close(root_fd);
        return -1;
    }
    slurm_job_id = id;
    int result = -1, dir_fd = -1, table_fd = -1;
    if (mkdirat(root_fd, job_id, 0700) != 0) {
        slurm_error("freeflow: cannot create %s/%s: %s", node_root, job_id, strerror(errno));
        goto out;
    }
    job_dir_created = 1;
    /* the record names the job only once the directory is this step's own */
    if (write_all(record_fd, job_id, strlen(job_id)) != 0 || write_all(record_fd, "\n", 1) != 0) goto out;
    dir_fd = openat(root_fd, job_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir_fd < 0) goto out;
    /* written while the directory is still root's, so nobody can have planted a name in it */
    table_fd = openat(dir_fd, "paths", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
    size_t text_length;
    const char *text = ff_path_table_text(table, &text_length);
    if (table_fd < 0 || write_all(table_fd, text, text_length) != 0 || fchown(table_fd, uid, gid) != 0 ||
        fchown(dir_fd, uid, gid) != 0 || fchmod(dir_fd, 0700) != 0) {
        slurm_error("freeflow: cannot prepare %s/%s: %s", node_root, job_id, strerror(errno));
        goto out;
    }
    char request[sizeof peers + 2 * MAX_PATH], reply[512], key[33];
    ff_job_key_format(ff_path_table_job_key(table), key);
    snprintf(request, sizeof request, "add %s key=%s dir=%s/%s uid=%u gid=%u host=%d peers=%s lease=1\n", job_id, key,
             node_root, job_id, (unsigned) uid, (unsigned) gid, this_host, peers);
    if (node_job_agent_request(agent_control, &agent_lease_fd, request, reply, sizeof reply) != 0) {
        slurm_error(
            "freeflow: this node's ffagent (%s) did not accept job %s: %s: is the agent running (docs/slurm.md)?",
            agent_control, job_id, reply);
        goto out;
    }
    result = 0;
out:
    if (table_fd >= 0) close(table_fd);
    if (dir_fd >= 0) close(dir_fd);
    close(record_fd);
    close(root_fd);
    return result;
}

/* In slurmstepd, as root, once per node of a step, before its tasks start. */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
    (void) ac;
    (void) av;
    if (!spank_remote(sp) || table_option == NULL) return 0;
    if (job_id[0] == '\0') {
        slurm_error("freeflow: --freeflow-table needs --freeflow=JOB");
        return -1;
    }
    if (node_root[0] == '\0' || agents_file[0] == '\0') {
        slurm_error(
            "freeflow: this node's plugstack.conf line has no node_root= and agents=: it does not run freeflow's "
            "node pieces (docs/slurm.md, \"Your own Slurm\")");
        return -1;
    }
    char why[256];
    table = node_job_parse_table(table_option, job_id, why, sizeof why);
    if (table == NULL) {
        slurm_error("freeflow: refusing --freeflow-table: %s", why);
        return -1;
    }
    if (find_this_node() != 0 || (this_host = ff_path_table_host_index(table, this_node)) < 0) {
        slurm_error("freeflow: this node (%s) is not a host of job %s's path table", this_node, job_id);
        return -1;
    }
    if (set_up_node(sp) != 0) {
        tear_down_node();
        return -1;
    }
    return 0;
}

/* The task's own container: IPC, UTS and mount namespaces (a private /dev/shm), its planned name as
 * hostname. A PID namespace would need a fork between slurmstepd and the task, which would then no longer
 * be the process Slurm signals and waits for. */
static int enter_task_container(spank_t sp)
{
    uint32_t rank, total;
    if (spank_get_item(sp, S_TASK_GLOBAL_ID, &rank) != ESPANK_SUCCESS ||
        spank_get_item(sp, S_JOB_TOTAL_TASK_COUNT, &total) != ESPANK_SUCCESS) {
        slurm_error("freeflow: cannot read the task's rank");
        return -1;
    }
    const uint32_t ranks = ff_path_table_num_ranks(table);
    if (total != ranks || rank >= total || ff_path_table_host_of(table, rank) != this_host) {
        const char *planned_host = ff_path_table_host_name(table, (uint32_t) ff_path_table_host_of(table, rank));
        slurm_error("freeflow: task %u of %u on %s does not match the path table (%u ranks, this one on %s)",
                    (unsigned) rank, (unsigned) total, this_node, (unsigned) ranks,
                    planned_host != NULL ? planned_host : "no host");
        return -1;
    }
    const char *container = ff_path_table_container_of(table, rank);
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0 ||
        sethostname(container, strlen(container)) != 0) {
        slurm_error("freeflow: cannot give task %u its own namespaces: %s", (unsigned) rank, strerror(errno));
        return -1;
    }
    char dir[MAX_PATH + MAX_JOB_ID + 2];
    snprintf(dir, sizeof dir, "%s/%s", node_root, job_id);
    /* PMIx names the node by PMIX_HOSTNAME, else by the (now the container's) host name */
    if (spank_setenv(sp, "FREEFLOW_DIR", dir, 1) != ESPANK_SUCCESS ||
        spank_setenv(sp, "PMIX_HOSTNAME", this_node, 1) != ESPANK_SUCCESS)
        return -1;
    return 0;
}

/* Runs in each task, as root, before it drops privileges and execs the task's program. */
int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
    (void) ac;
    (void) av;
    if (!spank_remote(sp) || job_id[0] == '\0') return 0;
    if (table != NULL) {
        if (enter_task_container(sp) != 0) return -1;
    } else if (read_task_environment(sp) != 0 || check_shared_directory(sp) != 0) {
        return -1;
    }
    return spank_setenv(sp, "FREEFLOW_SLURM_PLUGIN", job_id, 1) == ESPANK_SUCCESS ? 0 : -1;
}

/* In slurmstepd at the step's end, however its tasks ended. */
int slurm_spank_exit(spank_t sp, int ac, char **av)
{
    (void) ac;
    (void) av;
    if (!spank_remote(sp) || table == NULL) return 0;
    tear_down_node();
    ff_path_table_free(table);
    table = NULL;
    return 0;
}

/* The job epilog (slurmd, as root, after every job, also a failed or cancelled one, and after a
 * slurmstepd that died without its exit): removes what the record of this Slurm job names. Never fails:
 * a failing epilog drains the node. */
int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
    uint32_t id = 0;
    /* the job script context calls no slurm_spank_init: the plugstack arguments come with this call */
    if (take_plugstack_arguments(ac, av) != 0 || node_root[0] == '\0') return 0;
    if (spank_get_item(sp, S_JOB_ID, &id) != ESPANK_SUCCESS) {
        /* the job script context also has the job id in its environment */
        const char *text = getenv("SLURM_JOB_ID");
        char *end = NULL;
        unsigned long value = text == NULL ? 0 : strtoul(text, &end, 10);
        if (end == NULL || *end != '\0' || value == 0 || value > UINT32_MAX) {
            slurm_error("freeflow: epilog cannot tell the Slurm job id");
            return 0;
        }
        id = (uint32_t) value;
    }
    slurm_debug("freeflow: epilog of Slurm job %u", (unsigned) id);
    int root_fd = open(node_root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root_fd < 0) return 0;
    char record[32], job[MAX_JOB_ID + 2] = "";
    record_name(record, sizeof record, id);
    int fd = openat(root_fd, record, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 && st.st_size <= MAX_JOB_ID + 1) {
        ssize_t n = read(fd, job, MAX_JOB_ID + 1);
        job[n > 0 ? n : 0] = '\0';
        char *newline = strchr(job, '\n');
        if (newline != NULL) *newline = '\0';
        if (valid_job_id(job)) {
            char request[128], reply[256];
            int agent_fd = -1;
            snprintf(request, sizeof request, "remove %s\n", job);
            if (node_job_agent_request(agent_control, &agent_fd, request, reply, sizeof reply) == 0) close(agent_fd);
            if (node_job_remove_tree(root_fd, job) != 0)
                slurm_error("freeflow: epilog could not remove %s/%s", node_root, job);
            else
                slurm_info("freeflow: epilog removed %s/%s of Slurm job %u", node_root, job, (unsigned) id);
        }
    }
    if (fd >= 0) {
        close(fd);
        unlinkat(root_fd, record, 0);
    }
    close(root_fd);
    return 0;
}
