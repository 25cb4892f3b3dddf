#!/bin/bash
# sched_yield between cpu cgroups (cgroup v1 cpu controller, as runc's containers here): a yielding process
# and a busy one pinned to vCPU ${CPU:-1}, first in one cgroup, then in two. Run as root; removes what it creates.
set -euo pipefail
root=/sys/fs/cgroup/cpu
[ -d "$root" ] || { echo "no cgroup v1 cpu controller at $root" >&2; exit 1; }
work=$(mktemp -d)
a=$root/ffyield-$$-a
b=$root/ffyield-$$-b
busy=
cleanup() {
  [ -n "$busy" ] && kill "$busy" 2>/dev/null && wait "$busy" 2>/dev/null || true
  rmdir "$a" "$b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -o "$work/yield" "$(dirname "$0")/yield_across_cgroups.c"
mkdir "$a" "$b"
for layout in one-cgroup two-cgroups; do
  taskset -c "${CPU:-1}" "$work/yield" busy &
  busy=$!
  if [ "$layout" = two-cgroups ]; then echo "$busy" > "$b/cgroup.procs"; else echo "$busy" > "$a/cgroup.procs"; fi
  echo -n "$layout: "
  sh -c 'echo $$ > "$1/cgroup.procs"; exec taskset -c "$2" "$3" yield' sh "$a" "${CPU:-1}" "$work/yield"
  kill "$busy"; wait "$busy" 2>/dev/null || true
  busy=
done
