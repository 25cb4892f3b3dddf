/* test_ff_cli: the option parser (ff_cli.h) on argv arrays, one entry of every kind: the values it fills,
 * what it leaves alone, and the problem of each refusal (ctest native.ff_cli; no program, no process). */
#include "../tests/check.h" /* first: it defines _GNU_SOURCE */
#include "ff_cli.h"

static long count;
static size_t size, size_items[4];
static ff_size_list sizes = {size_items, 4, 0};
static bool flag, count_given;
static const char *text;
static int choice;
static const ff_choice words[] = {{"one", 1}, {"two", 2}, {0}};
static const ff_option options[] = {
    {"count", FF_OPT_LONG, &count, -1, 16, "a count", .given = &count_given},
    {"size", FF_OPT_SIZE, &size, 1, 1L << 20, "a size"},
    {"sizes", FF_OPT_SIZES, &sizes, 1, 1L << 20, "sizes"},
    {"flag", FF_OPT_FLAG, &flag, 0, 0, "a flag"},
    {"text", FF_OPT_STRING, &text, 0, 0, "a text", .required = true},
    {"word", FF_OPT_CHOICE, &choice, 0, 0, "a word", .choices = words},
    {0},
};

/* Parses the words after "prog" with every target at its default; the result, and the problem in `problem`. */
static ff_cli_result parse(bool operands, int *first_operand, char *problem, const char *const *args)
{
    static char *argv[16];
    int argc = 0;
    argv[argc++] = "prog";
    for (; *args; args++) argv[argc++] = (char *) *args;
    argv[argc] = NULL;
    count = 3;
    size = 7;
    sizes.count = 0;
    flag = count_given = false;
    text = NULL;
    choice = 0;
    const ff_cli cli = {.program = "prog", .usage = "[options]", .tables = {options}, .operands = operands};
    return ff_cli_parse(&cli, argc, argv, first_operand, problem, 256);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void refused(const char *want, const char *const *args)
{
    char problem[256];
    const ff_cli_result r = parse(false, NULL, problem, args);
    CHECK(r == FF_CLI_REFUSED);
    if (r != FF_CLI_REFUSED || strcmp(problem, want) != 0) {
        fprintf(stderr, "  got \"%s\"\n  want \"%s\"\n", problem, want);
        ++check_failures;
    }
}

int main(void)
{
    char problem[256];
    /* Both spellings, every kind; an option's unique prefix is the option (getopt_long's rule). */
    CHECK(parse(false, NULL, problem,
                ARGS("--count", "-1", "--size=64K", "--sizes", "8,1K+3", "--flag", "--text=", "x", "--word", "two")) ==
          FF_CLI_REFUSED); /* "--text=" is an empty text, refused; "x" never reached */
    CHECK(parse(false, NULL, problem,
                ARGS("--count", "-1", "--size=64K", "--sizes", "8,1K+3", "--fl", "--text=a b", "--word", "two")) ==
          FF_CLI_RUN);
    CHECK(count == -1 && count_given && size == 65536 && sizes.count == 2 && size_items[0] == 8 &&
          size_items[1] == 1027 && flag && !strcmp(text, "a b") && choice == 2);
    /* Options not given keep their defaults. */
    CHECK(parse(false, NULL, problem, ARGS("--text", "t")) == FF_CLI_RUN);
    CHECK(count == 3 && !count_given && size == 7 && sizes.count == 0 && !flag && choice == 0);
    CHECK(parse(false, NULL, problem, ARGS("--help")) == FF_CLI_HELP);
    CHECK(parse(false, NULL, problem, ARGS("-h")) == FF_CLI_HELP);
    /* Operands: parsing stops at the first, which is the program's, options after it included. */
    int first = 0;
    CHECK(parse(true, &first, problem, ARGS("--text", "t", "sock", "--count", "x")) == FF_CLI_RUN && first == 3);

    refused("unknown option '--bogus'", ARGS("--bogus"));
    refused("option '--s' is ambiguous: write more of its name", ARGS("--s", "8"));
    refused("option '--count' needs a value", ARGS("--text", "t", "--count"));
    refused("option '--flag' takes no value, not '--flag=1'", ARGS("--flag=1"));
    refused("option '--count' wants a whole number from -1 to 16, not '17'", ARGS("--count", "17"));
    refused("option '--count' wants a whole number from -1 to 16, not '0x4'", ARGS("--count=0x4"));
    refused("option '--size' wants a size from 1 B to 1 MiB (bytes with an optional K, M or G suffix and offset, "
            "e.g. 4097, 64K or 1M+13), not '2M'",
            ARGS("--size", "2M"));
    refused("option '--sizes' wants a comma-separated list of up to 4 sizes from 1 B to 1 MiB, no item empty (bytes "
            "with an optional K, M or G suffix and offset, e.g. 4097, 64K or 1M+13), not '8,,16'",
            ARGS("--sizes", "8,,16"));
    refused("option '--sizes' wants a comma-separated list of up to 4 sizes from 1 B to 1 MiB, no item empty (bytes "
            "with an optional K, M or G suffix and offset, e.g. 4097, 64K or 1M+13), not '1,2,3,4,5'",
            ARGS("--sizes", "1,2,3,4,5"));
    refused("option '--word' wants one of one, two, not 'three'", ARGS("--word", "three"));
    refused("option '--text' is required", ARGS("--flag"));
    refused("unexpected argument 'stray': options look like --name value", ARGS("--text", "t", "stray"));

    char buf[32];
    CHECK(!strcmp(ff_size_str((1u << 31) - 1, buf, sizeof buf), "2 GiB-1"));
    CHECK(!strcmp(ff_size_str((1u << 20) + 13, buf, sizeof buf), "1 MiB+13"));
    char items[3][8];
    CHECK(ff_split_list("a,bb,c", &items[0][0], sizeof items[0], 3) == 3 && !strcmp(items[1], "bb"));
    CHECK(ff_split_list("a,", &items[0][0], sizeof items[0], 3) == 0);
    CHECK(ff_split_list("a,b,c,d", &items[0][0], sizeof items[0], 3) == 0);

    return check_exit_code("test_ff_cli");
}
