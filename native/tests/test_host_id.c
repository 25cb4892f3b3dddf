/* Host identity: stable for one directory, different for another filesystem, refused for a file. */
#include "check.h"
#include "freeflow.h"

int main(void)
{
    char *dir = scratch_dir_create();
    ff_host_id_t a, b, other;
    CHECK_STATUS(ff_host_id_read(dir, &a), FF_OK);
    CHECK_STATUS(ff_host_id_read(dir, &b), FF_OK);
    CHECK(ff_host_id_equal(&a, &b));

    /* The boot id is the kernel's: compare with the text the kernel gives. */
    char boot[64] = {0};
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    CHECK(f && fgets(boot, sizeof(boot), f));
    if (f) fclose(f);
    char formatted[128];
    ff_host_id_format(&a, formatted, sizeof(formatted));
    char expected_hex[33] = {0};
    int n = 0;
    for (const char *c = boot; *c && n < 32; ++c) {
        if (*c != '-' && *c != '\n') expected_hex[n++] = *c;
    }
    CHECK(strncmp(formatted + 5, expected_hex, 32) == 0);

    /* Another filesystem (the root filesystem is not the tmpfs the scratch dir is on). */
    CHECK_STATUS(ff_host_id_read("/", &other), FF_OK);
    CHECK(!ff_host_id_equal(&a, &other));
    CHECK(memcmp(a.boot_id, other.boot_id, 16) == 0);

    CHECK_STATUS(ff_host_id_read("/nonexistent/dir", &other), FF_ERR_NOT_FOUND);
    CHECK_STATUS(ff_host_id_read("/proc/self/status", &other), FF_ERR_INVALID_ARGUMENT);

    CHECK(strcmp(ff_status_name(FF_ERR_FOREIGN_JOB), "FF_ERR_FOREIGN_JOB") == 0);
    CHECK(strstr(ff_status_describe(FF_ERR_FOREIGN_JOB), "another job") != NULL);
    CHECK(strcmp(ff_status_name((ff_status_t) 999), "FF_ERR_UNKNOWN") == 0);

    ff_job_key_t k1, k2;
    ff_job_key_derive(12345, &k1);
    ff_job_key_derive(12345, &k2);
    CHECK(ff_job_key_equal(&k1, &k2));
    ff_job_key_derive(12346, &k2);
    CHECK(!ff_job_key_equal(&k1, &k2));
    CHECK_STATUS(ff_job_key_parse("0123456789abcdef0123456789ABCDEF", &k1), FF_OK);
    CHECK_STATUS(ff_job_key_parse("0123", &k1), FF_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ff_job_key_parse("0123456789abcdef0123456789abcdeg", &k1), FF_ERR_INVALID_ARGUMENT);

    scratch_dir_remove(dir);
    return check_exit_code("test_host_id");
}
