#!/usr/bin/env bash
# All tests: native unit tests (ctest), then the TypeScript unit and end-to-end tests (uvu).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== native unit tests (ctest)"
ctest --test-dir build --output-on-failure --timeout 300
echo "== ctest took $SECONDS s"

echo "== TypeScript, MPI and end-to-end tests (uvu)"
npx uvu dist '\.test\.js$'
