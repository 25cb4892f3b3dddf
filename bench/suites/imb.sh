#!/usr/bin/env bash
# Intel MPI Benchmarks (IMB) suites run twice: all ranks on the bare host (plain mpirun, vader) and through
# ffrun on 2 hosts x 2 containers (network freeflow, --inter-host handoff); prints the comparison table
# (docs/suites.md). Not part of npm test. Needs root, the build (scripts/setup.sh), and IMB built with mpicc:
#   IMB_DIR (default /tmp/mpiio-suites/imb) holding IMB-MPI1 IMB-EXT IMB-RMA IMB-NBC IMB-IO; to build it:
#   git --git-dir=<mirror of github:intel/mpi-benchmarks> archive HEAD | tar -x -C "$IMB_DIR"
#   make -C "$IMB_DIR" CC=mpicc CXX=mpicxx CPPFLAGS=-DOMPI_SKIP_MPICXX=1 "CXXFLAGS=-Wno-error -O2" "CFLAGS=-Wno-error -O2" \
#        IMB-MPI1 IMB-EXT IMB-RMA IMB-NBC IMB-IO
# Usage: bench/suites/imb.sh [suite...]   (default: MPI1 EXT RMA NBC IO); logs go to $LOG_DIR (default /tmp/mpiio-suites/logs).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
IMB_DIR=${IMB_DIR:-/tmp/mpiio-suites/imb}
LOG_DIR=${LOG_DIR:-/tmp/mpiio-suites/logs}
SUITES=("$@"); [ ${#SUITES[@]} -gt 0 ] || SUITES=(MPI1 EXT RMA NBC IO)
# Short runs: sizes up to 4 KiB, at most 10 repetitions or 0.2 s per size (IMB's own limits).
IMB_ARGS=(-npmin 4 -msglog 0:12 -iter 10 -time 0.2 -mem 1)
mkdir -p "$LOG_DIR"
for suite in "${SUITES[@]}"; do
  [ -x "$IMB_DIR/IMB-$suite" ] || { echo "no $IMB_DIR/IMB-$suite: build it first (see the top of $0)" >&2; exit 2; }
done

# "run passed failed": benchmarks started (IMB prints "# Benchmarking <name>" for each), and how many ended
# with their table: all when the job reached MPI_Finalize with exit 0, else all but the one it died in.
count() {
  local log=$1 code=$2 started
  started=$(grep -c '^# Benchmarking ' "$log" || true)
  if [ "$code" -eq 0 ] && grep -q 'All processes entering MPI_Finalize' "$log"; then echo "$started $started 0"
  else echo "$started $((started > 0 ? started - 1 : 0)) 1"; fi
}

echo "| suite | bare host, vader (4 ranks): run / passed / failed | 2 hosts x 2 containers, freeflow + handoff: run / passed / failed |"
echo "|---|---|---|"
for suite in "${SUITES[@]}"; do
  bin="$IMB_DIR/IMB-$suite"
  extra=(); [ "$suite" = IO ] && extra=(-msglog 0:10)
  bare="$LOG_DIR/$suite-bare.log"; ff="$LOG_DIR/$suite-ffrun.log"
  # IMB-IO writes its files in the working directory.
  set +e
  (cd "$LOG_DIR" && timeout 900 mpirun --allow-run-as-root --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 \
     --mca pml ob1 --mca btl self,vader -n 4 "$bin" "${IMB_ARGS[@]}" "${extra[@]}") >"$bare" 2>&1
  bare_code=$?
  # ffrun's ranks work in the caller's directory (a volume every container sees, like a shared file system).
  mkdir -p "$LOG_DIR/ffrun-work"
  (cd "$LOG_DIR/ffrun-work" && timeout 900 node "$REPO/dist/ts-runtime/src/cli/main.js" -n 4 --hosts 2 --containers-per-host 2 \
     --network freeflow --inter-host handoff --timeout 850 -- "$bin" "${IMB_ARGS[@]}" "${extra[@]}") >"$ff" 2>&1
  ff_code=$?
  set -e
  read -r br bp bf < <(count "$bare" $bare_code)
  read -r fr fp fx < <(count "$ff" $ff_code)
  echo "| IMB-$suite | $br / $bp / $bf (exit $bare_code) | $fr / $fp / $fx (exit $ff_code) |"
done
