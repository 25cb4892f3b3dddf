/*
 * ffrun-fork-agent: Open MPI's `orte_fork_agent` under ffrun. orted execs it with our words followed by the
 * application's argv (odls_base_default_fns.c: argv = fork agent words + app argv), in the orted's
 * namespaces, after the orted has set the rank's environment. It puts the rank where ffrun planned it:
 *
 *   ffrun-fork-agent [--cpus <list>] [--enter <rsh agent> <container map> --containers <list> [--host <h>=<list>]...] -- <app argv...>
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
 *   --host        containers of one host (hostname of the orted's UTS namespace, set by the rsh agent):
 *                 processes of later jobs (MPI_Comm_spawn) go to these containers in turn by local rank.
 *
 * The initial job is the one whose local job id (low 16 bits of OMPI_MCA_ess_base_jobid) is 1; spawned
 * jobs get higher ones. Plain C, no Open MPI headers: it reads only the environment orted documents for
 * its children. Problems exit 255 with a message naming what is wrong.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAIL_STATUS 255
#define MAX_HOSTS 256

static void fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fputs("ffrun-fork-agent: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  exit(FAIL_STATUS);
}

/* Reads a non-negative decimal number from the environment; -1 when absent or malformed. */
static long env_number(const char *name) {
  const char *text = getenv(name);
  if (text == NULL || text[0] == '\0') return -1;
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) return -1;
  return value;
}

/* The index-th comma-separated item of list, copied into out; 0 when there is no such item. */
static int list_item(const char *list, long index, char *out, size_t out_size) {
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

static long list_length(const char *list) {
  long count = 1;
  for (const char *c = list; *c != '\0'; c++) count += *c == ',';
  return count;
}

static void pin(const char *cpus, long rank) {
  char item[16];
  if (!list_item(cpus, rank, item, sizeof item)) fail("--cpus has no entry for rank %ld", rank);
  if (strcmp(item, "-") == 0) return;
  char *end;
  long cpu = strtol(item, &end, 10);
  if (*end != '\0' || cpu < 0 || cpu >= CPU_SETSIZE) fail("--cpus entry '%s' of rank %ld is not a core number", item, rank);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((int)cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) fail("cannot pin rank %ld to core %ld: %s", rank, cpu, strerror(errno));
}

int main(int argc, char **argv) {
  const char *cpus = NULL, *rsh_agent = NULL, *container_map = NULL, *containers = NULL;
  const char *hosts[MAX_HOSTS];
  int host_count = 0;
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc) {
      cpus = argv[++i];
    } else if (strcmp(argv[i], "--enter") == 0 && i + 2 < argc) {
      rsh_agent = argv[++i];
      container_map = argv[++i];
    } else if (strcmp(argv[i], "--containers") == 0 && i + 1 < argc) {
      containers = argv[++i];
    } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      if (host_count == MAX_HOSTS) fail("more than %d --host options", MAX_HOSTS);
      hosts[host_count++] = argv[++i];
    } else {
      fail("unknown or incomplete option '%s' (usage: ffrun-fork-agent [--cpus L] [--enter AGENT MAP --containers L --host H=C+C...] -- argv...)", argv[i]);
    }
  }
  if (i + 1 >= argc) fail("no program after '--': set orte_fork_agent to end with ' --'");
  char **program = argv + i + 1;
  if (rsh_agent != NULL && containers == NULL) fail("--enter needs --containers");

  long jobid = env_number("OMPI_MCA_ess_base_jobid");
  long rank = env_number("OMPI_COMM_WORLD_RANK");
  if (jobid < 0 || rank < 0)
    fail("OMPI_MCA_ess_base_jobid and OMPI_COMM_WORLD_RANK must be set (run me as orted's orte_fork_agent)");
  const int initial_job = (jobid & 0xffff) == 1;

  if (cpus != NULL && initial_job) pin(cpus, rank);
  if (rsh_agent == NULL) {
    execvp(program[0], program);
    fail("cannot run %s: %s", program[0], strerror(errno));
  }

  /* The PMIx client finds its node's data (local peers: MPI_COMM_TYPE_SHARED) under its host name, which
   * inside the container would be the container's: name the orted's node instead. */
  char node[256];
  if (gethostname(node, sizeof node) != 0) fail("gethostname: %s", strerror(errno));
  node[sizeof node - 1] = '\0';
  if (setenv("PMIX_HOSTNAME", node, 1) != 0) fail("setenv: %s", strerror(errno));

  char container[256];
  if (initial_job) {
    if (!list_item(containers, rank, container, sizeof container)) fail("--containers has no entry for rank %ld", rank);
  } else {
    const char *hostname = node;
    const char *list = NULL;
    size_t name_length = strlen(hostname);
    for (int h = 0; h < host_count; h++)
      if (strncmp(hosts[h], hostname, name_length) == 0 && hosts[h][name_length] == '=') list = hosts[h] + name_length + 1;
    if (list == NULL) fail("no --host entry for host '%s': a spawned process has no container to go to", hostname);
    long local_rank = env_number("OMPI_COMM_WORLD_LOCAL_RANK");
    if (local_rank < 0) local_rank = rank;
    /* '+' separates a host's containers (',' separates ranks). */
    char copy[4096];
    if (strlen(list) >= sizeof copy) fail("--host list too long");
    strcpy(copy, list);
    for (char *c = copy; *c != '\0'; c++)
      if (*c == '+') *c = ',';
    if (!list_item(copy, local_rank % list_length(copy), container, sizeof container)) fail("malformed --host entry '%s'", list);
  }

  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) == NULL) strcpy(cwd, "/");
  int count = 0;
  while (program[count] != NULL) count++;
  char **agent_argv = calloc((size_t)count + 8, sizeof *agent_argv);
  if (agent_argv == NULL) fail("out of memory");
  int n = 0;
  agent_argv[n++] = (char *)rsh_agent;
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
