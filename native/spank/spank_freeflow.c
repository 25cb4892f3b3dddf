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
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/spank.h>

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

static int take_job_option(int value, const char *optarg, int remote);

struct spank_option spank_options[] = {
    {"freeflow", "JOB", "run the step's tasks as ranks of freeflow job JOB (ffrun sets this)", 1, 0, take_job_option},
    SPANK_OPTIONS_TABLE_END,
};

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

int slurm_spank_init(spank_t sp, int ac, char **av)
{
    (void) sp;
    for (int i = 0; i < ac; i++) {
        int state = take_path_argument(av[i], "state_root", state_root);
        int shared = state == 0 ? take_path_argument(av[i], "shared_dir", shared_dir) : 0;
        if (state < 0 || shared < 0) return -1;
        if (state == 0 && shared == 0) {
            slurm_error("freeflow: unknown plugstack.conf argument '%s' (known: state_root=DIR, shared_dir=DIR)",
                        av[i]);
            return -1;
        }
    }
    return 0;
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
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size > MAX_ENV_FILE) {
        slurm_error("freeflow: %s is larger than %d bytes", shown, MAX_ENV_FILE);
        close(fd);
        return -1;
    }
    char *text = malloc((size_t) st.st_size + 1);
    size_t got = 0;
    while (text != NULL && got < (size_t) st.st_size) {
        ssize_t n = read(fd, text + got, (size_t) st.st_size - got);
        if (n <= 0) break;
        got += (size_t) n;
    }
    close(fd);
    if (text == NULL || got != (size_t) st.st_size) {
        slurm_error("freeflow: cannot read %s", shown);
        free(text);
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

/* Runs in each task, as root, before it drops privileges and execs the task's program. */
int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
    (void) ac;
    (void) av;
    if (!spank_remote(sp) || job_id[0] == '\0') return 0;
    if (read_task_environment(sp) != 0 || check_shared_directory(sp) != 0) return -1;
    return spank_setenv(sp, "FREEFLOW_SLURM_PLUGIN", job_id, 1) == ESPANK_SUCCESS ? 0 : -1;
}
