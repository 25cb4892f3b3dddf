/* Checks the probe against independent sources on this machine: sysconf, nproc, stat(1), df(1),
 * ucx_info and /sys/class/infiniband. */
#include "check.h" /* first: it defines _GNU_SOURCE */

#include <dirent.h>
#include <inttypes.h>
#include <sched.h>

#include "freeflow_probe.h"

/* The whole standard output of a shell command, or exit(2) when it cannot run. */
static char *command_output(const char *command)
{
    FILE *pipe = popen(command, "r");
    if (pipe == NULL) {
        perror(command);
        exit(2);
    }
    size_t size = 0, capacity = 4096;
    char *text = malloc(capacity);
    size_t got;
    while (text != NULL && (got = fread(text + size, 1, capacity - size - 1, pipe)) > 0) {
        size += got;
        if (capacity - size < 2) text = realloc(text, capacity *= 2);
    }
    int status = pclose(pipe);
    if (text == NULL || status != 0) {
        fprintf(stderr, "`%s` failed (status %d)\n", command, status);
        exit(2);
    }
    text[size] = '\0';
    return text;
}

static uint64_t command_number(const char *command, int base)
{
    char *text = command_output(command);
    uint64_t value = strtoull(text, NULL, base);
    free(text);
    return value;
}

static ff_probe_result_t probe_ok(const char *dir)
{
    ff_probe_result_t result;
    char detail[512];
    ff_probe_status_t status = ff_probe_run(dir, &result, detail, sizeof(detail));
    if (status != FF_PROBE_OK) {
        fprintf(stderr, "ff_probe_run(%s): %s: %s\n", dir, ff_probe_status_name(status), detail);
        exit(2);
    }
    return result;
}

static void check_rejected(const char *dir, ff_probe_status_t expected, const char *detail_mentions)
{
    ff_probe_result_t result;
    char detail[512];
    ff_probe_status_t status = ff_probe_run(dir, &result, detail, sizeof(detail));
    if (status != expected) {
        fprintf(stderr, "ff_probe_run(%s) returned %s, expected %s\n", dir ? dir : "NULL", ff_probe_status_name(status),
                ff_probe_status_name(expected));
    }
    CHECK(status == expected);
    CHECK(strstr(detail, detail_mentions) != NULL);
    CHECK(result.ucx_transports == NULL && result.ucx_transport_count == 0);
    CHECK(result.rdma_devices == NULL && result.rdma_device_count == 0);
}

static void test_bad_arguments(const char *scratch)
{
    char missing[4200], file[4200];
    snprintf(missing, sizeof(missing), "%s/missing", scratch);
    snprintf(file, sizeof(file), "%s/file", scratch);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);

    check_rejected(NULL, FF_PROBE_ERR_INVALID_ARGUMENT, "absolute");
    check_rejected("relative/dir", FF_PROBE_ERR_INVALID_ARGUMENT, "relative/dir");
    check_rejected("", FF_PROBE_ERR_INVALID_ARGUMENT, "absolute");
    check_rejected(missing, FF_PROBE_ERR_SHARED_DIR_NOT_FOUND, missing);
    check_rejected(file, FF_PROBE_ERR_SHARED_DIR_NOT_DIRECTORY, file);
    char detail[64];
    CHECK(ff_probe_run(scratch, NULL, detail, sizeof(detail)) == FF_PROBE_ERR_INVALID_ARGUMENT);
    unlink(file);

    for (int s = 0; s < FF_PROBE_STATUS_COUNT; s++) {
        CHECK(strncmp(ff_probe_status_name((ff_probe_status_t) s), "FF_PROBE_", 9) == 0);
        CHECK(strlen(ff_probe_status_describe((ff_probe_status_t) s)) > 0);
    }
    CHECK(strcmp(ff_probe_status_name(FF_PROBE_STATUS_COUNT), "FF_PROBE_ERR_UNKNOWN_STATUS") == 0);
}

/* stat(1) and df(1) read the same kernel facts through their own code. */
static void check_filesystem(const char *dir, const ff_probe_shared_dir_t *fs)
{
    char command[4400];
    snprintf(command, sizeof(command), "stat -f -c %%t '%s'", dir);
    uint64_t magic = command_number(command, 16);
    CHECK(fs->fs_magic == magic);
    snprintf(command, sizeof(command), "stat -f -c %%T '%s'", dir);
    char *name = command_output(command);
    CHECK((strcmp(name, "tmpfs\n") == 0) == (strcmp(fs->fs, "tmpfs") == 0));
    free(name);
    snprintf(command, sizeof(command), "df -B1 --output=size '%s' | tail -n 1", dir);
    CHECK(fs->total_bytes == command_number(command, 10));
    CHECK(fs->total_bytes > 0);
    CHECK(fs->available_bytes <= fs->free_bytes && fs->free_bytes <= fs->total_bytes);
}

static void test_shared_dir(const char *scratch)
{
    ff_probe_result_t result = probe_ok(scratch);
    CHECK(strcmp(result.shared_dir.fs, "tmpfs") == 0); /* the scratch directory lives in /dev/shm */
    check_filesystem(scratch, &result.shared_dir);
    ff_probe_result_free(&result);

    char cwd[4096];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    result = probe_ok(cwd);
    check_filesystem(cwd, &result.shared_dir);
    ff_probe_result_free(&result);
}

static void test_cpus(const char *scratch)
{
    ff_probe_result_t result = probe_ok(scratch);
    CHECK(result.cpus.online == (unsigned) sysconf(_SC_NPROCESSORS_ONLN));
    CHECK(result.cpus.configured == (unsigned) sysconf(_SC_NPROCESSORS_CONF));
    CHECK(result.cpus.usable == command_number("nproc", 10));
    ff_probe_result_free(&result);

    /* Narrow this process's affinity to one CPU: the probe must follow it. */
    cpu_set_t saved, one;
    CHECK(sched_getaffinity(0, sizeof(saved), &saved) == 0);
    int first = 0;
    while (first < CPU_SETSIZE && !CPU_ISSET(first, &saved)) first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
    result = probe_ok(scratch);
    CHECK(result.cpus.usable == 1);
    ff_probe_result_free(&result);
    CHECK(sched_setaffinity(0, sizeof(saved), &saved) == 0);
}

static void test_ucx_version(const char *scratch)
{
    ff_probe_result_t result = probe_ok(scratch);
    char *text = command_output("ucx_info -v");
    char version[64] = "";
    CHECK(sscanf(text, "# Version %63s", version) == 1);
    CHECK(strcmp(result.ucx_version, version) == 0);
    free(text);
    ff_probe_result_free(&result);
}

/* One line per transport resource, "md component transport device type", in ucx_info -d's order. */
static void format_transport(char *out, size_t size, const ff_probe_ucx_transport_t *t)
{
    snprintf(out, size, "%s %s %s %s %s", t->memory_domain, t->component, t->transport, t->device,
             ff_probe_ucx_device_type_name(t->device_type));
}

static size_t ucx_info_resources(char lines[][320], size_t max)
{
    char *text = command_output("ucx_info -d");
    char md[64] = "", component[64] = "", transport[64] = "", device[64] = "", type[64];
    size_t count = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (sscanf(line, "# Memory domain: %63s", md) == 1) continue;
        if (sscanf(line, "# Component: %63s", component) == 1) continue;
        if (sscanf(line, "# Transport: %63s", transport) == 1) continue;
        if (sscanf(line, "# Device: %63s", device) == 1) continue;
        if (sscanf(line, "# Type: %63s", type) == 1 && count < max) {
            snprintf(lines[count++], 320, "%s %s %s %s %s", md, component, transport, device, type);
        }
    }
    free(text);
    return count;
}

static void test_ucx_transports(const char *scratch)
{
    static char expected[256][320];
    size_t expected_count = ucx_info_resources(expected, 256);
    ff_probe_result_t result = probe_ok(scratch);
    CHECK(result.ucx_transport_count == expected_count);
    int has_loopback = 0, has_intra_node = 0;
    for (size_t i = 0; i < result.ucx_transport_count; i++) {
        char line[320];
        format_transport(line, sizeof(line), &result.ucx_transports[i]);
        int found = 0;
        for (size_t j = 0; j < expected_count; j++) found |= strcmp(line, expected[j]) == 0;
        if (!found) fprintf(stderr, "probe lists \"%s\", ucx_info -d does not\n", line);
        CHECK(found);
        has_loopback |= result.ucx_transports[i].device_type == FF_PROBE_UCX_DEVICE_LOOPBACK;
        has_intra_node |= result.ucx_transports[i].device_type == FF_PROBE_UCX_DEVICE_INTRA_NODE;
    }
    /* Guards against both lists being empty: every UCX build has self and shared memory. */
    CHECK(has_loopback && has_intra_node);
    ff_probe_result_free(&result);
}

static void test_rdma(const char *scratch)
{
    size_t sysfs_devices = 0;
    DIR *dir = opendir("/sys/class/infiniband");
    if (dir != NULL) {
        for (struct dirent *entry; (entry = readdir(dir)) != NULL;) sysfs_devices += entry->d_name[0] != '.';
        closedir(dir);
    }
    ff_probe_result_t result = probe_ok(scratch);
    CHECK(result.rdma_device_count == sysfs_devices);
    for (size_t i = 0; i < result.rdma_device_count; i++) {
        CHECK(strlen(result.rdma_devices[i].node_guid) == 19);
        for (size_t p = 0; p < result.rdma_devices[i].port_count; p++) {
            CHECK(result.rdma_devices[i].ports[p].number == p + 1);
        }
    }
    ff_probe_result_free(&result);
    ff_probe_result_free(&result); /* freeing twice is safe */
    CHECK(result.rdma_devices == NULL && result.ucx_transports == NULL);
}

static char *scratch;

/* Runs on every exit, also when a helper gives up with exit(2). */
static void remove_scratch(void)
{
    scratch_dir_remove(scratch);
}

int main(void)
{
    scratch = scratch_dir_create();
    atexit(remove_scratch);
    test_bad_arguments(scratch);
    test_shared_dir(scratch);
    test_cpus(scratch);
    test_ucx_version(scratch);
    test_ucx_transports(scratch);
    test_rdma(scratch);
    return check_exit_code("probe");
}
