#define _POSIX_C_SOURCE 200809L
#include "ffrun_words.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n'; }
static int is_operator(char c) { return c != '\0' && strchr(";&|<>()", c) != NULL; }

void ffrun_words_free(char **argv) {
  if (argv == NULL) return;
  for (char **word = argv; *word != NULL; word++) free(*word);
  free(argv);
}

int ffrun_words_split(const char *line, char ***argv_out, int *argc_out, char *error, size_t error_size) {
  size_t length = strlen(line);
  /* No word is longer than the line, and there are at most length/2+1 words. */
  char **argv = calloc(length / 2 + 2, sizeof *argv);
  char *word = malloc(length + 1);
  int argc = 0;
  if (argv == NULL || word == NULL) {
    snprintf(error, error_size, "out of memory");
    goto fail;
  }
  const char *p = line;
  for (;;) {
    while (is_blank(*p)) p++;
    if (*p == '\0') break;
    size_t n = 0;
    if (*p == '#') {
      snprintf(error, error_size, "refusing word %d: an unquoted '#' starts a shell comment", argc + 1);
      goto fail;
    }
    while (*p != '\0' && !is_blank(*p)) {
      char c = *p;
      if (c == '\'') {
        const char *end = strchr(p + 1, '\'');
        if (end == NULL) {
          snprintf(error, error_size, "unterminated single quote in word %d", argc + 1);
          goto fail;
        }
        memcpy(word + n, p + 1, (size_t)(end - p - 1));
        n += (size_t)(end - p - 1);
        p = end + 1;
      } else if (c == '"') {
        p++;
        for (;;) {
          if (*p == '\0') {
            snprintf(error, error_size, "unterminated double quote in word %d", argc + 1);
            goto fail;
          }
          if (*p == '"') {
            p++;
            break;
          }
          if (*p == '\\' && p[1] != '\0' && strchr("$`\"\\\n", p[1]) != NULL) {
            if (p[1] != '\n') word[n++] = p[1];
            p += 2;
          } else {
            word[n++] = *p++;
          }
        }
      } else if (c == '\\') {
        if (p[1] == '\0') {
          snprintf(error, error_size, "a backslash ends the command line");
          goto fail;
        }
        if (p[1] != '\n') word[n++] = p[1];
        p += 2;
      } else if (is_operator(c)) {
        snprintf(error, error_size,
                 "refusing an unquoted shell operator '%c' in word %d: the agent runs one command, never a shell", c, argc + 1);
        goto fail;
      } else {
        word[n++] = *p++;
      }
    }
    word[n] = '\0';
    argv[argc] = strdup(word);
    if (argv[argc] == NULL) {
      snprintf(error, error_size, "out of memory");
      goto fail;
    }
    argc++;
  }
  free(word);
  argv[argc] = NULL;
  *argv_out = argv;
  *argc_out = argc;
  return 0;
fail:
  free(word);
  ffrun_words_free(argv);
  return -1;
}
