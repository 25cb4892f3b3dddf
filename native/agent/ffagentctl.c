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
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char usage_text[] = "usage: ffagentctl [--hold] <control socket> <add|remove|list|ping|probe> [args...]\n";

/* A refused command line: the problem, then the usage; exit status 2 as when the agent cannot be reached. */
static int usage_error(const char *problem, const char *arg)
{
    fprintf(stderr, "ffagentctl: ");
    fprintf(stderr, problem, arg);
    fprintf(stderr, "\n%s", usage_text);
    return 2;
}

int main(int argc, char **argv)
{
    int hold = 0;
    enum { OPT_HOLD = 1, OPT_HELP };
    static const struct option longopts[] = {
        {"hold", no_argument, NULL, OPT_HOLD},
        {"help", no_argument, NULL, OPT_HELP},
        {0},
    };
    /* "+": options only before the socket path; the command's words after it (add job7 key=...) are the
     * agent's to judge, passed on as they are. opterr = 0: getopt_long prints nothing, the messages are ours. */
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
        switch (option) {
        case OPT_HOLD: hold = 1; break;
        case OPT_HELP: fputs(usage_text, stdout); return 0;
        default:
            return usage_error("unknown option '%s' (the options are --hold and --help, neither takes a value)",
                               argv[optind - 1]);
        }
    }
    int i = optind;
    if (argc - i < 2) {
        return usage_error("%s", argc == i ? "no control socket given" : "no command given");
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
