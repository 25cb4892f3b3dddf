#!/usr/bin/env bash
# The tests, in the order that fails fastest: TypeScript unit tests (no root, seconds), lint, then the
# native tests (ctest) and the tests that need root (*.root.test.ts: namespaces, mounts, processes) and the
# end-to-end tests (*.e2e.test.ts: clusters, ffrun, Open MPI).
#   scripts/test.sh          all of it (npm test, after scripts/setup.sh)
#   scripts/test.sh unit     the unit tests alone (npm run test:unit; after a build, any user)
#   scripts/test.sh e2e      ctest, root and end-to-end tests (npm run test:e2e; root)
set -euo pipefail
cd "$(dirname "$0")/.."

# uvu matches these against the paths of the compiled tests under dist/.
UNIT_TESTS='(?<!\.e2e|\.root)\.test\.js$'
ROOT_TESTS='\.(e2e|root)\.test\.js$'

unit() {
  echo "== TypeScript unit tests (uvu)"
  npx uvu dist "$UNIT_TESTS"
}

lint() {
  echo "== lint (eslint, prettier, import cycles, clang-format)"
  npm run --silent lint
}

e2e() {
  echo "== native and MPI tests (ctest)"
  ctest --test-dir build --output-on-failure --timeout 300
  echo "== ctest done at $SECONDS s"
  echo "== TypeScript root and end-to-end tests (uvu)"
  npx uvu dist "$ROOT_TESTS"
  echo "== e2e done at $SECONDS s"
}

case "${1:-all}" in
  unit) unit ;;
  lint) lint ;;
  e2e) e2e ;;
  all)
    unit
    lint
    e2e
    ;;
  *) echo "usage: scripts/test.sh [unit|lint|e2e|all]" >&2; exit 2 ;;
esac
