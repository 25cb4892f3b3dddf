/*
 * ffrun-fork-agent: Open MPI's `orte_fork_agent` under ffrun. orted execs it with our words followed by the
 * application's argv (odls_base_default_fns.c: argv = fork agent words + app argv), in the orted's
 * namespaces, after the orted has set the rank's environment. It puts the rank where ffrun planned it:
 *
 *   ffrun-fork-agent [--cpus <list>] [--enter <rsh agent> <container map> --containers <list> [--host <h>=<list>]...]
 * -- <app argv...>
 *
 *   --cpus        comma-separated core of each initial rank (index = MPI_COMM_WORLD rank), '-' for unbound.
 *                 The rank is pinned with sched_setaffinity before anything else, so the pin survives the
 *                 exec below (runc exec inherits the affinity of its caller). mpirun binds nothing itself:
 *                 with one orted per container every orted would pin its first rank to core 0.
 *   --enter       node-sharing launch: the orted runs in the simulated host's namespaces and the rank must
 *                 run inside its container: exec `<rsh agent> --argv --cwd-if-present <cwd> <container> argv`,
 *                 the same runc exec the rsh agent uses (every namespace, cgroup, user, capability set and
 *                 no-new-privileges of the container; signals forwarded; exit status passed back).
 *   --containers  comma-separated container of each initial rank.
 *   --slurm       the rank is a Slurm task (srun --mpi=pmix, docs/slurm.md): its rank is SLURM_PROCID, it is of
 *                 the initial job, and the freeflow SPANK plugin must have prepared it (FREEFLOW_SLURM_PLUGIN).
 *   --host        containers of one host (hostname of the orted's UTS namespace, set by the rsh agent):
 *                 processes of later jobs (MPI_Comm_spawn) go to these containers in turn by local rank;
 *                 container k of the host's n gets its own pid range (separate_pid_range).
 *
 * The initial job is the one whose local job id (low 16 bits of OMPI_MCA_ess_base_jobid) is 1; spawned
 * jobs get higher ones. Plain C, no Open MPI headers: it reads only the environment orted documents for
 * its children. Problems exit 255 with a message naming what is wrong.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAIL_STATUS 255
#define MAX_HOSTS   256

static void fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("ffrun-fork-agent: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(FAIL_STATUS);
}

/* Reads a non-negative decimal number from the environment; -1 when absent or malformed. */
static long env_number(const char *name)
{
    const char *text = getenv(name);
    if (text == NULL || text[0] == '\0') return -1;
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < 0) return -1;
    return value;
}

/* The index-th comma-separated item of list, copied into out; 0 when there is no such item. */
static int list_item(const char *list, long index, char *out, size_t out_size)
{
    const char *item = list;
    for (long i = 0; i < index; i++) {
        item = strchr(item, ',');
        if (item == NULL) return 0;
        item++;
    }
    size_t length = strcspn(item, ",");
    if (length == 0 || length >= out_size) return 0;
    memcpy(out, item, length);
    out[length] = '\0';
    return 1;
}

static long list_length(const char *list)
{
    long count = 1;
    for (const char *c = list; *c != '\0'; c++) count += *c == ',';
    return count;
}

static void pin(const char *cpus, long rank)
{
    char item[16];
    if (!list_item(cpus, rank, item, sizeof item)) fail("--cpus has no entry for rank %ld", rank);
    if (strcmp(item, "-") == 0) return;
    char *end;
    long cpu = strtol(item, &end, 10);
    if (*end != '\0' || cpu < 0 || cpu >= CPU_SETSIZE)
        fail("--cpus entry '%s' of rank %ld is not a core number", item, rank);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int) cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        fail("cannot pin rank %ld to core %ld: %s", rank, cpu, strerror(errno));
}

/* The init pid of a container from the map (lines "<name> <init pid> <start time>"), which must be a
 * regular file owned by root and writable by nobody else, as the rsh agent requires too. */
static long container_init_pid(const char *map, const char *container)
{
    int fd = open(map, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) fail("cannot open container map %s: %s", map, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        fail("refusing container map %s: it must be a regular file owned by root and writable by nobody else", map);
    FILE *file = fdopen(fd, "r");
    if (file == NULL) fail("fdopen: %s", strerror(errno));
    char line[1024];
    long pid = -1;
    while (fgets(line, sizeof line, file) != NULL) {
        char name[256];
        long entry_pid;
        if (sscanf(line, "%255s %ld", name, &entry_pid) == 2 && strcmp(name, container) == 0) {
            pid = entry_pid;
            break;
        }
    }
    fclose(file);
    if (pid <= 0) fail("container '%s' is not in %s", container, map);
    return pid;
}

/*
 * Gives the container's next process ids a range of their own among the host's containers. Every
 * container has its own pid namespace, so ranks in two containers easily get the same pid, and Open MPI's
 * shared-memory segments (opal shmem mmap, used by osc sm for MPI_Win_allocate_shared) take "the creator's
 * pid equals mine" to mean "I created it, the mapping is already mine": a rank whose pid equals the
 * creator's, in another container, then uses an address it never mapped (SIGSEGV). Container k of n on the
 * host allocates from [k * range + 2, (k + 1) * range), range = pid_max / n: ns_last_pid is set by a child
 * that lives in the container's pid namespace (the kernel applies a write to the writer's own namespace).
 * Ranks of one container never collide (the kernel allocates distinct pids), those of two containers
 * cannot while each container stays below its range (containers have at most 4096 pids).
 */
static void separate_pid_range(const char *map, const char *container, long index, long count)
{
    long init_pid = container_init_pid(map, container);
    FILE *pid_max_file = fopen("/proc/sys/kernel/pid_max", "re");
    long pid_max = 32768;
    if (pid_max_file != NULL) {
        if (fscanf(pid_max_file, "%ld", &pid_max) != 1) pid_max = 32768;
        fclose(pid_max_file);
    }
    const long range = pid_max / count;
    if (range < 64) return; /* too many containers to give each a range: leave the kernel's order */
    const long low = index * range + 2, high = (index + 1) * range - 32;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/ns/pid", init_pid);
    int target = open(path, O_RDONLY | O_CLOEXEC);
    int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (target < 0 || own < 0) fail("cannot open the pid namespaces (%s): %s", path, strerror(errno));
    if (setns(target, CLONE_NEWPID) != 0) fail("cannot enter the pid namespace of %s: %s", container, strerror(errno));
    pid_t child = fork();
    if (child == 0) {
        int fd = open("/proc/sys/kernel/ns_last_pid", O_RDWR | O_CLOEXEC);
        char text[32] = "";
        ssize_t got = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
        long last = got > 0 ? strtol(text, NULL, 10) : 0;
        if (fd >= 0 && (last < low || last >= high)) {
            int length = snprintf(text, sizeof text, "%ld", low);
            if (pwrite(fd, text, (size_t) length, 0) != length) _exit(1);
        }
        _exit(fd < 0 ? 1 : 0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("cannot set the pid range of container %s (ns_last_pid)", container);
    /* back: runc must not start its own helpers inside the container's pid namespace */
    if (setns(own, CLONE_NEWPID) != 0) fail("cannot return to my pid namespace: %s", strerror(errno));
    close(target);
    close(own);
}

int main(int argc, char **argv)
{
    const char *cpus = NULL, *rsh_agent = NULL, *container_map = NULL, *containers = NULL;
    const char *hosts[MAX_HOSTS];
    int host_count = 0;
    int slurm = 0;
    /* A hand-written loop, not ff_cli (getopt_long; issue 12 leaves it so): the words come from the orte_fork_agent
     * string, which orted splits on spaces and follows with the application's argv, so the grammar is the
     * one mpirun's users already write in that MCA value; --enter takes two values, which getopt_long
     * cannot express; and nothing after "--" may ever be read as ours (no permutation, no abbreviations). */
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc) {
            cpus = argv[++i];
        } else if (strcmp(argv[i], "--enter") == 0 && i + 2 < argc) {
            rsh_agent = argv[++i];
            container_map = argv[++i];
        } else if (strcmp(argv[i], "--slurm") == 0) {
            slurm = 1;
        } else if (strcmp(argv[i], "--containers") == 0 && i + 1 < argc) {
            containers = argv[++i];
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            if (host_count == MAX_HOSTS) fail("more than %d --host options", MAX_HOSTS);
            hosts[host_count++] = argv[++i];
        } else {
            fail("unknown or incomplete option '%s' (usage: ffrun-fork-agent [--cpus L] [--enter AGENT MAP "
                 "--containers L --host H=C+C...] -- argv...)",
                 argv[i]);
        }
    }
    if (i + 1 >= argc) fail("no program after '--': set orte_fork_agent to end with ' --'");
    char **program = argv + i + 1;
    if (rsh_agent != NULL && containers == NULL) fail("--enter needs --containers");

    if (slurm && getenv("FREEFLOW_SLURM_PLUGIN") == NULL)
        fail("the freeflow SPANK plugin did not prepare this task: list spank_freeflow.so in plugstack.conf on every "
             "node and pass --freeflow=<job> to srun (docs/slurm.md)");
    long jobid = slurm ? 1 : env_number("OMPI_MCA_ess_base_jobid");
    long rank = env_number(slurm ? "SLURM_PROCID" : "OMPI_COMM_WORLD_RANK");
    if (jobid < 0 || rank < 0)
        fail("OMPI_MCA_ess_base_jobid and OMPI_COMM_WORLD_RANK must be set (run me as orted's orte_fork_agent)");
    const int initial_job = (jobid & 0xffff) == 1;

    if (cpus != NULL && initial_job) pin(cpus, rank);
    if (rsh_agent == NULL) {
        execvp(program[0], program);
        fail("cannot run %s: %s", program[0], strerror(errno));
    }

    /* Names the node for the PMIx client, whose own host name inside the container is the container's.
     * (Right shared groups come from the PMIx datastore being shared: docs/node-sharing.md.) */
    char node[256];
    if (gethostname(node, sizeof node) != 0) fail("gethostname: %s", strerror(errno));
    node[sizeof node - 1] = '\0';
    if (setenv("PMIX_HOSTNAME", node, 1) != 0) fail("setenv: %s", strerror(errno));

    /* This host's containers: '+' separates them in --host (',' separates ranks). */
    const char *list = NULL;
    size_t name_length = strlen(node);
    for (int h = 0; h < host_count; h++)
        if (strncmp(hosts[h], node, name_length) == 0 && hosts[h][name_length] == '=')
            list = hosts[h] + name_length + 1;
    if (list == NULL) fail("no --host entry for host '%s': set one per host in orte_fork_agent", node);
    char host_containers[4096];
    if (strlen(list) >= sizeof host_containers) fail("--host list too long");
    strcpy(host_containers, list);
    for (char *c = host_containers; *c != '\0'; c++)
        if (*c == '+') *c = ',';
    const long host_container_count = list_length(host_containers);

    char container[256];
    if (initial_job) {
        if (!list_item(containers, rank, container, sizeof container))
            fail("--containers has no entry for rank %ld", rank);
    } else {
        /* spawned processes: the host's containers in turn */
        long local_rank = env_number("OMPI_COMM_WORLD_LOCAL_RANK");
        if (local_rank < 0) local_rank = rank;
        if (!list_item(host_containers, local_rank % host_container_count, container, sizeof container))
            fail("malformed --host entry '%s'", list);
    }
    long container_index = -1;
    for (long k = 0; k < host_container_count && container_index < 0; k++) {
        char item[256];
        if (list_item(host_containers, k, item, sizeof item) && strcmp(item, container) == 0) container_index = k;
    }
    /* a mapping that put the rank on another host would silently break MPI_COMM_TYPE_SHARED */
    if (container_index < 0)
        fail("rank %ld's container %s is not on this host (%s): mpirun mapped it elsewhere", rank, container, node);
    separate_pid_range(container_map, container, container_index, host_container_count);

    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL) strcpy(cwd, "/");
    int count = 0;
    while (program[count] != NULL) count++;
    char **agent_argv = calloc((size_t) count + 8, sizeof *agent_argv);
    if (agent_argv == NULL) fail("out of memory");
    int n = 0;
    agent_argv[n++] = (char *) rsh_agent;
    agent_argv[n++] = "--argv";
    agent_argv[n++] = "--cwd-if-present";
    agent_argv[n++] = cwd;
    agent_argv[n++] = container;
    for (int k = 0; k < count; k++) agent_argv[n++] = program[k];
    agent_argv[n] = NULL;
    if (setenv("FFRUN_CONTAINER_MAP", container_map, 1) != 0) fail("setenv: %s", strerror(errno));
    execv(rsh_agent, agent_argv);
    fail("cannot run %s: %s", rsh_agent, strerror(errno));
    return FAIL_STATUS;
}
