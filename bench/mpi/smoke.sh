#!/usr/bin/env bash
# Smoke test of ffbench_mpi (registered with ctest as bench.mpi.smoke): every benchmark in --validate mode
# with small sizes over shared memory (vader) and TCP on loopback, with 2 and 4 ranks, then proof that a
# corrupted byte fails the run and that bad input is refused. Timings are not checked (see README.md).
# Usage: bench/mpi/smoke.sh [path/to/ffbench_mpi]   (default: build/bin/ffbench_mpi)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../build/bin/ffbench_mpi}"
if [ ! -x "$bin" ]; then
  echo "smoke: $bin is not built: run scripts/setup.sh (or pass the binary's path)" >&2
  exit 1
fi

work="$(mktemp -d -t ffbench-smoke.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Loopback only for TCP (Open MPI excludes lo by default and would use the host's external address).
common=(--allow-run-as-root --mca pml ob1 --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo
  --mca odls_base_sigkill_timeout 0) # without it mpirun lingers 1-2 s after a failing (non-zero) exit
shm=(--mca btl self,vader)
tcp=(--mca btl self,tcp)
two=(-n 2 --bind-to core)
# More ranks than the 2 cores: yield while polling, or time slices make a run take seconds.
four=(-n 4 --oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
sizes=(--sizes 1,3,8,64,1K,4K,9K,64K,256K)
failures=0

fail() {
  echo "smoke: FAIL: $*" >&2
  failures=$((failures + 1))
}

# run <name> <expected exit status> <mpirun args...> -- <ffbench args...>: output in $work/<name>.{out,err}
run() {
  local name="$1" expected="$2"
  shift 2
  local mpi_args=() status=0
  while [ "$1" != "--" ]; do mpi_args+=("$1"); shift; done
  shift
  local started
  started=$(date +%s%N)
  mpirun "${common[@]}" "${mpi_args[@]}" "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" || status=$?
  if [ "$status" -ne "$expected" ]; then
    fail "$name exited with $status, expected $expected"
    sed 's/^/  | /' "$work/$name.err" >&2
    return 1
  fi
  echo "smoke: ok   $name ($((($(date +%s%N) - started) / 1000000)) ms)"
}

# The JSON must parse and say that validation ran, checked bytes and passed.
check_json() {
  local name="$1"
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const ok = j.schema === "freeflow-bench-mpi" && j.schema_version === 1 && j.complete === true &&
      j.validation.enabled === true &&
      j.validation.passed === true && j.validation.checked_bytes > 0 && j.results.length > 0 &&
      j.results.every((r) => r.checked_bytes > 0 && r.bad_bytes === 0);
    if (!ok) { console.error(JSON.stringify(j.validation)); process.exit(1); }
  ' "$work/$name.json" || fail "$name: JSON does not report a passed validation"
}

for bench in latency bw bibw mr allreduce alltoall; do
  bench_sizes=("${sizes[@]}")
  [ "$bench" = allreduce ] && bench_sizes=(--sizes 4,8,64,1K,4K,12K,64K,256K)
  for path in shm tcp; do
    declare -n btl="$path"
    name="$bench-$path-2"
    run "$name" 0 "${two[@]}" "${btl[@]}" -- "$bench" --validate "${bench_sizes[@]}" --json "$work/$name.json" &&
      check_json "$name"
  done
  if [ "$bench" = mr ] || [ "$bench" = allreduce ] || [ "$bench" = alltoall ]; then
    name="$bench-shm-4"
    run "$name" 0 "${four[@]}" "${shm[@]}" -- "$bench" --validate "${bench_sizes[@]}" --json "$work/$name.json" &&
      check_json "$name"
  fi

  # One corrupted byte must fail the run (exit 1), be reported, and be counted in the JSON.
  name="$bench-fault"
  if run "$name" 1 "${two[@]}" "${shm[@]}" -- "$bench" --validate --inject-fault "${bench_sizes[@]}" \
    --json "$work/$name.json"; then
    grep -q "VALIDATION FAILED" "$work/$name.err" || fail "$name: no VALIDATION FAILED message"
    node -e '
      const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      if (j.validation.passed !== false || j.validation.bad_bytes !== 1) process.exit(1);
    ' "$work/$name.json" || fail "$name: JSON does not report exactly 1 bad byte"
  fi
done

# Bad input: one clear error, exit status 2.
if run bad-input 2 "${two[@]}" "${shm[@]}" -- latency --window 8; then
  grep -q "^ffbench_mpi: --window applies only to" "$work/bad-input.err" || fail "bad-input: no clear error message"
fi

if [ "$failures" -gt 0 ]; then
  echo "smoke: $failures failure(s)" >&2
  exit 1
fi
echo "smoke: all passed"
