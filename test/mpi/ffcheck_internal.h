/* ffcheck_internal.h: what the parts of the ffcheck library tell each other (not for programs). */
#ifndef FFCHECK_INTERNAL_H
#define FFCHECK_INTERNAL_H

#include <stdbool.h>

typedef enum { FF_PARSE_RUN, FF_PARSE_HELP, FF_PARSE_LIST, FF_PARSE_ERROR } ff_parse_result;

/* Parses the common, data and program options into ff (and the program's targets). On a problem,
 * rank 0 has printed it (ff_usage_error) and FF_PARSE_ERROR is returned. */
ff_parse_result ff_options_parse(int argc, char **argv);
void ff_options_print_help(void);
/* Whether --only selects the subtest (all are selected without --only). */
bool ff_subtest_selected(const char *name);

#endif
