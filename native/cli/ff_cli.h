/* ff_cli.h: the command lines of the C programs (ffagent, ffagentctl, ffcheck_*, ffbench_*, rawstream): one
 * size syntax, one whole-number syntax and one table-driven option parser, so that every program takes
 * `--name value` and `--name=value`, prints --help from its table and refuses a bad command line in the same
 * words with exit status 2. The ff_cli library (native/cli/CMakeLists.txt); not part of the core. */
#ifndef FF_CLI_H
#define FF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Bytes with an optional K, M or G suffix (powers of 1024; "K", "KB" and "KiB" alike, any case) and an
 * optional offset: "4097", "64M", "1M+13", "2GiB-1". False for anything else, a negative result or one
 * that does not fit; range checks are the caller's. */
bool ff_parse_size(const char *text, size_t *out);
/* A comma-separated list of such sizes ("8,64K,1M+13") into out[0..cap): the count, or 0 when an item is
 * empty or not a size, or there are more than `cap` (at most 64). */
size_t ff_parse_size_list(const char *text, size_t *out, size_t cap);
/* A whole decimal number from min to max: "64", not "64x", "", "0x40" or one out of range. */
bool ff_parse_whole(const char *text, long min, long max, long *out);
/* Splits a comma-separated list into at most `cap` items of fewer than `size` bytes each (item i at
 * items + i * size): the count, or 0 when an item is empty or too long or there are more than `cap`. */
size_t ff_split_list(const char *text, char *items, size_t size, size_t cap);
/* Whether `name` is one of the comma-separated names of `list`, whole names only; a NULL list holds every
 * name (the option was not given). --only, --ops, --flavours. */
bool ff_listed(const char *list, const char *name);
/* n for people: "64 KiB", "1 MiB+13", "4097 B"; returns buf. */
const char *ff_size_str(size_t n, char *buf, size_t len);

/* Exit status of a refused command line (1 stays for failures after it was accepted). */
enum { FF_CLI_EXIT_USAGE = 2 };

/* What an option's value is, and so what its `target` points at. */
typedef enum {
    FF_OPT_FLAG,   /* bool: set when given; takes no value */
    FF_OPT_LONG,   /* long: a whole number from min to max */
    FF_OPT_SIZE,   /* size_t: a size (ff_parse_size) from min to max bytes */
    FF_OPT_SIZES,  /* ff_size_list: a comma-separated list of such sizes, none empty */
    FF_OPT_STRING, /* const char *: any text but the empty one (points into argv) */
    FF_OPT_CHOICE, /* int: the value of the one of `choices` named */
} ff_opt_kind;

/* One word of an FF_OPT_CHOICE option; a table of them ends with {0}. */
typedef struct {
    const char *name;
    int value;
} ff_choice;

/* The target of an FF_OPT_SIZES option: items[0..count), at most cap; count holds the default's length
 * until the option is given. */
typedef struct {
    size_t *items;
    size_t cap;
    size_t count;
} ff_size_list;

/* One option; a table of them ends with {0}. The first six fields are positional in every table. */
typedef struct {
    const char *name; /* without the leading "--" */
    ff_opt_kind kind;
    void *target;
    long min, max; /* LONG: the value's bounds; SIZE and SIZES: each size's, in bytes */
    const char *help;
    const ff_choice *choices; /* CHOICE: the words it takes */
    bool required;            /* refused when not given */
    bool *given;              /* when not NULL: set when the option is given */
    const char *value_name;   /* in --help: "PATH", "IPV4:PORT"; NULL: from the kind ("N", "SIZE", ...) */
} ff_option;

/* A program's command line. */
typedef struct {
    const char *program;        /* the name in every message: "ffagent" */
    const char *usage;          /* what follows the name on the usage line: "--control PATH [options]" */
    const char *about;          /* NULL, or lines --help prints between the usage and the options */
    const ff_option *tables[4]; /* the option tables; unused ones NULL */
    bool operands;              /* the words after the options are the program's (parsing stops at the
                                 * first); otherwise a word that is not an option is refused */
} ff_cli;

typedef enum { FF_CLI_RUN, FF_CLI_HELP, FF_CLI_REFUSED } ff_cli_result;

/* Parses argv[1..argc) with getopt_long against cli's tables (plus --help and -h, built in): fills the
 * targets of the options given and checks each value and the required options. FF_CLI_REFUSED leaves one
 * message in problem[0..len) naming the option and the fix; `first_operand` (may be NULL) receives the
 * index of the first word that is not an option. Not reentrant (getopt's globals); resets optind. */
ff_cli_result ff_cli_parse(const ff_cli *cli, int argc, char **argv, int *first_operand, char *problem, size_t len);
/* The usage line, the `about` lines and one line per option (with its default where the target holds one
 * in range). */
void ff_cli_print_help(const ff_cli *cli, FILE *to);
/* One line per option of `table`, as --help prints them. */
void ff_cli_print_options(const ff_option *table, FILE *to);
/* Prints "<program>: <problem>", the usage line and where the options are listed, on stderr; returns
 * FF_CLI_EXIT_USAGE for main to return. */
int ff_cli_refuse(const ff_cli *cli, const char *problem);
/* ff_cli_refuse with a problem formatted from fmt (a program's own checks after ff_cli_parse). */
int ff_cli_refusef(const ff_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ff_cli_parse, then on --help the help on stdout, on a refusal ff_cli_refuse, both only when `speak` (MPI
 * programs: rank 0 speaks for all): for programs that end on either. Returns FF_CLI_PROCEED, or the exit
 * status for main to return (0 after --help, FF_CLI_EXIT_USAGE). */
enum { FF_CLI_PROCEED = -1 };
int ff_cli_parse_or_status(const ff_cli *cli, int argc, char **argv, int *first_operand, bool speak);

#endif
