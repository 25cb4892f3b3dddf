/*
 * ffrun-rsh: the rsh agent through which the stock mpirun (`--mca plm_rsh_agent <this>`) starts orted
 * in a freeflow container, and through which ffrun runs commands in containers. No shell anywhere.
 *
 *   ffrun-rsh <container name> <command words...>
 *       mpirun's form: the words are joined with spaces (what ssh would send a remote shell) and split
 *       again with shell quoting rules but without any expansion (ffrun_words.h); shell operators are
 *       refused.
 *   ffrun-rsh --argv [--cwd <dir> | --cwd-if-present <dir>] <container name> <argv...>
 *       argv is run exactly as given, in <dir> (inside the container) or /; with --cwd-if-present in <dir>
 *       when the container has it, else in the container's own working directory.
 *   ffrun-rsh <host name> <command words...>
 *       a host line of the map ("host <name> <netns name>", node-sharing launches): the command runs in
 *       the host's network namespace with a UTS and mount namespace of its own (run_as_host).
 *
 * The container must be listed in the map named by FFRUN_CONTAINER_MAP (<state dir>/containers: lines
 * "<name> <init pid> <init start time>"); the map must be a regular file owned by root and writable by
 * nobody else. The command runs through `runc --root <state dir>/runc exec`, which puts it in all the
 * container's namespaces and cgroups with the container's user, capabilities and no-new-privileges, and
 * forwards the signals it receives to it. The command gets a clean environment: PATH, LANG (HOME is the container's own) and
 * this process's OMPI_*, PMIX_*, FREEFLOW_*, UCX_* and LD_LIBRARY_PATH variables. runc is exec'd in
 * place of this agent, so the command's exit status (128+n after signal n) is the agent's. Problems
 * exit 255, like ssh.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ffrun_words.h"

extern char **environ;

#define FAIL_STATUS 255

static void fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fputs("ffrun-rsh: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  exit(FAIL_STATUS);
}

static const char *const USAGE =
    "usage: ffrun-rsh <container name> <command words...> | ffrun-rsh --argv [--cwd <dir>] <container name> <argv...>";

/* Reads the whole map after checking that only root can have written it. */
static char *read_map(const char *map) {
  int fd = open(map, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail("container map %s does not exist: the ffrun job that wrote it is gone", map);
    fail("cannot open container map %s: %s", map, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) fail("cannot stat container map %s: %s", map, strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("container map %s is not a regular file", map);
  if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    fail("refusing container map %s: it must be owned by root and writable by nobody else (owner %u, mode %03o)", map,
         (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
  if (st.st_size > (1 << 20)) fail("container map %s is too large", map);
  char *text = malloc((size_t)st.st_size + 1);
  if (text == NULL) fail("out of memory");
  size_t have = 0;
  while (have < (size_t)st.st_size) {
    ssize_t got = read(fd, text + have, (size_t)st.st_size - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += (size_t)got;
  }
  text[have] = '\0';
  close(fd);
  return text;
}

/* A simulated host of the map: a line "host <name> <network namespace name> <shared directory>" (node-sharing launches). */
struct host_entry {
  char name[256];
  char netns[256];
  char shared_dir[1024];
};

/* Finds the host's line; 1 when the map lists it. */
static int find_host(const char *map, const char *name, struct host_entry *host) {
  char *text = read_map(map);
  int found = 0;
  for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    char kind[8];
    if (sscanf(line, "%7s %255s %255s %1023s", kind, host->name, host->netns, host->shared_dir) != 4 || strcmp(kind, "host") != 0) continue;
    if (strcmp(host->name, name) == 0) {
      found = 1;
      break;
    }
  }
  free(text);
  return found;
}

/* Finds the container's line; checks that its init still runs (same pid and start time); returns its pid. */
static long find_container(const char *map, const char *container) {
  char *text = read_map(map);
  char known[1024] = "";
  int found = 0;
  long pid = 0;
  char start_time[32] = "";
  for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    char name[256];
    long entry_pid;
    char entry_start[32];
    if (sscanf(line, "%255s %ld %31s", name, &entry_pid, entry_start) != 3) continue;
    if (strcmp(name, container) == 0) {
      found = 1;
      pid = entry_pid;
      snprintf(start_time, sizeof start_time, "%s", entry_start);
      break;
    }
    if (strlen(known) + strlen(name) + 2 < sizeof known) {
      if (known[0] != '\0') strcat(known, " ");
      strcat(known, name);
    }
  }
  free(text);
  if (!found)
    fail("unknown container '%s': %s lists %s; use one of those names as the host name", container, map,
         known[0] == '\0' ? "no containers" : known);
  /* Field 22 of /proc/<pid>/stat is the start time; the command name (field 2) may hold spaces. */
  char path[64], stat_text[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *stat_file = fopen(path, "re");
  size_t got = stat_file == NULL ? 0 : fread(stat_text, 1, sizeof stat_text - 1, stat_file);
  if (stat_file != NULL) fclose(stat_file);
  stat_text[got] = '\0';
  char *after = strrchr(stat_text, ')');
  int running = 0;
  if (after != NULL) {
    char state = '?';
    char *fields = after + 2;
    state = fields[0];
    char *field = fields;
    for (int i = 0; i < 19 && field != NULL; i++) {
      field = strchr(field, ' ');
      if (field != NULL) field++;
    }
    if (field != NULL && state != 'Z' && state != 'X') {
      size_t len = strcspn(field, " ");
      running = len == strlen(start_time) && strncmp(field, start_time, len) == 0;
    }
  }
  if (!running) fail("container '%s' is not running (its init, pid %ld, is gone)", container, pid);
  return pid;
}

static int forwarded(const char *entry) {
  static const char *const prefixes[] = {"OMPI_", "PMIX_", "FREEFLOW_", "UCX_"};
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
    if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0) return 1;
  return strncmp(entry, "LD_LIBRARY_PATH=", 16) == 0;
}

static char *pair(const char *name, const char *value) {
  char *text;
  if (asprintf(&text, "%s=%s", name, value) < 0) fail("out of memory");
  return text;
}

static const char *runc_program(void) {
  static const char *const candidates[] = {"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"};
  for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++)
    if (access(candidates[i], X_OK) == 0) return candidates[i];
  fail("runc is not installed (apt-get install runc)");
  return NULL;
}

/* Binds source (a directory or file) onto a new placeholder of the same kind at target. */
static void bind_back(const char *source, const char *target) {
  struct stat st;
  if (lstat(source, &st) != 0) return;
  if (S_ISLNK(st.st_mode)) {
    char link[4096];
    ssize_t length = readlink(source, link, sizeof link - 1);
    if (length < 0) return;
    link[length] = '\0';
    if (symlink(link, target) != 0) fail("recreating %s: %s", target, strerror(errno));
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(target, st.st_mode & 07777) != 0) fail("mkdir %s: %s", target, strerror(errno));
  } else {
    int fd = open(target, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) fail("creating %s: %s", target, strerror(errno));
    close(fd);
  }
  if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) != 0) fail("binding %s: %s", target, strerror(errno));
}

/*
 * Gives this (private) mount namespace the host's shared directory at /run/freeflow, the path at which the
 * host's containers see it, without creating anything on the machine: /run is rebuilt as a tmpfs whose
 * every entry is bound back from the machine's /run, plus /run/freeflow. orted's session directory (and
 * with it the PMIx server's datastore, which the ranks map) then has one path for orted and ranks.
 */
static void share_run_freeflow(const char *shared_dir) {
  int dir_fd = open(shared_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd < 0) fail("cannot open the host's shared directory %s: %s", shared_dir, strerror(errno));
  /* the machine's /run stays reachable through this descriptor once the new tmpfs hides it: no staging
   * directory on the machine (its /tmp is shared with every local user) */
  int old_run_fd = open("/run", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (old_run_fd < 0) fail("cannot open /run: %s", strerror(errno));
  if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0) fail("mounting /run: %s", strerror(errno));
  DIR *entries = fdopendir(old_run_fd);
  if (entries == NULL) fail("reading the machine's /run: %s", strerror(errno));
  for (struct dirent *entry; (entry = readdir(entries)) != NULL;) {
    if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0 || strcmp(entry->d_name, "freeflow") == 0) continue;
    char source[4096], target[4096];
    snprintf(source, sizeof source, "/proc/self/fd/%d/%s", old_run_fd, entry->d_name);
    snprintf(target, sizeof target, "/run/%s", entry->d_name);
    bind_back(source, target);
  }
  closedir(entries);
  char dir_path[64];
  snprintf(dir_path, sizeof dir_path, "/proc/self/fd/%d", dir_fd);
  if (mkdir("/run/freeflow", 0755) != 0) fail("mkdir /run/freeflow: %s", strerror(errno));
  if (mount(dir_path, "/run/freeflow", NULL, MS_BIND, NULL) != 0) fail("binding the shared directory: %s", strerror(errno));
  close(dir_fd);
}

/*
 * Node-sharing launches: orted runs as the simulated host, in its network namespace (so its PMIx server is
 * reachable from the host's containers over the bridge), with a UTS namespace of its own named after the
 * host (Open MPI's node name) and a mount namespace whose /run/freeflow is the host's shared directory
 * (orted's session directory goes there). The rest of the machine's file system stays as it is: orted
 * checks that the program exists before the fork agent takes it into the container, and programs live
 * anywhere a job's volumes bind them from (/tmp included). The ranks enter their
 * containers through ffrun-fork-agent. The namespace name comes from the root-owned map and must be a
 * plain name below /run/netns.
 */
static void run_as_host(const struct host_entry *host, char **command) {
  if (strchr(host->netns, '/') != NULL || host->netns[0] == '.') fail("bad network namespace name '%s' in the map", host->netns);
  if (host->shared_dir[0] != '/') fail("bad shared directory '%s' in the map", host->shared_dir);
  char netns_path[320];
  snprintf(netns_path, sizeof netns_path, "/run/netns/%s", host->netns);
  int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open %s: %s (is the job still running?)", netns_path, strerror(errno));
  if (setns(fd, CLONE_NEWNET) != 0) fail("cannot enter %s: %s", netns_path, strerror(errno));
  close(fd);
  if (unshare(CLONE_NEWUTS | CLONE_NEWNS) != 0) fail("unshare: %s", strerror(errno));
  /* private: nothing mounted below may propagate back to the machine */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("making mounts private: %s", strerror(errno));
  share_run_freeflow(host->shared_dir);
  if (sethostname(host->name, strlen(host->name)) != 0) fail("sethostname: %s", strerror(errno));
  if (chdir("/") != 0) fail("chdir /: %s", strerror(errno));
  size_t env_count = 0;
  for (char **entry = environ; *entry != NULL; entry++) env_count++;
  char **clean = calloc(env_count + 5, sizeof *clean);
  if (clean == NULL) fail("out of memory");
  size_t n = 0;
  const char *path = getenv("PATH"), *lang = getenv("LANG");
  clean[n++] = pair("PATH", path != NULL ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  clean[n++] = pair("LANG", lang != NULL && lang[0] != '\0' ? lang : "C.UTF-8");
  clean[n++] = "HOME=/root";
  /* orted's session directory, with the PMIx server's shared-memory datastore that every rank maps, must
   * have one path for orted and ranks. (orte_remote_tmpdir_base would say so from mpirun, but orted 4.1.4
   * ignores it: it reads it before it knows it is a daemon.) PMIx's hash datastore is no way out: with it,
   * PMIx 4.2 gives every rank the local peers of the last node registered. */
  clean[n++] = "OMPI_MCA_orte_tmpdir_base=/run/freeflow";
  for (char **entry = environ; *entry != NULL; entry++)
    if (forwarded(*entry) && strncmp(*entry, "OMPI_MCA_orte_tmpdir_base=", 26) != 0) clean[n++] = *entry;
  clean[n] = NULL;
  environ = clean;
  execvp(command[0], command);
  fail("cannot run %s as host %s: %s", command[0], host->name, strerror(errno));
}

/* Parsed by hand, not with ff_cli (native/cli): mpirun runs this as its ssh (plm_rsh_agent) with ssh's form,
 * `<host> <remote command words...>`, which must pass untouched; a getopt parser would take the remote
 * command's own --options as ours. ffrun's `--argv` form is recognised only as the first word. */
int main(int argc, char **argv) {
  int exact = 0;
  const char *cwd = "/";
  const char *cwd_if_present = NULL;
  int i = 1;
  if (i < argc && strcmp(argv[i], "--argv") == 0) {
    exact = 1;
    i++;
    if (i < argc && strcmp(argv[i], "--cwd") == 0) {
      if (i + 1 >= argc) fail("--cwd needs a directory");
      cwd = argv[i + 1];
      i += 2;
    } else if (i < argc && strcmp(argv[i], "--cwd-if-present") == 0) {
      if (i + 1 >= argc) fail("--cwd-if-present needs a directory");
      cwd_if_present = argv[i + 1];
      i += 2;
    }
  }
  if (argc - i < 2) fail("%s", USAGE);
  const char *container = argv[i++];

  char **command = argv + i;
  int command_count = argc - i;
  char **split = NULL;
  if (!exact) {
    size_t length = 1;
    for (int k = i; k < argc; k++) length += strlen(argv[k]) + 1;
    char *line = malloc(length);
    if (line == NULL) fail("out of memory");
    line[0] = '\0';
    for (int k = i; k < argc; k++) {
      if (k > i) strcat(line, " ");
      strcat(line, argv[k]);
    }
    char error[256];
    if (ffrun_words_split(line, &split, &command_count, error, sizeof error) != 0) fail("%s (command: %s)", error, line);
    if (command_count == 0) fail("no command given for container '%s'", container);
    free(line);
    command = split;
  }

  const char *map = getenv("FFRUN_CONTAINER_MAP");
  if (map == NULL || map[0] == '\0')
    fail("FFRUN_CONTAINER_MAP is not set: set it to the container map of a running ffrun job (<state dir>/containers)");
  if (map[0] != '/') fail("FFRUN_CONTAINER_MAP must be an absolute path, not %s", map);
  struct host_entry host;
  if (find_host(map, container, &host)) run_as_host(&host, command);
  long init_pid = find_container(map, container);
  /* ffrun-fork-agent passes orted's working directory: kept when the container has it (a volume), else
   * the container's home, as orted itself does when the directory is missing. */
  int keep_cwd = 1;
  if (cwd_if_present != NULL) {
    char *inside;
    struct stat st;
    if (asprintf(&inside, "/proc/%ld/root%s", init_pid, cwd_if_present) < 0) fail("out of memory");
    keep_cwd = cwd_if_present[0] == '/' && stat(inside, &st) == 0 && S_ISDIR(st.st_mode);
    cwd = keep_cwd ? cwd_if_present : "/";
    free(inside);
  }

  /* runc's state of the job lives next to the map: <state dir>/runc. */
  char *state_dir = strdup(map);
  if (state_dir == NULL) fail("out of memory");
  *strrchr(state_dir, '/') = '\0';
  char *root_arg;
  if (asprintf(&root_arg, "%s/runc", state_dir) < 0) fail("out of memory");

  size_t env_count = 0;
  for (char **entry = environ; *entry != NULL; entry++) env_count++;
  char **runc_argv = calloc((size_t)command_count + 2 * env_count + 20, sizeof *runc_argv);
  if (runc_argv == NULL) fail("out of memory");
  size_t n = 0;
  runc_argv[n++] = "runc";
  runc_argv[n++] = "--root";
  runc_argv[n++] = root_arg;
  runc_argv[n++] = "exec";
  if (keep_cwd) {
    runc_argv[n++] = "--cwd";
    runc_argv[n++] = (char *)cwd;
  }
  /* HOME is the container's own (its config): the caller's home does not exist inside. */
  const char *path = getenv("PATH"), *lang = getenv("LANG");
  runc_argv[n++] = "--env";
  runc_argv[n++] = pair("PATH", path != NULL ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  runc_argv[n++] = "--env";
  runc_argv[n++] = pair("LANG", lang != NULL && lang[0] != '\0' ? lang : "C.UTF-8");
  for (char **entry = environ; *entry != NULL; entry++) {
    if (!forwarded(*entry)) continue;
    runc_argv[n++] = "--env";
    runc_argv[n++] = *entry;
  }
  runc_argv[n++] = (char *)container;
  /* Everything after the container id is the command, even words that look like runc options. */
  for (int k = 0; k < command_count; k++) runc_argv[n++] = command[k];
  runc_argv[n] = NULL;

  char *runc_env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
  const char *runc = runc_program();
  execve(runc, runc_argv, runc_env);
  fail("cannot run %s: %s", runc, strerror(errno));
  return FAIL_STATUS;
}
