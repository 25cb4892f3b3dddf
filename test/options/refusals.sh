#!/usr/bin/env bash
# The command lines of the C programs (issue 12: one table-driven parser, native/cli/ff_cli.h, and one size
# syntax everywhere): each program refuses an unknown option, a missing or bad value, a value given to a flag,
# a missing required option or a stray word in the same words ("<program>: option '--name' ...", exit 2), takes
# sizes such as 64K and 1M+13 where it takes sizes, and prints --help from its table. Registered with ctest as
# options.refusals; no cluster, no namespace.
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

# refused <program> <extended regex of the problem> [args...]: exit 2 and the uniform "<program>: <problem>".
refused() {
  local program="$1" pattern="$2"
  shift 2
  expect 2 "^$program: $pattern" "$program" "$@"
}
sizes="bytes with an optional K, M or G suffix and offset"

# ffagent, ffagentctl: every refusal exits 2 and names the option; accepted options reach the next check.
refused ffagent "unknown option '--bogus'" --bogus
refused ffagent "option '--control' needs a value" --listen 127.0.0.1:7000 --control
refused ffagent "option '--spin-us' wants a whole number from 0 to 3600000000, not '1e9'" --control "$ctl" --listen 127.0.0.1:1 --spin-us 1e9
refused ffagent "option '--listen' is required" --control "$ctl"
refused ffagent "unexpected argument 'extra'" --control "$ctl" --listen 127.0.0.1:1 extra
expect 2 "usage: ffagent --control" ffagent --bogus
expect 0 "--spin-us US +microseconds the router polls" ffagent --help
expect 1 "ffagent: --control c.sock: give an absolute path" ffagent --control=c.sock --listen=127.0.0.1:1 --spin-us=5
refused ffagentctl "unknown option '--bogus'" --bogus "$ctl" ping
refused ffagentctl "option '--hold' takes no value, not '--hold=yes'" --hold=yes "$ctl" ping
refused ffagentctl "no command given" --hold "$ctl"
expect 2 "ffagentctl: cannot reach ffagent at "$ctl"" ffagentctl --hold "$ctl" ping

# rawstream (bench/handoff/raw.sh), yield_across_cgroups (bench/sched/run.sh).
refused rawstream "give either --serve or --call" --recv spin
refused rawstream "option '--recv' is required" --call 127.0.0.1:7
refused rawstream "option '--bytes' wants a size from 1 B to 1 GiB \($sizes.*not '4Q'" --call 127.0.0.1:7 --recv spin --bytes 4Q
refused rawstream "option '--recv' wants one of spin, block, hybrid, not 'x'" --call 127.0.0.1:7 --recv x --bytes 1M+13
refused rawstream "--messages wants a multiple of 64" --call 127.0.0.1:7 --recv spin --messages 65
refused rawstream "unexpected argument 'serve'" serve 127.0.0.1:7 spin
expect 2 "yield_across_cgroups: unexpected argument 'busy'" yield_across_cgroups busy
expect 2 "yield_across_cgroups: unknown option '--bogus'" yield_across_cgroups --bogus

# The core-level benchmarks: size lists through ff_parse_size_list, so an empty item is refused.
refused ffbench_ring "option '--size' wants a size from 1 B to 1 GiB .*not '64Q'" --size 64Q
refused ffbench_ring "option '--fragments' wants a comma-separated list of up to 8 sizes .*no item empty" --fragments 32K,,64K
refused ffbench_ring "--copies wants up to 8 of auto, libc, .*not 'blocks,,nt'" --copies blocks,,nt
refused ffbench_poll "unknown option '--bogus'" --bogus
refused ffbench_poll "--idle wants up to 16 counts from 0 to 63, not '1,,2'" --idle 1,,2

# The MPI benchmarks and checks (singletons over btl self).
refused ffbench_mpi "option '--sizes' wants a comma-separated list of up to 64 sizes .*not '8,4Q'" latency --sizes 8,4Q
refused ffbench_mpi "option '--validate' takes no value" latency --validate=1
expect 2 "--window applies only to bw, bibw and mr" ffbench_mpi latency --sizes 64K,1M+13 --window 8
refused ffbench_rma "option '--sizes' wants a comma-separated list of up to 16 sizes .*not '8,x'" --sizes 8,x
refused ffbench_rma "sizes must be multiples of 4 bytes" --sizes 64K,1M+13
refused ffbench_shmwin_pingpong "option '--rounds' wants a whole number from 1 to [0-9]+, not 'x'" --rounds x
refused ffcheck_p2p "option '--max-size' wants a size from 0 B to 2 GiB-1 .*not '4Q'" --max-size 4Q
expect 0 "--max-size SIZE +largest message in bytes" ffcheck_p2p --help
refused ffcheck_rma "option '--big' wants a size from 1 B to 1 GiB .*not '4Q'" --big 4Q
refused ffcheck_rma "option '--thread-level' wants one of single, funneled, multiple, not 'many'" --thread-level many
expect 0 "--thread-level WORD +what MPI_Init_thread asks for; one of single" ffcheck_rma --help
refused ffcheck_onesided "unknown option '--bogus'" --bogus
refused ffcheck_onesided "option '--count' wants a whole number from 1 to 16777216, not '0'" --count=0
refused ffcheck_nodeshare "option '--ranks-per-host' needs a value" --ranks-per-host
refused ffcheck_nodeshare "option '--ranks-per-host' is required" --count 8
refused ffcheck_spawn "unknown option '--bogus'" --bogus
refused ffcheck_spawn "option '--children' wants a whole number from 1 to 16, not '17'" --children 17
refused ffcheck_sabotage "option '--how' wants one of none, corrupt, ring, truncate, unlink, symlink, fifo, not 'melt'" --how melt
refused ffcheck_sabotage "option '--by' wants a whole number from 0 to 1, not '2'" --by 2

if [ "$failures" -gt 0 ]; then
  echo "options: $failures failure(s)" >&2
  exit 1
fi
echo "options: all passed"
