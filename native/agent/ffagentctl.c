/* ffagentctl: sends one command line to an ffagent's control socket and prints the reply.
 *
 *   ffagentctl <control socket> add <job> key=<hex> dir=<dir> uid=<n> gid=<n> host=<i> peers=<i>@<ip>:<port>,...
 *   ffagentctl <control socket> remove <job> | list | ping
 *   ffagentctl --hold <control socket> add ... lease=1
 *       keeps the control connection open after "ok" until killed: the agent removes the
 *       job when this process ends, however it ends (SIGKILL included). Launchers use this (or the same
 *       protocol) so that a job's state never outlives them.
 * Exit status: 0 for "ok", 1 for an "error" reply, 2 when the agent cannot be reached. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int i = 1;
    int hold = 0;
    if (i < argc && !strcmp(argv[i], "--hold")) {
        hold = 1;
        ++i;
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: ffagentctl [--hold] <control socket> <add|remove|list|ping|probe> [args...]\n");
        return 2;
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
