/*
 * Splits the command line an rsh agent receives (what ssh would hand a remote shell) into argv with
 * POSIX-shell quoting rules and NO expansion: single quotes, double quotes (inside them a backslash
 * escapes only $ ` " \ and newline), backslash outside quotes. $, `, globs, ~ and the like are kept as
 * the characters they are. An unquoted shell operator character (; & | < > ( )) is refused, because
 * the agent runs exactly one command and never a shell; so is an unterminated quote.
 */
#ifndef FFRUN_WORDS_H
#define FFRUN_WORDS_H

#include <stddef.h>

/* On success returns 0 and a NULL-terminated argv (free it with ffrun_words_free); on refusal returns
 * -1 and a message in `error`. An empty line gives argc 0. */
int ffrun_words_split(const char *line, char ***argv, int *argc, char *error, size_t error_size);
void ffrun_words_free(char **argv);

#endif
