/* ffagentctl: sends one command line to an ffagent's control socket and prints the reply.
 *
 *   ffagentctl <control socket> add <job> key=<hex> dir=<dir> uid=<n> gid=<n> host=<i> peers=<i>@<ip>:<port>,...
 *   ffagentctl <control socket> remove <job> | list | ping
 *   ffagentctl --hold <control socket> add ... lease=1
 *       keeps the control connection open after "ok" until killed: the agent removes the
 *       job when this process ends, however it ends (SIGKILL included). Launchers use this (or the same
 *       protocol) so that a job's state never outlives them.
 * Exit status: 0 for "ok", 1 for an "error" reply, 2 when the agent cannot be reached or the command line is
 * refused (an unknown option, no socket or no command). */
#define _GNU_SOURCE
#include "ff_cli.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    bool hold = false;
    const ff_option options[] = {
        {"hold", FF_OPT_FLAG, &hold, 0, 0, "after \"ok\", keep the connection (the job's lease) open until killed"},
        {0},
    };
    /* operands: options only before the socket path; the command's words after it (add job7 key=...) are the
     * agent's to judge, passed on as they are. */
    const ff_cli cli = {.program = "ffagentctl",
                        .usage = "[--hold] <control socket> <add|remove|list|ping|probe> [args...]",
                        .tables = {options},
                        .operands = true};
    int i;
    const int status = ff_cli_parse_or_status(&cli, argc, argv, &i, true);
    if (status != FF_CLI_PROCEED) {
        return status;
    }
    if (argc - i < 2) {
        return ff_cli_refuse(&cli, argc == i ? "no control socket given" : "no command given");
    }
    const char *path = argv[i++];
    char line[8192];
    size_t used = 0;
    for (; i < argc; ++i) {
        const int n = snprintf(line + used, sizeof(line) - used, "%s%s", used ? " " : "", argv[i]);
        if (n < 0 || (size_t) n >= sizeof(line) - used - 1) {
            fprintf(stderr, "ffagentctl: command longer than %zu bytes\n", sizeof(line) - 2);
            return 2;
        }
        used += (size_t) n;
    }
    line[used++] = '\n';
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0) {
        fprintf(stderr, "ffagentctl: cannot reach ffagent at %s: %s (is ffagent running with --control %s?)\n", path,
                strerror(errno), path);
        return 2;
    }
    if (write(fd, line, used) != (ssize_t) used) {
        fprintf(stderr, "ffagentctl: sending to ffagent at %s: %s\n", path, strerror(errno));
        return 2;
    }
    char reply[4096];
    size_t got = 0;
    while (got < sizeof(reply) - 1) {
        const ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t) n;
        if (memchr(reply, '\n', got)) {
            break;
        }
    }
    reply[got] = 0;
    if (!got) {
        fprintf(stderr, "ffagentctl: ffagent at %s closed the connection without replying (not root?)\n", path);
        return 2;
    }
    fputs(reply, stdout);
    fflush(stdout);
    const int ok = strncmp(reply, "ok", 2) == 0;
    if (ok && hold) {
        /* Hold the lease until killed; the kernel closes the socket however this process ends. */
        for (;;) {
            pause();
        }
    }
    return ok ? 0 : 1;
}
