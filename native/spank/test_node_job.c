/* The SPANK plugin's node-side checks of hostile input (node_job.c), without Slurm: the path table ffrun
 * passes through srun, the site's agents file, and the job directory's removal without following symlinks. */
#include "check.h"
#include "node_job.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOOD                                                                                                           \
    "freeflow-path-table 2,job ab12,key 0123456789abcdef0123456789abcdef,hosts 2,host 0 n0,host 1 n1,ranks 3,"         \
    "rank 0 0 n0-c0,rank 1 0 n0-c1,rank 2 1 n1-c0,paths,smh,msh,hhs,end"

static int parses(const char *text, const char *expect_why)
{
    char why[256] = "";
    ff_path_table_t *table = node_job_parse_table(text, "ab12", why, sizeof why);
    ff_path_table_free(table);
    if (table == NULL && expect_why != NULL && strstr(why, expect_why) == NULL) {
        fprintf(stderr, "reason '%s' lacks '%s'\n", why, expect_why);
        check_failures++;
    }
    return table != NULL;
}

static char *replaced(const char *from, const char *to)
{
    static char out[1024];
    const char *at = strstr(GOOD, from);
    snprintf(out, sizeof out, "%.*s%s%s", (int) (at - GOOD), GOOD, to, at + strlen(from));
    return out;
}

int main(void)
{
    char why[256];
    ff_path_table_t *table = node_job_parse_table(GOOD, "ab12", why, sizeof why);
    CHECK(table != NULL);
    if (table == NULL) return check_exit_code("node_job");
    CHECK(ff_path_table_num_hosts(table) == 2 && ff_path_table_num_ranks(table) == 3);
    CHECK(ff_path_table_host_of(table, 2) == 1);
    CHECK(strcmp(ff_path_table_container_of(table, 1), "n0-c1") == 0 && ff_path_table_host_index(table, "n1") == 1);
    CHECK(ff_path_table_host_index(table, "n2") == -1);
    /* the node's copy is the decoded table, newline-ended */
    size_t text_length;
    const char *text = ff_path_table_text(table, &text_length);
    CHECK(strchr(text, ',') == NULL && text_length == strlen(GOOD) + 1 && text[text_length - 1] == '\n');
    CHECK(strncmp(text, "freeflow-path-table 2\njob ab12\n", 31) == 0);

    CHECK(parses(GOOD, NULL));
    CHECK(!parses(replaced("job ab12", "job other"), "not of the --freeflow job ab12"));
    /* the core's checks (native/tests/test_path_table.c) reach srun with the option's line number */
    CHECK(!parses(replaced("host 1 n1", "host 1 n0"), "path table line 6: host `n0` is listed twice"));
    CHECK(!parses(replaced("smh,msh", "smm,msh"), "line 12: path from rank 0 to rank 2: `m`"));
    /* the transport's own encoding */
    CHECK(!parses(replaced(",end", ""), "end"));        /* truncated */
    CHECK(!parses(replaced(",end", ",end,"), "empty")); /* trailing */
    CHECK(!parses(replaced("paths,", "paths,,"), "empty"));
    CHECK(!parses(replaced("n1-c0", "n1\tc0"), "control"));
    CHECK(!parses(replaced("n1-c0", "n1\nc0"), "control"));
    CHECK(!parses("", "empty"));

    char dir[] = "/tmp/ff-node-job-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char file[256];
    snprintf(file, sizeof file, "%s/agents", dir);
    FILE *agents = fopen(file, "w");
    fputs("# node address\nn0 10.0.0.1:7470\nn1 10.0.0.2:7471\n", agents);
    fclose(agents);
    chmod(file, 0644);
    char peers[256];
    CHECK(node_job_peers(file, table, peers, sizeof peers, why, sizeof why) == 0 &&
          strcmp(peers, "0@10.0.0.1:7470,1@10.0.0.2:7471") == 0);
    agents = fopen(file, "w");
    fputs("n0 10.0.0.1:7470\nn1 10.0.0.2:99999\n", agents);
    fclose(agents);
    CHECK(node_job_peers(file, table, peers, sizeof peers, why, sizeof why) != 0 && strstr(why, "bad address") != NULL);
    agents = fopen(file, "w");
    fputs("n0 10.0.0.1:7470\n", agents);
    fclose(agents);
    CHECK(node_job_peers(file, table, peers, sizeof peers, why, sizeof why) != 0 &&
          strstr(why, "n1 is not in") != NULL);
    chmod(file, 0666);
    CHECK(node_job_peers(file, table, peers, sizeof peers, why, sizeof why) != 0 && strstr(why, "refusing") != NULL);
    ff_path_table_free(table);

    /* the tree goes, a symlink in it is removed, not followed */
    char path[512], outside[512];
    snprintf(outside, sizeof outside, "%s/outside", dir);
    mkdir(outside, 0700);
    snprintf(path, sizeof path, "%s/outside/keep", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    snprintf(path, sizeof path, "%s/job", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/job/sub", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/job/sub/file", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    snprintf(path, sizeof path, "%s/job/link", dir);
    CHECK(symlink(outside, path) == 0);
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(node_job_remove_tree(dir_fd, "job") == 0);
    CHECK(faccessat(dir_fd, "job", F_OK, 0) != 0);
    CHECK(faccessat(dir_fd, "outside/keep", F_OK, 0) == 0);
    CHECK(node_job_remove_tree(dir_fd, "job") == 0); /* already gone */
    close(dir_fd);
    unlink(file);
    snprintf(path, sizeof path, "%s/outside/keep", dir);
    unlink(path);
    rmdir(outside);
    rmdir(dir);
    return check_exit_code("node_job");
}
