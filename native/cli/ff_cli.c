/* ff_cli.c: the table-driven option parser of the C programs (ff_cli.h), on getopt_long. */
#include "ff_cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <string.h>

/* More than any program declares (ffcheck's three tables together are about 20). getopt_long returns option
 * i as FIRST_VALUE + i: above every character it returns itself ('?', ':', 'h'). */
enum { MAX_OPTIONS = 64, FIRST_VALUE = 256, HELP_VALUE = FIRST_VALUE + MAX_OPTIONS };

static ff_cli_result refused(char *problem, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ff_cli_result refused(char *problem, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, len, fmt, ap);
    va_end(ap);
    return FF_CLI_REFUSED;
}

static const char size_syntax[] = "bytes with an optional K, M or G suffix and offset, e.g. 4097, 64K or 1M+13";

/* What a value of `o` must be, for refusals: "a whole number from 1 to 16". */
static void describe(const ff_option *o, char *out, size_t len)
{
    char low[32], high[32];
    switch (o->kind) {
    case FF_OPT_LONG: snprintf(out, len, "a whole number from %ld to %ld", o->min, o->max); return;
    case FF_OPT_SIZE:
        snprintf(out, len, "a size from %s to %s (%s)", ff_size_str((size_t) o->min, low, sizeof low),
                 ff_size_str((size_t) o->max, high, sizeof high), size_syntax);
        return;
    case FF_OPT_SIZES:
        snprintf(out, len, "a comma-separated list of up to %zu sizes from %s to %s, no item empty (%s)",
                 ((const ff_size_list *) o->target)->cap, ff_size_str((size_t) o->min, low, sizeof low),
                 ff_size_str((size_t) o->max, high, sizeof high), size_syntax);
        return;
    case FF_OPT_CHOICE: {
        size_t used = (size_t) snprintf(out, len, "one of");
        for (const ff_choice *c = o->choices; c->name && used < len; c++)
            used += (size_t) snprintf(out + used, len - used, "%s %s", c == o->choices ? "" : ",", c->name);
        return;
    }
    case FF_OPT_STRING: snprintf(out, len, "a non-empty value"); return;
    case FF_OPT_FLAG: snprintf(out, len, "nothing (it takes no value)"); return;
    }
}

static bool in_bounds(const ff_option *o, size_t v)
{
    return v >= (size_t) o->min && v <= (size_t) o->max;
}

static bool set_value(const ff_option *o, const char *value)
{
    switch (o->kind) {
    case FF_OPT_FLAG: *(bool *) o->target = true; return true;
    case FF_OPT_LONG: return ff_parse_whole(value, o->min, o->max, (long *) o->target);
    case FF_OPT_SIZE: {
        size_t v;
        if (!ff_parse_size(value, &v) || !in_bounds(o, v)) return false;
        *(size_t *) o->target = v;
        return true;
    }
    case FF_OPT_SIZES: {
        /* Straight into the items: a refused list ends the program, so the default need not survive it. */
        ff_size_list *list = o->target;
        const size_t n = ff_parse_size_list(value, list->items, list->cap);
        if (n == 0) return false;
        for (size_t i = 0; i < n; i++)
            if (!in_bounds(o, list->items[i])) return false;
        list->count = n;
        return true;
    }
    case FF_OPT_STRING:
        if (!value[0]) return false;
        *(const char **) o->target = value;
        return true;
    case FF_OPT_CHOICE:
        for (const ff_choice *c = o->choices; c->name; c++)
            if (!strcmp(c->name, value)) {
                *(int *) o->target = c->value;
                return true;
            }
        return false;
    }
    return false;
}

/* The option that getopt_long refused as unknown when the word was "--flag=value" for a flag. */
static const ff_option *flag_given_a_value(const ff_option *const *by_index, int n, const char *word)
{
    const char *eq = strchr(word, '=');
    if (strncmp(word, "--", 2) || !eq) return NULL;
    for (int i = 0; i < n; i++)
        if (by_index[i]->kind == FF_OPT_FLAG && strlen(by_index[i]->name) == (size_t) (eq - word - 2) &&
            !strncmp(by_index[i]->name, word + 2, (size_t) (eq - word - 2)))
            return by_index[i];
    return NULL;
}

/* Whether "--word" abbreviates more than one option (getopt_long refuses it as it does an unknown one). */
static bool prefix_of_several(const ff_option *const *by_index, int n, const char *word)
{
    if (strncmp(word, "--", 2)) return false;
    const size_t len = strcspn(word + 2, "=");
    int matches = strncmp("help", word + 2, len) == 0;
    for (int i = 0; i < n; i++) matches += strncmp(by_index[i]->name, word + 2, len) == 0;
    return len > 0 && matches > 1;
}

ff_cli_result ff_cli_parse(const ff_cli *cli, int argc, char **argv, int *first_operand, char *problem, size_t len)
{
    const ff_option *by_index[MAX_OPTIONS];
    bool seen[MAX_OPTIONS] = {false};
    struct option longopts[MAX_OPTIONS + 2];
    int n = 0;
    problem[0] = 0;
    for (size_t t = 0; t < sizeof cli->tables / sizeof cli->tables[0]; t++)
        for (const ff_option *o = cli->tables[t]; o && o->name; o++) {
            if (n == MAX_OPTIONS)
                return refused(problem, len, "internal: more than %d options; raise MAX_OPTIONS", MAX_OPTIONS);
            by_index[n] = o;
            longopts[n] = (struct option){o->name, o->kind == FF_OPT_FLAG ? no_argument : required_argument, NULL,
                                          FIRST_VALUE + n};
            n++;
        }
    longopts[n] = (struct option){"help", no_argument, NULL, HELP_VALUE};
    longopts[n + 1] = (struct option){0};

    /* "+": stop at the first word that is not an option (a program's operands, or refused below); ":": a
     * missing value comes back as ':'; "h": -h as --help. opterr = 0: the messages are ours. */
    opterr = 0;
    optind = 1;
    int value;
    while ((value = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        const char *word = argv[optind - 1];
        if (value == 'h' || value == HELP_VALUE) return FF_CLI_HELP;
        if (value == ':') return refused(problem, len, "option '%s' needs a value", word);
        if (value == '?') {
            const ff_option *flag = flag_given_a_value(by_index, n, word);
            if (flag) return refused(problem, len, "option '--%s' takes no value, not '%s'", flag->name, word);
            if (prefix_of_several(by_index, n, word))
                return refused(problem, len, "option '%s' is ambiguous: write more of its name", word);
            return refused(problem, len, "unknown option '%s'", word);
        }
        const int index = value - FIRST_VALUE;
        const ff_option *o = by_index[index];
        if (!set_value(o, optarg)) {
            char what[320];
            describe(o, what, sizeof what);
            return refused(problem, len, "option '--%s' wants %s, not '%s'", o->name, what, optarg);
        }
        seen[index] = true;
        if (o->given) *o->given = true;
    }
    if (first_operand) *first_operand = optind;
    if (!cli->operands && optind < argc)
        return refused(problem, len, "unexpected argument '%s': options look like --name value", argv[optind]);
    for (int i = 0; i < n; i++)
        if (by_index[i]->required && !seen[i])
            return refused(problem, len, "option '--%s' is required", by_index[i]->name);
    return FF_CLI_RUN;
}

/* The default a target holds, for --help: "" when it holds none in range. */
static void default_of(const ff_option *o, char *out, size_t len)
{
    char size[32];
    out[0] = 0;
    switch (o->kind) {
    case FF_OPT_LONG: {
        const long v = *(const long *) o->target;
        if (v >= o->min && v <= o->max) snprintf(out, len, "%ld", v);
        return;
    }
    case FF_OPT_SIZE:
        if (in_bounds(o, *(const size_t *) o->target))
            snprintf(out, len, "%s", ff_size_str(*(const size_t *) o->target, size, sizeof size));
        return;
    case FF_OPT_SIZES: {
        const ff_size_list *list = o->target;
        size_t used = 0;
        for (size_t i = 0; i < list->count && used < len; i++)
            used += (size_t) snprintf(out + used, len - used, "%s%s", i ? "," : "",
                                      ff_size_str(list->items[i], size, sizeof size));
        return;
    }
    case FF_OPT_STRING:
        if (*(const char *const *) o->target) snprintf(out, len, "%s", *(const char *const *) o->target);
        return;
    case FF_OPT_CHOICE:
        for (const ff_choice *c = o->choices; c->name; c++)
            if (c->value == *(const int *) o->target) {
                snprintf(out, len, "%s", c->name);
                return;
            }
        return;
    case FF_OPT_FLAG: return;
    }
}

static const char *value_name(const ff_option *o)
{
    if (o->value_name) return o->value_name;
    switch (o->kind) {
    case FF_OPT_LONG: return "N";
    case FF_OPT_SIZE: return "SIZE";
    case FF_OPT_SIZES: return "SIZE,...";
    case FF_OPT_STRING: return "VALUE";
    case FF_OPT_CHOICE: return "WORD";
    case FF_OPT_FLAG: return "";
    }
    return "";
}

void ff_cli_print_options(const ff_option *table, FILE *to)
{
    for (const ff_option *o = table; o && o->name; o++) {
        char name[48], what[320] = "", fallback[160];
        snprintf(name, sizeof name, "--%s%s%s", o->name, o->kind == FF_OPT_FLAG ? "" : " ", value_name(o));
        if (o->kind == FF_OPT_CHOICE) {
            describe(o, what, sizeof what);
            memmove(what + 2, what, strlen(what) + 1);
            memcpy(what, "; ", 2);
        }
        default_of(o, fallback, sizeof fallback);
        fprintf(to, "  %-22s %s%s%s%s%s%s\n", name, o->help, what, o->required ? " (required)" : "",
                fallback[0] ? " (default " : "", fallback, fallback[0] ? ")" : "");
    }
}

void ff_cli_print_help(const ff_cli *cli, FILE *to)
{
    fprintf(to, "usage: %s %s\n", cli->program, cli->usage);
    if (cli->about) fprintf(to, "%s\n", cli->about);
    fprintf(to, "\noptions:\n");
    for (size_t t = 0; t < sizeof cli->tables / sizeof cli->tables[0]; t++) ff_cli_print_options(cli->tables[t], to);
    fprintf(to, "  %-22s %s\n", "--help, -h", "print this help and exit");
    bool sizes = false;
    for (size_t t = 0; t < sizeof cli->tables / sizeof cli->tables[0]; t++)
        for (const ff_option *o = cli->tables[t]; o && o->name; o++)
            sizes = sizes || o->kind == FF_OPT_SIZE || o->kind == FF_OPT_SIZES;
    if (sizes) fprintf(to, "SIZE: %s.\n", size_syntax);
}

int ff_cli_refuse(const ff_cli *cli, const char *problem)
{
    fprintf(stderr, "%s: %s\nusage: %s %s\n(%s --help lists the options)\n", cli->program, problem, cli->program,
            cli->usage, cli->program);
    return FF_CLI_EXIT_USAGE;
}

int ff_cli_refusef(const ff_cli *cli, const char *fmt, ...)
{
    char problem[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return ff_cli_refuse(cli, problem);
}

int ff_cli_parse_or_status(const ff_cli *cli, int argc, char **argv, int *first_operand, bool speak)
{
    char problem[512];
    switch (ff_cli_parse(cli, argc, argv, first_operand, problem, sizeof problem)) {
    case FF_CLI_RUN: return FF_CLI_PROCEED;
    case FF_CLI_HELP:
        if (speak) ff_cli_print_help(cli, stdout);
        return 0;
    case FF_CLI_REFUSED: break;
    }
    if (speak) ff_cli_refuse(cli, problem);
    return FF_CLI_EXIT_USAGE;
}
