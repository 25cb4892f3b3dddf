/* Path table reader: a valid table, then every kind of malformed table is refused with its line. */
#include "check.h"
#include "freeflow.h"

static const char *valid = "# written by ffrun\n"
                           "freeflow-path-table 1\n"
                           "job 3f9c2a\n"
                           "key 8d2f0a4be61c9d7700112233445566ff\n"
                           "hosts 2\n"
                           "host 0 h0\n"
                           "host 1 h1\n"
                           "ranks 4\n"
                           "rank 0 0 ff-3f9c2a-h0c0\n"
                           "rank 1 0 ff-3f9c2a-h0c1\n"
                           "rank 2 1 ff-3f9c2a-h1c0\n"
                           "rank 3 1 ff-3f9c2a-h1c1\n"
                           "\n"
                           "paths\n"
                           "smtt\n"
                           "mstt\n"
                           "ttsm\n"
                           "ttms\n"
                           "end\n";

static char file[4200];

static ff_status_t load_text(const char *text, ff_path_table_t **table, char *error, size_t error_len)
{
    FILE *f = fopen(file, "w");
    fputs(text, f);
    fclose(f);
    return ff_path_table_load(file, table, error, error_len);
}

/* `valid` with the first occurrence of `from` replaced by `to`. */
static char *edited(const char *from, const char *to)
{
    static char buffer[2048];
    const char *at = strstr(valid, from);
    if (!at) {
        fprintf(stderr, "edit target `%s` not found\n", from);
        exit(2);
    }
    snprintf(buffer, sizeof(buffer), "%.*s%s%s", (int) (at - valid), valid, to, at + strlen(from));
    return buffer;
}

static void expect_refused(const char *text, ff_status_t status, const char *message_part)
{
    ff_path_table_t *table = NULL;
    char error[256];
    CHECK_STATUS(load_text(text, &table, error, sizeof(error)), status);
    CHECK(table == NULL);
    if (!strstr(error, message_part)) {
        fprintf(stderr, "error `%s` does not mention `%s`\n", error, message_part);
        ++check_failures;
    }
}

int main(void)
{
    char *dir = scratch_dir_create();
    snprintf(file, sizeof(file), "%s/paths", dir);

    ff_path_table_t *table = NULL;
    char error[256];
    CHECK_STATUS(ff_path_table_load(file, &table, error, sizeof(error)), FF_ERR_NOT_FOUND);
    CHECK_STATUS(load_text(valid, &table, error, sizeof(error)), FF_OK);
    if (table) {
        CHECK(ff_path_table_num_ranks(table) == 4);
        CHECK(ff_path_table_num_hosts(table) == 2);
        CHECK(strcmp(ff_path_table_job_id(table), "3f9c2a") == 0);
        char hex[33];
        ff_job_key_format(ff_path_table_job_key(table), hex);
        CHECK(strcmp(hex, "8d2f0a4be61c9d7700112233445566ff") == 0);
        CHECK(ff_path_table_host_of(table, 2) == 1);
        CHECK(ff_path_table_host_of(table, 4) == -1);
        CHECK(strcmp(ff_path_table_container_of(table, 1), "ff-3f9c2a-h0c1") == 0);
        CHECK(ff_path_table_path(table, 0, 0) == FF_PATH_SELF);
        CHECK(ff_path_table_path(table, 0, 1) == FF_PATH_SHM);
        CHECK(ff_path_table_path(table, 1, 3) == FF_PATH_TCP);
        CHECK(ff_path_table_path(table, 3, 2) == FF_PATH_SHM);
        CHECK(ff_path_table_path(table, 0, 9) == FF_PATH_KIND_COUNT);
        CHECK(ff_path_table_shm_peers(table, 0) == 1);
        CHECK(strcmp(ff_path_kind_name(FF_PATH_ROUTER), "router") == 0);
        CHECK(strcmp(ff_path_table_host_name(table, 1), "h1") == 0);
        CHECK(ff_path_table_host_name(table, 2) == NULL);
        CHECK(ff_path_table_host_index(table, "h1") == 1);
        CHECK(ff_path_table_host_index(table, "h2") == -1);
        size_t text_length = 0;
        CHECK(strcmp(ff_path_table_text(table, &text_length), valid) == 0 && text_length == strlen(valid));
        ff_path_table_free(table);
    }

    expect_refused(edited("freeflow-path-table 1", "freeflow-path-table 3"), FF_ERR_UNSUPPORTED_VERSION,
                   "format version 3");
    expect_refused(edited("freeflow-path-table 1", "freeflow-path-table 0"), FF_ERR_UNSUPPORTED_VERSION,
                   "format version 0");
    /* `h` exists from format 2 on: a version 1 table with it is refused, a version 2 table is read. */
    expect_refused(edited("mstt", "msth"), FF_ERR_PARSE, "unknown path `h` from rank 1 to rank 3 (format 1");
    {
        char v2[2048];
        snprintf(v2, sizeof(v2), "%s", edited("freeflow-path-table 1", "freeflow-path-table 2"));
        char *rows = strstr(v2, "smtt\nmstt\nttsm\nttms\n");
        CHECK(rows != NULL);
        if (rows) {
            memcpy(rows, "smhh\nmshh\nhhsm\nhhms\n", 20);
            CHECK_STATUS(load_text(v2, &table, error, sizeof(error)), FF_OK);
            if (table) {
                CHECK(ff_path_table_path(table, 0, 2) == FF_PATH_HANDOFF);
                CHECK(ff_path_table_path(table, 3, 1) == FF_PATH_HANDOFF);
                CHECK(ff_path_table_path(table, 2, 3) == FF_PATH_SHM);
                CHECK(ff_path_table_shm_peers(table, 2) == 1);
                CHECK(strcmp(ff_path_kind_name(FF_PATH_HANDOFF), "handoff") == 0);
                ff_path_table_free(table);
            }
            /* `h` between two ranks of one host is a writer's bug. */
            memcpy(rows, "shhh", 4);
            expect_refused(v2, FF_ERR_PARSE, "`h` is for ranks on different hosts only");
            /* an unknown letter is still refused in format 2 */
            memcpy(rows, "smtx", 4);
            expect_refused(v2, FF_ERR_PARSE, "unknown path `x` from rank 0 to rank 3 (format 2");
        }
    }
    /* Each edit of `valid` and what the refusal must say; all FF_ERR_PARSE. */
    static const struct {
        const char *from, *to, *message;
    } malformed[] = {
        {"freeflow-path-table 1", "something else", "not a freeflow path table"},
        {"key 8d2f", "key zz2f", "key <32 lower-case hex digits>"},
        /* one spelling of everything, as ffrun writes it: a reader passing the table on never meets a variant */
        {"key 8d2f", "key 8D2F", "key <32 lower-case hex digits>"},
        {"job 3f9c2a", "job 3F9C2A", "expected `job <id>`, the id 1-63"},
        {"job 3f9c2a", "job ../x", "expected `job <id>`"},
        {"host 0 h0", "host 0  h0", "expected `host 0 <name>`"},
        {"host 0 h0", "host 0 h0 ", "expected `host 0 <name>`"},
        {"host 1 h1", "host 01 h1", "expected `host 1 <name>`"},
        {"ranks 4", "ranks +4", "ranks <number>"},
        /* names that a reader uses as a host name, a file name or a word of a request line */
        {"host 1 h1", "host 1 ../x", "line 7: the name of host 1 is not 1-64"},
        {"host 1 h1", "host 1 h\x1b]0;x", "the name of host 1 is not"},
        {"rank 1 0 ff-3f9c2a-h0c1", "rank 1 0 .hidden", "the container name of rank 1 is not"},
        {"host 1 h1", "host 1 h0", "line 7: host `h0` is listed twice"},
        {"hosts 2", "hosts 65537", "host count 65537 out of range"},
        {"hosts 2", "hosts two", "hosts <number>"},
        {"host 1 h1\n", "", "expected `host 1 <name>`"},
        {"rank 2 1 ", "rank 2 5 ", "rank 2 is on host 5"},
        {"rank 3 1 ff-3f9c2a-h1c1\n", "", "expected `rank 3"},
        {"mstt", "mstx", "unknown path `x` from rank 1 to rank 3"},
        {"mstt", "msst", "`s` is for a rank to itself only"},
        {"mstt", "mstm", "path from rank 1 to rank 3: `m` is for ranks on the same host"},
        {"mstt", "rstt", "path from rank 1 to rank 0: `r` is for ranks on different"},
        {"ttms\n", "ttm\n", "4 characters"},
        {"end\n", "", "truncated"},
        {"end\n", "end\nmore\n", "after `end`"},
        {"ranks 4", "ranks 0", "out of range"},
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); ++i) {
        expect_refused(edited(malformed[i].from, malformed[i].to), FF_ERR_PARSE, malformed[i].message);
    }
    expect_refused("", FF_ERR_PARSE, "empty file");

    /* `r` between hosts is read in both versions */
    {
        ff_path_table_t *routed = NULL;
        CHECK_STATUS(ff_path_table_parse(edited("mstt", "msrr"), &routed, error, sizeof(error)), FF_OK);
        if (routed) {
            CHECK(ff_path_table_path(routed, 1, 2) == FF_PATH_ROUTER);
            ff_path_table_free(routed);
        }
    }
    CHECK(ff_path_table_name_valid("ff-3f9c2a-h0c0") && ff_path_table_name_valid("n_1.example"));
    CHECK(!ff_path_table_name_valid("") && !ff_path_table_name_valid(".x") && !ff_path_table_name_valid("a/b") &&
          !ff_path_table_name_valid("a b") && !ff_path_table_name_valid(NULL));
    char longest[FF_PATH_TABLE_MAX_NAME + 2];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    CHECK(!ff_path_table_name_valid(longest));
    longest[FF_PATH_TABLE_MAX_NAME] = '\0';
    CHECK(ff_path_table_name_valid(longest));

    unlink(file);
    scratch_dir_remove(dir);
    return check_exit_code("test_path_table");
}
