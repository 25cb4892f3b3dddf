#!/usr/bin/env bash
# Runs a command and checks its exit status and output (stdout and stderr together).
#   run_expect.sh [--exit zero|nonzero|N] [--require REGEX]... [--forbid REGEX]... -- command [args...]
# Regexes are extended (grep -E) and match single lines. Prints the output, then every broken
# expectation, and exits 1 if there was any.
set -uo pipefail

want_exit=zero
require=()
forbid=()
while [ $# -gt 0 ]; do
  case "$1" in
    --exit) want_exit="$2"; shift 2 ;;
    --require) require+=("$2"); shift 2 ;;
    --forbid) forbid+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "run_expect.sh: unknown argument '$1' (use --exit, --require, --forbid, then -- command)" >&2; exit 2 ;;
  esac
done
if [ $# -eq 0 ]; then
  echo "run_expect.sh: no command given after --" >&2
  exit 2
fi

output=$("$@" 2>&1)
status=$?
printf '%s\n' "$output"

problems=()
case "$want_exit" in
  zero) [ "$status" -eq 0 ] || problems+=("exit status $status, expected 0") ;;
  nonzero) [ "$status" -ne 0 ] || problems+=("exit status 0, expected non-zero") ;;
  *) [ "$status" -eq "$want_exit" ] || problems+=("exit status $status, expected $want_exit") ;;
esac
for re in "${require[@]+"${require[@]}"}"; do
  grep -Eq -- "$re" <<<"$output" || problems+=("no output line matches /$re/")
done
for re in "${forbid[@]+"${forbid[@]}"}"; do
  if line=$(grep -Em1 -- "$re" <<<"$output"); then
    problems+=("output line matches forbidden /$re/: $line")
  fi
done

if [ "${#problems[@]}" -gt 0 ]; then
  printf 'run_expect.sh: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "run_expect.sh: exit status $status and output as expected"
