#!/usr/bin/env bash
# Intel MPI Benchmarks (IMB) suites run twice: all ranks on the bare host (plain mpirun, vader) and through
# ffrun on 2 hosts x 2 containers (network freeflow, --inter-host handoff); prints the comparison table
# (docs/suites.md). Not part of npm test. Needs root, the build (scripts/setup.sh), and IMB built with mpicc:
#   IMB_DIR (default /tmp/mpiio-suites/imb) holding IMB-MPI1 IMB-EXT IMB-RMA IMB-NBC IMB-IO; to build it:
#   git --git-dir=<mirror of github:intel/mpi-benchmarks> archive HEAD | tar -x -C "$IMB_DIR"
#   make -C "$IMB_DIR" CC=mpicc CXX=mpicxx CPPFLAGS=-DOMPI_SKIP_MPICXX=1 "CXXFLAGS=-Wno-error -O2" "CFLAGS=-Wno-error -O2" \
#        IMB-MPI1 IMB-EXT IMB-RMA IMB-NBC IMB-IO
# Also Open MPI's public test collection's alltoallv_validation (96 derived-datatype alltoallv cases, every
# byte checked), when built into OTP_DIR (default /tmp/mpiio-suites/otp; docs/suites.md says how).
# Usage: bench/suites/imb.sh [suite...]   (default: MPI1 EXT RMA NBC IO alltoallv_validation); logs go to
# $LOG_DIR (default /tmp/mpiio-suites/logs). REUSE_LOGS=1 makes the table from the logs of an earlier run.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
IMB_DIR=${IMB_DIR:-/tmp/mpiio-suites/imb}
LOG_DIR=${LOG_DIR:-/tmp/mpiio-suites/logs}
OTP_DIR=${OTP_DIR:-/tmp/mpiio-suites/otp}
SUITES=("$@"); [ ${#SUITES[@]} -gt 0 ] || SUITES=(MPI1 EXT RMA NBC IO alltoallv_validation)
# Short runs: sizes up to 4 KiB, at most 10 repetitions; IMB_TIME (default 0.2) s per size, IMB's own budget: a benchmark
# whose sizes exceed it in total stops early ("time-out") and skips its second mode.
IMB_TIME=${IMB_TIME:-0.2}
IMB_ARGS=(-npmin 4 -msglog 0:12 -iter 10 -time "$IMB_TIME" -mem 1)
mkdir -p "$LOG_DIR"
binary_of() {
  if [ "$1" = alltoallv_validation ]; then echo "$OTP_DIR/alltoallv_validation/src/alltoallv_ddt"; else echo "$IMB_DIR/IMB-$1"; fi
}
for suite in "${SUITES[@]}"; do
  [ -x "$(binary_of "$suite")" ] || { echo "no $(binary_of "$suite"): build it first (see the top of $0)" >&2; exit 2; }
done

# "run passed failed": benchmarks started (IMB prints "# Benchmarking <name>" for each), and how many ended
# with their table: all when the job reached MPI_Finalize with exit 0, else all but the one it died in.
# alltoallv_validation: "Executed N tests" and "[OK] All tests passsed" (sic) when all passed.
count() {
  local log=$1 code=$2 started
  if grep -q 'alltoallv\|Executed [0-9]* tests' "$log" && ! grep -q '# Benchmarking' "$log"; then
    started=$(grep -o 'Executed [0-9]* tests' "$log" | head -1 | grep -o '[0-9]*' || echo 0)
    if [ "$code" -eq 0 ] && grep -q '\[OK\] All tests pass' "$log"; then echo "$started $started 0"; else echo "$started ? ?"; fi
    return
  fi
  # ffrun prefixes each line with "[rank N] ".
  started=$(grep -c '^\(\[rank 0\] \)\?# Benchmarking ' "$log" || true)
  if [ "$code" -eq 0 ] && grep -q 'All processes entering MPI_Finalize' "$log"; then echo "$started $started 0"
  else echo "$started $((started > 0 ? started - 1 : 0)) 1"; fi
}

echo "| suite | bare host, vader (4 ranks): run / passed / failed | 2 hosts x 2 containers, freeflow + handoff: run / passed / failed |"
echo "|---|---|---|"
for suite in "${SUITES[@]}"; do
  bin=$(binary_of "$suite")
  args=("${IMB_ARGS[@]}")
  # IMB-IO writes and reads files: smaller sizes (IMB refuses an option given twice).
  [ "$suite" = IO ] && args=(-npmin 4 -msglog 0:10 -iter 10 -time "$IMB_TIME" -mem 1)
  [ "$suite" = alltoallv_validation ] && args=()
  bare="$LOG_DIR/$suite-bare.log"; ff="$LOG_DIR/$suite-ffrun.log"
  # IMB-IO writes its files in the working directory.
  set +e
  if [ "${REUSE_LOGS:-0}" = 1 ]; then
    bare_code=$(sed -n 's/^exit //p' "$bare.code" 2>/dev/null || echo 1); ff_code=$(sed -n 's/^exit //p' "$ff.code" 2>/dev/null || echo 1)
  else
  (cd "$LOG_DIR" && timeout 900 mpirun --allow-run-as-root --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 \
     --mca pml ob1 --mca btl self,vader -n 4 "$bin" "${args[@]}") >"$bare" 2>&1
  bare_code=$?; echo "exit $bare_code" >"$bare.code"
  # ffrun's ranks work in the caller's directory (a volume every container sees, like a shared file system).
  mkdir -p "$LOG_DIR/ffrun-work"
  (cd "$LOG_DIR/ffrun-work" && timeout 900 node "$REPO/dist/ts-runtime/src/cli/main.js" -n 4 --hosts 2 --containers-per-host 2 \
     --network freeflow --inter-host handoff --timeout 850 -- "$bin" "${args[@]}") >"$ff" 2>&1
  ff_code=$?; echo "exit $ff_code" >"$ff.code"
  fi
  set -e
  read -r br bp bf < <(count "$bare" $bare_code)
  read -r fr fp fx < <(count "$ff" $ff_code)
  name="IMB-$suite"; [ "$suite" = alltoallv_validation ] && name="ompi-tests-public alltoallv_validation"
  echo "| $name | $br / $bp / $bf (exit $bare_code) | $fr / $fp / $fx (exit $ff_code) |"
done
