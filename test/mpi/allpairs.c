/*
 * ffcheck_allpairs: the demo's content check. Every rank exchanges messages of a few sizes with every
 * other rank and checks every byte. Each rank prints one line,
 *     rank 2 on <hostname>: all 3 peers OK
 * (or which peers failed), and rank 0 prints a summary with the number of distinct host names (in
 * containers: one per container).
 */
#include "ffcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *sizes_text = "1,65537,1M+13";
#define MAX_SIZES 32
#define HOST_LEN  64

static void test_allpairs(void)
{
    size_t sizes[MAX_SIZES];
    size_t ns = ff_parse_size_list(sizes_text, sizes, MAX_SIZES);
    size_t largest = 0;
    for (size_t i = 0; i < ns; i++) largest = sizes[i] > largest ? sizes[i] : largest;
    unsigned char *sb = ff_xmalloc(largest + 1);
    ff_buf rb = ff_buf_new(largest);
    long *failed_with = ff_xmalloc(sizeof(long) * (size_t) ff.size);
    memset(failed_with, 0, sizeof(long) * (size_t) ff.size);

    /* Distance d pairs every rank with two others at once: all ordered pairs in size-1 steps. */
    for (long it = 0; it < ff.iterations; it++) {
        for (int d = 1; d < ff.size; d++) {
            int to = ff_peer_to(d), from = ff_peer_from(d);
            for (size_t i = 0; i < ns; i++) {
                size_t n = sizes[i];
                uint64_t index = (uint64_t) it * MAX_SIZES + i;
                ff_fill_msg(sb, n, (ff_msg){ff.rank, to, (int) i, index});
                ff_buf_prepare(&rb, n);
                MPI_Status st;
                MPI_Sendrecv(sb, (int) n, MPI_BYTE, to, (int) i, rb.p, (int) n, MPI_BYTE, from, (int) i, MPI_COMM_WORLD,
                             &st);
                long before = ff_local_failures();
                if (ff_check_status(&st, from, (int) i, n, "allpairs"))
                    ff_buf_check(&rb, n, (ff_msg){from, ff.rank, (int) i, index});
                failed_with[from] += ff_local_failures() - before;
            }
        }
    }

    int peers = ff.size - 1, bad = 0;
    char list[256] = "";
    for (int p = 0; p < ff.size; p++) {
        if (!failed_with[p]) continue;
        size_t used = strlen(list);
        if (used < sizeof list - 16) snprintf(list + used, sizeof list - used, "%s%d", bad ? "," : "", p);
        bad++;
    }
    if (bad)
        printf("rank %d on %s: %d of %d peers FAILED (%s)\n", ff.rank, ff.host, bad, peers, list);
    else
        printf("rank %d on %s: all %d peers OK\n", ff.rank, ff.host, peers);

    /* Rank 0 counts the distinct host names the ranks see (one per container). */
    char mine[HOST_LEN] = {0};
    snprintf(mine, sizeof mine, "%.*s", HOST_LEN - 1, ff.host);
    char *all = ff.rank == 0 ? ff_xmalloc((size_t) ff.size * HOST_LEN) : NULL;
    MPI_Gather(mine, HOST_LEN, MPI_CHAR, all, HOST_LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (ff.rank == 0) {
        int distinct = 0;
        for (int r = 0; r < ff.size; r++) {
            bool seen = false;
            for (int q = 0; q < r && !seen; q++)
                seen = strncmp(all + (size_t) r * HOST_LEN, all + (size_t) q * HOST_LEN, HOST_LEN) == 0;
            distinct += !seen;
        }
        ff_note("%d ranks on %d hostname%s, %d ordered pairs x %zu sizes, every byte checked", ff.size, distinct,
                distinct == 1 ? "" : "s", ff.size * peers, ns);
        free(all);
    }
    free(failed_with);
    free(sb);
    ff_buf_free(&rb);
}

static const ff_option options[] = {
    {"sizes", FF_OPT_STRING, &sizes_text, 0, 0, "comma-separated message sizes (suffixes K, M, G; e.g. 0,4097,1M+13)"},
    {0},
};

int main(int argc, char **argv)
{
    static const ff_program prog = {
        .name = "ffcheck_allpairs",
        .summary = "every rank exchanges messages of a few sizes with every other rank; every byte checked",
        .data_options = true,
        .default_max_size = 64 * FF_MIB,
        .default_timeout = 120,
        .options = options,
    };
    if (ff_begin(argc, argv, &prog)) {
        size_t sizes[MAX_SIZES];
        size_t ns = ff_parse_size_list(sizes_text, sizes, MAX_SIZES);
        bool ok = ns > 0;
        for (size_t i = 0; i < ns; i++) ok = ok && sizes[i] <= ff.max_size;
        if (!ok) {
            ff_usage_error("--sizes '%s' is not a list of up to %d sizes of at most --max-size bytes; write it like "
                           "1,65537,1M+13.",
                           sizes_text, MAX_SIZES);
        } else {
            ff_subtest_begin("allpairs");
            test_allpairs();
            ff_subtest_end();
        }
    }
    return ff_finish();
}
