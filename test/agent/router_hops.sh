#!/usr/bin/env bash
# Measurement (not a test): the `r` plane's 8 B latency hop by hop between two simulated hosts
# (docs/agent.md, "The `r` plane"). ROUNDS (default 5) interleaved rounds of:
#   r-block  rank -> ring -> agent (blocked: doorbell) -> UCX tcp -> agent (blocked: UCX event) -> ring -> rank;
#            agents --spin-us 0, ranks spin without yielding (the old default of both)
#   r-yield  agents --spin-us 0, ranks yield the CPU after YIELD_AFTER empty polls (ff_route_poll_pass)
#   r-coop   agents --spin-us COOP_SPIN_US (poll with sched_yield after traffic, then block), ranks yield
#            as in r-yield: the defaults of the BTL and the agent
#   r-spin   both agents polling all the time (--spin-us 1e9), ranks spinning: no wake-ups, no doorbells
#   host     plain TCP between the two host namespaces (spin-then-block receive): the underlay alone
# Ranks are ffagent_probe processes in network-less containers; every receive of theirs polls.
# Prints the median half round trip of each. Needs root. Usage: test/agent/router_hops.sh [bin dir]
set -euo pipefail
FFAG_BIN=$(cd "${1:-$(dirname "$0")/../../build/bin}" && pwd)
ROUNDS=${ROUNDS:-5}
ITER=${ITER:-5000}
YIELD_AFTER=${YIELD_AFTER:-64}
COOP_SPIN_US=${COOP_SPIN_US:-200}
MODES=${MODES:-r-block r-yield r-coop r-spin host}
source "$(dirname "$0")/lib.sh"
trap ffag_cleanup EXIT
trap 'exit 130' INT TERM
KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

ffag_topology 2
# Agents live for one measurement only: a polling agent left running would take CPU from the next mode.
PORT=7470
start() { # <host> <port> <spin-us> <tag>
  mkdir -p "$FFAG_WORK/ctl-$4-h$1"
  ip netns exec "$(ffag_host "$1")" "$FFAG_BIN/ffagent" --control "$FFAG_WORK/ctl-$4-h$1/control.sock" \
    --listen "10.250.0.$(($1 + 1)):$2" --spin-us "$3" --log "$FFAG_WORK/agent-$4-h$1.log" &
  AGENTS+=($!)
  FFAG_PIDS+=($!)
  ffag_wait_for 5 test -S "$FFAG_WORK/ctl-$4-h$1/control.sock" || ffag_fail "agent $4 on host $1 did not start"
  mkdir -p "$FFAG_WORK/$4-h$1"
  "$FFAG_BIN/ffagentctl" "$FFAG_WORK/ctl-$4-h$1/control.sock" add "$4" "key=$KEY" "dir=$FFAG_WORK/$4-h$1" uid=0 gid=0 \
    "host=$1" "peers=0@10.250.0.1:$2,1@10.250.0.2:$2" >/dev/null
}

ping_route() { # <agents' spin us> <ranks' yield after>
  local tag="a$PORT" srv
  AGENTS=()
  start 0 "$PORT" "$1" "$tag"
  start 1 "$PORT" "$1" "$tag"
  PORT=$((PORT + 1))
  ip netns exec "$(ffag_container 1)" "$FFAG_BIN/ffagent_probe" route-ping "$FFAG_WORK/$tag-h1" "$KEY" 0x100000001 0x100000000 0 "$ITER" 0 "$2" >/dev/null &
  srv=$!
  FFAG_PIDS+=($srv)
  sleep 0.2
  ip netns exec "$(ffag_container 0)" "$FFAG_BIN/ffagent_probe" route-ping "$FFAG_WORK/$tag-h0" "$KEY" 0x100000000 0x100000001 1 "$ITER" 1 "$2" |
    sed -n 's/^lat_us=//p'
  wait "$srv"
  kill "${AGENTS[@]}"
  wait "${AGENTS[@]}" 2>/dev/null || true
}
ping_host() {
  local ready="$FFAG_WORK/tcp-serve.out"
  rm -f "$ready"
  ip netns exec "$(ffag_host 1)" "$FFAG_BIN/ffagent_probe" tcp-serve 10.250.0.2:7600 >"$ready" &
  local srv=$!
  FFAG_PIDS+=($srv)
  # the server prints "registered" once it listens: a loaded machine may not have got there yet
  ffag_wait_for 10 grep -q registered "$ready" || ffag_fail "tcp-serve did not start"
  ip netns exec "$(ffag_host 0)" "$FFAG_BIN/ffagent_probe" tcp-call 10.250.0.2:7600 | sed -E 's/lat_us=([0-9.]+).*/\1/'
  wait "$srv"
}
run_mode() {
  case $1 in
    r-block) ping_route 0 0 ;;
    r-yield) ping_route 0 "$YIELD_AFTER" ;;
    r-coop) ping_route "$COOP_SPIN_US" "$YIELD_AFTER" ;;
    r-spin) ping_route 1000000000 0 ;;
    host) ping_host ;;
    *) ffag_fail "unknown mode $1" ;;
  esac
}
declare -A all
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
  for m in $MODES; do
    run_mode "$m" >"$FFAG_WORK/result" # not in a $(...) subshell: the agents' pids must reach ffag_cleanup
    all[$m]+="$(cat "$FFAG_WORK/result") "
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs, load before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS rounds x $ITER iterations, yield after $YIELD_AFTER, coop spin $COOP_SPIN_US us"
for k in $MODES; do
  printf '%-8s median %8s us   rounds: %s\n' "$k" "$(echo "${all[$k]}" | median)" "${all[$k]}"
done
