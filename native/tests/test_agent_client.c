/* The client side without an agent: a missing agent.sock, argument checks, and the refusal names. The
 * protocol itself is tested against the real ffagent in test/agent/netns_test.sh. */
#include "check.h"

#include "freeflow.h"

#include <errno.h>

int main(void)
{
    char *dir = scratch_dir_create();
    ff_job_key_t key;
    ff_job_key_derive(7, &key);
    ff_agent_conn_t *conn = NULL;
    ff_agent_refusal_t reason = FF_AGENT_OK;
    /* no agent serves this directory: NOT_FOUND (the message on stderr names agent.sock) */
    CHECK_STATUS(ff_agent_register(dir, &key, 1, &conn, &reason), FF_ERR_NOT_FOUND);
    CHECK(conn == NULL);
    /* a stale file where the socket should be: connection refused, a system error */
    char path[4200];
    snprintf(path, sizeof(path), "%s/agent.sock", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fclose(f);
    }
    CHECK_STATUS(ff_agent_register(dir, &key, 1, &conn, &reason), FF_ERR_SYSTEM);
    CHECK(errno == ECONNREFUSED);
    CHECK_STATUS(ff_agent_register(NULL, &key, 1, &conn, &reason), FF_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ff_agent_register(dir, NULL, 1, &conn, &reason), FF_ERR_INVALID_ARGUMENT);
    char longdir[200];
    memset(longdir, 'x', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = 0;
    CHECK_STATUS(ff_agent_register(longdir, &key, 1, &conn, &reason), FF_ERR_INVALID_ARGUMENT);
    int fd;
    CHECK_STATUS(ff_agent_connect(NULL, 1, 0, &fd, &reason), FF_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(ff_agent_accept(NULL, &fd, NULL, NULL), FF_ERR_INVALID_ARGUMENT);
    CHECK(ff_agent_fd(NULL) == -1);
    ff_agent_close(NULL);

    for (int r = 0; r < FF_AGENT_REFUSAL_COUNT; ++r) {
        CHECK(strncmp(ff_agent_refusal_name((ff_agent_refusal_t) r), "FF_AGENT_", 9) == 0);
        CHECK(strlen(ff_agent_refusal_describe((ff_agent_refusal_t) r)) > 5);
    }
    CHECK(strcmp(ff_agent_refusal_name(FF_AGENT_REFUSAL_COUNT), "FF_AGENT_UNKNOWN_REFUSAL") == 0);
    scratch_dir_remove(dir);
    return check_exit_code("test_agent_client");
}
