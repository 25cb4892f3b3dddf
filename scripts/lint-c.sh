#!/usr/bin/env bash
# clang-format over the C and C++ sources (.clang-format): `--check` fails on any difference (npm run lint),
# `--fix` rewrites the files in place (npm run format).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
  --check) flags=(--dry-run -Werror) ;;
  --fix) flags=(-i) ;;
  *) echo "usage: scripts/lint-c.sh --check|--fix" >&2; exit 2 ;;
esac
if ! command -v clang-format >/dev/null; then
  echo "clang-format not found: run scripts/setup.sh (it installs Debian's clang-format)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files -co --exclude-standard -- native btl test/mpi bench | grep -E '\.(c|h|cc)$' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
clang-format "${flags[@]}" "${files[@]}"
