#!/usr/bin/env bash
# The command lines of the C programs (issue 12: getopt_long and one size syntax everywhere): each program
# refuses an unknown option, a missing value or a bad size with a message naming it, and takes sizes such as
# 64K and 1M+13 where it takes sizes. Registered with ctest as options.refusals; no cluster, no namespace.
# The MPI programs run as singletons over btl self (no mpirun, no shared memory of the freeflow BTL).
# Usage: test/options/refusals.sh <bin dir>   (default: build/bin)
set -euo pipefail

bin="${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self
work=$(mktemp -d -t ffoptions.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=$work/output
ctl=$work/ctl/c.sock # never created: an ffagent that got past its options would make only this directory
failures=0

# expect <exit status> <extended regex on stdout+stderr> <program> [args...]
expect() {
  local status=0 want="$1" pattern="$2"
  shift 2
  timeout 30 "$bin/$1" "${@:2}" >"$out" 2>&1 </dev/null || status=$?
  if [ "$status" -ne "$want" ] || ! grep -Eq -- "$pattern" "$out"; then
    echo "FAIL $*: exit $status (want $want), output does not match /$pattern/:" >&2
    sed 's/^/  | /' "$out" >&2
    failures=$((failures + 1))
  else
    echo "ok   $*"
  fi
}

# ffagent, ffagentctl: every refusal exits 2 and names the option; accepted options reach the next check.
expect 2 "ffagent: unknown option '--bogus'.*" ffagent --bogus
expect 2 "ffagent: option '--control' needs a value" ffagent --listen 127.0.0.1:7000 --control
expect 2 "ffagent: --spin-us wants microseconds .* got '1e9'" ffagent --control "$ctl" --listen 127.0.0.1:1 --spin-us 1e9
expect 2 "ffagent: --listen is required" ffagent --control "$ctl"
expect 2 "ffagent: unexpected argument 'extra'" ffagent --control "$ctl" --listen 127.0.0.1:1 extra
expect 2 "usage: ffagent --control" ffagent --bogus
expect 1 "ffagent: --control c.sock: give an absolute path" ffagent --control=c.sock --listen=127.0.0.1:1 --spin-us=5
expect 2 "ffagentctl: unknown option '--bogus'" ffagentctl --bogus "$ctl" ping
expect 2 "ffagentctl: no command given" ffagentctl --hold "$ctl"
expect 2 "ffagentctl: cannot reach ffagent at "$ctl"" ffagentctl --hold "$ctl" ping

# rawstream, yield_across_cgroups: named options now (callers: bench/handoff/raw.sh, bench/sched/run.sh).
expect 2 "rawstream: give either --serve or --call" rawstream --recv spin
expect 2 "rawstream: --bytes wants a size like 64K or 4M .* got '4Q'" rawstream --call 127.0.0.1:7 --recv spin --bytes 4Q
expect 2 "rawstream: --recv 'x' is not spin, block or hybrid" rawstream --call 127.0.0.1:7 --recv x --bytes 1M+13
expect 2 "rawstream: --messages wants a multiple of 64" rawstream --call 127.0.0.1:7 --recv spin --messages 65
expect 2 "rawstream: unknown option 'serve'|rawstream: unexpected argument 'serve'" rawstream serve 127.0.0.1:7 spin
expect 2 "yield_across_cgroups: unexpected argument 'busy'" yield_across_cgroups busy
expect 2 "yield_across_cgroups: unknown option '--bogus'" yield_across_cgroups --bogus

# The core-level benchmarks (bench/common's helpers).
expect 2 "--size wants a size like 64K or 4M .* got '64Q'" ffbench_ring --size 64Q
expect 2 "unknown option '--bogus'" ffbench_poll --bogus

# The MPI benchmarks and checks: the one size syntax (test/mpi/ff_size.h).
expect 2 "--sizes: '8,4Q' is not a list of up to 64 message sizes" ffbench_mpi latency --sizes 8,4Q
expect 2 "--window applies only to bw, bibw and mr" ffbench_mpi latency --sizes 64K,1M+13 --window 8
expect 2 "ffbench_rma: --sizes: '8,x' is not a list of up to 16 sizes" ffbench_rma --sizes 8,x
expect 2 "ffbench_rma: sizes must be multiples of 4 bytes" ffbench_rma --sizes 64K,1M+13
expect 2 "ffcheck_p2p: option --max-size: '4Q' is not a size" ffcheck_p2p --max-size 4Q
expect 2 "ffcheck_rma: --big wants a size .* not '4Q'" ffcheck_rma --big 4Q
expect 2 "ffcheck_rma: --thread-level is single, funneled or multiple, not 'many'" ffcheck_rma --thread-level many
expect 2 "ffcheck_onesided: unknown option '--bogus'" ffcheck_onesided --bogus
expect 2 "ffcheck_nodeshare: missing value of option '--ranks-per-host'" ffcheck_nodeshare --ranks-per-host
expect 2 "ffcheck_spawn: .*unknown option '--bogus'" ffcheck_spawn --bogus
expect 2 "ffbench_shmwin_pingpong: .*--rounds" ffbench_shmwin_pingpong --rounds x

if [ "$failures" -gt 0 ]; then
  echo "options: $failures failure(s)" >&2
  exit 1
fi
echo "options: all passed"
