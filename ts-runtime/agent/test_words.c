/* Unit tests of the agent's word splitting (ctest: ffrun_words). */
#include <stdio.h>
#include <string.h>

#include "ffrun_words.h"

static int failures;

static void expect_words(const char *line, int count, const char *const *expected) {
  char **argv;
  int argc;
  char error[256];
  if (ffrun_words_split(line, &argv, &argc, error, sizeof error) != 0) {
    printf("FAIL %s: refused: %s\n", line, error);
    failures++;
    return;
  }
  int ok = argc == count;
  for (int i = 0; ok && i < count; i++) ok = strcmp(argv[i], expected[i]) == 0;
  if (!ok) {
    printf("FAIL %s: got %d words:", line, argc);
    for (int i = 0; i < argc; i++) printf(" [%s]", argv[i]);
    printf("\n");
    failures++;
  }
  ffrun_words_free(argv);
}

static void expect_refused(const char *line, const char *reason) {
  char **argv;
  int argc;
  char error[256];
  if (ffrun_words_split(line, &argv, &argc, error, sizeof error) == 0) {
    printf("FAIL %s: accepted (%d words)\n", line, argc);
    ffrun_words_free(argv);
    failures++;
  } else if (strstr(error, reason) == NULL) {
    printf("FAIL %s: message '%s' lacks '%s'\n", line, error, reason);
    failures++;
  }
}

#define WORDS(line, ...)                                                    \
  do {                                                                      \
    static const char *const expected[] = {__VA_ARGS__};                    \
    expect_words(line, (int)(sizeof expected / sizeof *expected), expected); \
  } while (0)

int main(void) {
  /* What mpirun 4.1.4 sends (leading blank, double-quoted values). */
  WORDS(" orted --daemonize -mca ess \"env\" -mca orte_hnp_uri \"1449918464.0;tcp://127.0.0.1:58685\"", "orted", "--daemonize", "-mca",
        "ess", "env", "-mca", "orte_hnp_uri", "1449918464.0;tcp://127.0.0.1:58685");
  /* The injection of issue 7: the value arrives double-quoted and must stay a literal string. */
  WORDS("orted -mca btl_tcp_eager_limit \"65536 $(touch /tmp/x) `id`\"", "orted", "-mca", "btl_tcp_eager_limit",
        "65536 $(touch /tmp/x) `id`");
  WORDS("a `id` $HOME ${HOME} ~ * ? [a] {a,b} !x", "a", "`id`", "$HOME", "${HOME}", "~", "*", "?", "[a]", "{a,b}", "!x");
  expect_refused("a $(touch /tmp/x)", "operator '('");
  WORDS("'a  b' 'it''s' \"x\\\"y\" \"\\$z\" \"\\n\" a\\ b \\$q", "a  b", "its", "x\"y", "$z", "\\n", "a b", "$q");
  WORDS("'' \"\" x", "", "", "x");
  WORDS("a'b'\"c\"d", "abcd");
  WORDS("\t a \n b ", "a", "b");
  WORDS("'; & | < > ( )' \";&|\"", "; & | < > ( )", ";&|");
  {
    char **argv;
    int argc;
    char error[256];
    if (ffrun_words_split("   ", &argv, &argc, error, sizeof error) != 0 || argc != 0 || argv[0] != NULL) {
      printf("FAIL blank line\n");
      failures++;
    } else {
      ffrun_words_free(argv);
    }
  }
  expect_refused("true; touch /tmp/x", "operator ';'");
  expect_refused("true && touch /tmp/x", "operator '&'");
  expect_refused("true | cat", "operator '|'");
  expect_refused("cat </etc/passwd", "operator '<'");
  expect_refused("echo x >/tmp/x", "operator '>'");
  expect_refused("(id)", "operator '('");
  expect_refused("sleep 1 &", "operator '&'");
  expect_refused("echo 'open", "unterminated single quote");
  expect_refused("echo \"open", "unterminated double quote");
  expect_refused("echo \\", "backslash ends");
  expect_refused("# comment", "comment");
  if (failures == 0) printf("ffrun_words: all passed\n");
  return failures == 0 ? 0 : 1;
}
