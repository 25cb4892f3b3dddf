#!/bin/bash
# sched_yield between cpu cgroups (cgroup v1 cpu controller, as runc's containers here): a yielding process
# and a busy one pinned to vCPU ${CPU:-1}, first in one cgroup, then in two. Run as root; removes what it creates.
set -euo pipefail
root=/sys/fs/cgroup/cpu
[ -d "$root" ] || { echo "no cgroup v1 cpu controller at $root" >&2; exit 1; }
a=$root/ffyield-$$-a
b=$root/ffyield-$$-b
busy=
cleanup() {
  [ -n "$busy" ] && kill "$busy" 2>/dev/null && wait "$busy" 2>/dev/null || true
  rmdir "$a" "$b" 2>/dev/null || true
}
trap cleanup EXIT
yield=$(dirname "$0")/../../build/bin/yield_across_cgroups
[ -x "$yield" ] || { echo "run.sh: $yield is not built: run scripts/setup.sh" >&2; exit 1; }
mkdir "$a" "$b"
for layout in one-cgroup two-cgroups; do
  taskset -c "${CPU:-1}" "$yield" --busy &
  busy=$!
  if [ "$layout" = two-cgroups ]; then echo "$busy" > "$b/cgroup.procs"; else echo "$busy" > "$a/cgroup.procs"; fi
  echo -n "$layout: "
  sh -c 'echo $$ > "$1/cgroup.procs"; exec taskset -c "$2" "$3"' sh "$a" "${CPU:-1}" "$yield"
  kill "$busy"; wait "$busy" 2>/dev/null || true
  busy=
done
