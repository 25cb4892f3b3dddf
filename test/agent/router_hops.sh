#!/usr/bin/env bash
# Measurement (not a test): the `r` plane's 8 B latency hop by hop between two simulated hosts
# (docs/agent.md, "The `r` plane"). ROUNDS (default 5) interleaved rounds of:
#   r-block  rank -> ring -> agent (blocked: doorbell) -> UCX tcp -> agent (blocked: UCX event) -> ring -> rank
#   r-spin   the same with both agents polling all the time (--spin-us 1e9): no wake-ups, no doorbells
#   host     plain TCP between the two host namespaces (spin-then-block receive): the underlay alone
# Ranks are ffagent_probe processes in network-less containers; every receive of theirs spins.
# Prints the median half round trip of each. Needs root. Usage: test/agent/router_hops.sh [bin dir]
set -euo pipefail
FFAG_BIN=$(cd "${1:-$(dirname "$0")/../../build/bin}" && pwd)
ROUNDS=${ROUNDS:-5}
ITER=${ITER:-5000}
source "$(dirname "$0")/lib.sh"
trap ffag_cleanup EXIT
trap 'exit 130' INT TERM
KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

ffag_topology 2
start() { # <host> <port> <spin-us> <tag>
  mkdir -p "$FFAG_WORK/ctl-$4-h$1"
  ip netns exec "$(ffag_host "$1")" "$FFAG_BIN/ffagent" --control "$FFAG_WORK/ctl-$4-h$1/control.sock" \
    --listen "10.250.0.$(($1 + 1)):$2" --spin-us "$3" --log "$FFAG_WORK/agent-$4-h$1.log" &
  FFAG_PIDS+=($!)
  ffag_wait_for 5 test -S "$FFAG_WORK/ctl-$4-h$1/control.sock" || ffag_fail "agent $4 on host $1 did not start"
  mkdir -p "$FFAG_WORK/$4-h$1"
  "$FFAG_BIN/ffagentctl" "$FFAG_WORK/ctl-$4-h$1/control.sock" add "$4" "key=$KEY" "dir=$FFAG_WORK/$4-h$1" uid=0 gid=0 \
    "host=$1" "peers=0@10.250.0.1:$2,1@10.250.0.2:$2" >/dev/null
}
for h in 0 1; do start "$h" 7470 0 block; start "$h" 7471 1000000000 spin; done

ping_route() { # <tag>
  ip netns exec "$(ffag_container 1)" "$FFAG_BIN/ffagent_probe" route-ping "$FFAG_WORK/$1-h1" "$KEY" 0x100000001 0x100000000 0 "$ITER" 0 >/dev/null &
  local srv=$!
  FFAG_PIDS+=($srv)
  sleep 0.2
  ip netns exec "$(ffag_container 0)" "$FFAG_BIN/ffagent_probe" route-ping "$FFAG_WORK/$1-h0" "$KEY" 0x100000000 0x100000001 1 "$ITER" 1 |
    sed -n 's/^lat_us=//p'
  wait "$srv"
}
ping_host() {
  ip netns exec "$(ffag_host 1)" "$FFAG_BIN/ffagent_probe" tcp-serve 10.250.0.2:7600 >/dev/null &
  local srv=$!
  FFAG_PIDS+=($srv)
  ip netns exec "$(ffag_host 0)" "$FFAG_BIN/ffagent_probe" tcp-call 10.250.0.2:7600 | sed -E 's/lat_us=([0-9.]+).*/\1/'
  wait "$srv"
}
declare -A all
for ((r = 1; r <= ROUNDS; r++)); do
  all[r-block]+="$(ping_route block) "
  all[r-spin]+="$(ping_route spin) "
  all[host]+="$(ping_host) "
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS rounds x $ITER iterations"
for k in r-block r-spin host; do
  printf '%-8s median %8s us   rounds: %s\n' "$k" "$(echo "${all[$k]}" | median)" "${all[$k]}"
done
