/*
 * ffcheck_names: every rank resolves its own hostname and the hostnames of every other rank (issue 9:
 * "a container cannot resolve its own hostname, nor the other containers of its job").
 *
 * own_name:   gethostname() equals MPI_Get_processor_name() and /etc/hostname; getaddrinfo() of it
 *             (AI_CANONNAME) succeeds, names it canonically, and every address it returns belongs to one
 *             of this process's own interfaces and is not loopback (unless --allow-loopback: a bare host's
 *             /etc/hosts often maps its name to 127.0.x.1).
 * peer_names: the hostnames and interface addresses of all ranks are gathered (MPI_Allgather, and from every
 *             rank directly with MPI_Sendrecv: the two must agree); every rank
 *             resolves every rank's hostname, and each address returned must be one of that rank's own.
 * reverse:    getnameinfo(NI_NAMEREQD) of every rank's resolved address gives that rank's hostname (or,
 *             where several ranks share an address, e.g. ranks of one container, one of theirs).
 *
 * No data pattern: --inject-fault shifts the gathered addresses by one rank on every rank (--fault-rank R:
 * on R only), so with ranks in more than one container peer_names and reverse must FAIL (proof that the
 * checks can fail); own_name uses the rank's own view and still passes.
 */
#include "ffcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NAME_LEN 256
/* IPv4 addresses per rank we keep: a container has eth0 (and lo); a host-network one also ul0 and br0. */
#define MAX_ADDRS 16

typedef struct {
    char name[NAME_LEN];
    int naddrs;
    uint32_t addrs[MAX_ADDRS]; /* network byte order */
} rank_identity;

static bool allow_loopback;
static rank_identity self;      /* as this rank sees itself */
static rank_identity *everyone; /* [ff.size], gathered once (shifted by --inject-fault) */

static bool is_loopback(uint32_t addr)
{
    return (ntohl(addr) >> 24) == 127;
}

static const char *addr_str(uint32_t addr, char *buf, size_t len)
{
    struct in_addr in = {.s_addr = addr};
    return inet_ntop(AF_INET, &in, buf, (socklen_t) len) ? buf : "?";
}

/* This process's IPv4 interface addresses (loopback included: a bare host may resolve its name to it). */
static void own_identity(rank_identity *me)
{
    memset(me, 0, sizeof *me);
    if (gethostname(me->name, NAME_LEN - 1) != 0) ff_fail("gethostname failed: %s", strerror(errno));
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0) {
        ff_fail("getifaddrs failed: %s", strerror(errno));
        return;
    }
    for (struct ifaddrs *it = list; it; it = it->ifa_next) {
        if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET || me->naddrs == MAX_ADDRS) continue;
        me->addrs[me->naddrs++] = ((struct sockaddr_in *) it->ifa_addr)->sin_addr.s_addr;
    }
    freeifaddrs(list);
}

static bool has_addr(const rank_identity *who, uint32_t addr)
{
    for (int i = 0; i < who->naddrs; i++)
        if (who->addrs[i] == addr) return true;
    return false;
}

/* Resolves `name` (AF_INET, AI_CANONNAME) into addrs; returns the count (0 after reporting a failure). */
static int resolve(const char *name, uint32_t *addrs, int cap)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME};
    struct addrinfo *result = NULL;
    int rc = getaddrinfo(name, NULL, &hints, &result);
    if (rc != 0) {
        ff_fail("getaddrinfo(\"%s\") failed: %s", name, gai_strerror(rc));
        return 0;
    }
    ff_expect(result->ai_canonname && strcmp(result->ai_canonname, name) == 0,
              "getaddrinfo(\"%s\", AI_CANONNAME): canonical name is \"%s\"", name,
              result->ai_canonname ? result->ai_canonname : "(none)");
    int n = 0;
    for (struct addrinfo *it = result; it && n < cap; it = it->ai_next) {
        uint32_t addr = ((struct sockaddr_in *) it->ai_addr)->sin_addr.s_addr;
        bool dup = false;
        for (int i = 0; i < n; i++) dup = dup || addrs[i] == addr;
        if (!dup) addrs[n++] = addr;
    }
    freeaddrinfo(result);
    return n;
}

static void gather_identities(void)
{
    own_identity(&self);
    everyone = ff_xmalloc(sizeof(rank_identity) * (size_t) ff.size);
    MPI_Allgather(&self, (int) sizeof self, MPI_BYTE, everyone, (int) sizeof self, MPI_BYTE, MPI_COMM_WORLD);
    /* Every pair also exchanges identities directly (and they must match the gathered ones): a collective
     * alone leaves some pairs silent, and the end-to-end suite checks that every planned path was used. */
    for (int d = 1; d < ff.size; d++) {
        int to = ff_peer_to(d), from = ff_peer_from(d);
        rank_identity direct;
        MPI_Sendrecv(&self, (int) sizeof self, MPI_BYTE, to, 0, &direct, (int) sizeof direct, MPI_BYTE, from, 0,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        ff_expect(memcmp(&direct, &everyone[from], sizeof direct) == 0,
                  "rank %d's identity sent directly differs from the gathered one", from);
    }
    if (ff.inject_fault && (ff.fault_rank < 0 || ff.fault_rank == ff.rank)) {
        /* Each rank's addresses become the next rank's: peers in other containers no longer match. */
        rank_identity first = everyone[0];
        for (int r = 0; r + 1 < ff.size; r++)
            memcpy(everyone[r].addrs, everyone[r + 1].addrs, sizeof first.addrs),
                everyone[r].naddrs = everyone[r + 1].naddrs;
        memcpy(everyone[ff.size - 1].addrs, first.addrs, sizeof first.addrs);
        everyone[ff.size - 1].naddrs = first.naddrs;
    }
}

static void test_own_name(void)
{
    const rank_identity *me = &self;
    char processor[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0;
    MPI_Get_processor_name(processor, &len);
    ff_expect(strcmp(processor, me->name) == 0, "MPI_Get_processor_name is \"%s\", gethostname \"%s\"", processor,
              me->name);
    FILE *f = fopen("/etc/hostname", "r");
    char file_name[NAME_LEN] = "";
    if (f) {
        if (!fgets(file_name, sizeof file_name, f)) file_name[0] = '\0';
        fclose(f);
        file_name[strcspn(file_name, "\n")] = '\0';
    }
    ff_expect(strcmp(file_name, me->name) == 0, "/etc/hostname says \"%s\", gethostname \"%s\"", file_name, me->name);

    uint32_t addrs[MAX_ADDRS];
    int n = resolve(me->name, addrs, MAX_ADDRS);
    char text[INET_ADDRSTRLEN];
    for (int i = 0; i < n; i++) {
        ff_expect(has_addr(me, addrs[i]), "own name %s resolves to %s, which is none of this container's addresses",
                  me->name, addr_str(addrs[i], text, sizeof text));
        ff_expect(allow_loopback || !is_loopback(addrs[i]),
                  "own name %s resolves to loopback %s, not the container's network address (peers cannot use it)",
                  me->name, addr_str(addrs[i], text, sizeof text));
    }
    if (ff.rank == 0) ff_note("%s resolves to %s", me->name, n > 0 ? addr_str(addrs[0], text, sizeof text) : "nothing");
}

static void test_peer_names(void)
{
    char text[INET_ADDRSTRLEN];
    int resolved = 0;
    for (int r = 0; r < ff.size; r++) {
        const rank_identity *peer = &everyone[r];
        ff_context("hostname of rank %d", r);
        uint32_t addrs[MAX_ADDRS];
        int n = resolve(peer->name, addrs, MAX_ADDRS);
        for (int i = 0; i < n; i++)
            ff_expect(has_addr(peer, addrs[i]), "rank %d's name %s resolves to %s, which is not one of its addresses",
                      r, peer->name, addr_str(addrs[i], text, sizeof text));
        resolved += n > 0;
    }
    ff_context(NULL);
    if (ff.rank == 0) ff_note("%d of %d ranks' hostnames resolved to their own addresses", resolved, ff.size);
}

static void test_reverse(void)
{
    char text[INET_ADDRSTRLEN];
    for (int r = 0; r < ff.size; r++) {
        const rank_identity *peer = &everyone[r];
        uint32_t addrs[MAX_ADDRS];
        int n = resolve(peer->name, addrs, MAX_ADDRS);
        for (int i = 0; i < n; i++) {
            if (allow_loopback && is_loopback(addrs[i]))
                continue; /* 127.0.0.1 is "localhost" by convention, whatever the host is called */
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = {.s_addr = addrs[i]}};
            char host[NAME_LEN];
            int rc = getnameinfo((struct sockaddr *) &sa, sizeof sa, host, sizeof host, NULL, 0, NI_NAMEREQD);
            if (!ff_expect(rc == 0, "reverse lookup of %s (rank %d, %s) failed: %s",
                           addr_str(addrs[i], text, sizeof text), r, peer->name, gai_strerror(rc)))
                continue;
            /* The name must belong to a rank that really has this address (the same rank, or one sharing it). */
            bool owner_named = false;
            for (int q = 0; q < ff.size && !owner_named; q++)
                owner_named = strcmp(everyone[q].name, host) == 0 && has_addr(&everyone[q], addrs[i]);
            ff_expect(owner_named, "reverse lookup of %s (rank %d's address) gives \"%s\", expected %s",
                      addr_str(addrs[i], text, sizeof text), r, host, peer->name);
        }
    }
}

static void setup_and_run(void (*test)(void))
{
    if (!everyone) gather_identities();
    test();
}

static void run_own_name(void)
{
    setup_and_run(test_own_name);
}
static void run_peer_names(void)
{
    setup_and_run(test_peer_names);
}
static void run_reverse(void)
{
    setup_and_run(test_reverse);
}

static const ff_option options[] = {
    {"allow-loopback", FF_OPT_FLAG, &allow_loopback, 0, 0,
     "accept a hostname that resolves to loopback (a bare host's /etc/hosts; never in a container)"},
    {0},
};

static const ff_subtest subtests[] = {
    {"own_name", run_own_name,
     "gethostname = /etc/hostname = processor name; it resolves to an own, non-loopback address"},
    {"peer_names", run_peer_names, "every rank's hostname resolves to that rank's own addresses"},
    {"reverse", run_reverse, "every rank's address resolves back to its hostname"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_names",
        .summary = "every rank resolves its own and every other rank's hostname, forward and reverse",
        .min_ranks = 1,
        .data_options = true,
        .default_timeout = 60,
        .options = options,
        .subtests = subtests,
    };
    int rc = ff_main(argc, argv, &prog);
    free(everyone);
    return rc;
}
