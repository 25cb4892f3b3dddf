#!/usr/bin/env bash
# Benchmark of the agent's handoff plane (docs/agent.md): 8 B ping-pong half round trip (spin-then-block
# receive) and 4 MiB messages streamed, between two simulated hosts (network namespaces on an underlay
# bridge), at underlay MTU 1500 and 9000, receives spinning briefly then blocking, for:
#   handoff  container -> agent-handed TCP socket over the underlay -> container (containers have no network)
#   host     plain TCP between the two host namespaces (what the handoff should equal)
#   overlay  plain TCP between two containers over a VXLAN overlay on the same underlay
# ROUNDS (default 5) interleaved rounds; medians printed. Needs root. Usage: bench/agent/run.sh [bin dir]
set -euo pipefail
FFAG_BIN=$(cd "${1:-$(dirname "$0")/../../build/bin}" && pwd)
ROUNDS=${ROUNDS:-5}
source "$(dirname "$0")/../../test/agent/lib.sh"
trap ffag_cleanup EXIT
trap 'exit 130' INT TERM
KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
SETUP_LINES=""

overlay() { # <mtu>: VXLAN between the hosts, a container o<i> on each host's overlay bridge
  local mtu=$(($1 - 50)) i
  for i in 0 1; do
    local h o
    h=$(ffag_host "$i")
    o="${FFAG_PREFIX}-o$i"
    ip netns add "$o" && FFAG_NETNS+=("$o")
    ip -n "$h" link add br-ov type bridge
    ip -n "$h" link add vx0 type vxlan id 42 local "10.250.0.$((i + 1))" remote "10.250.0.$((2 - i))" dstport 4789
    ip -n "$h" link set vx0 mtu "$mtu" master br-ov up
    ip -n "$h" link set br-ov up
    ip link add eth0 netns "$o" mtu "$mtu" type veth peer name "ov$i" netns "$h" mtu "$mtu"
    ip -n "$h" link set "ov$i" master br-ov up
    ip -n "$o" addr add "10.251.0.$((i + 1))/24" dev eth0
    ip -n "$o" link set eth0 up
    ip -n "$o" link set lo up
  done
}

one() { # <kind> -> "lat bw"
  local out
  case "$1" in
  handoff)
    ffag_probe 1 srv bench-serve "$(ffag_dir 1 job1)" "$KEY" 0x100000001
    ffag_wait_for 5 ffag_registered srv || ffag_fail "bench server did not register"
    out=$(ip netns exec "$(ffag_container 0)" "$FFAG_BIN/ffagent_probe" bench-call "$(ffag_dir 0 job1)" "$KEY" \
      0x100000000 0x100000001 1 | grep lat_us)
    ;;
  host)
    ip netns exec "$(ffag_host 1)" "$FFAG_BIN/ffagent_probe" tcp-serve 10.250.0.2:7600 >/dev/null &
    FFAG_PIDS+=($!)
    out=$(ip netns exec "$(ffag_host 0)" "$FFAG_BIN/ffagent_probe" tcp-call 10.250.0.2:7600)
    ;;
  overlay)
    ip netns exec "${FFAG_PREFIX}-o1" "$FFAG_BIN/ffagent_probe" tcp-serve 10.251.0.2:7600 >/dev/null &
    FFAG_PIDS+=($!)
    out=$(ip netns exec "${FFAG_PREFIX}-o0" "$FFAG_BIN/ffagent_probe" tcp-call 10.251.0.2:7600)
    ;;
  esac
  wait
  echo "$out" | sed -E 's/lat_us=([0-9.]+) bw_GBps=([0-9.]+)( setup_us=([0-9.]+))?/\1 \2 \4/'
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "CPU: $(grep 'model name' /proc/cpuinfo | head -1 | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs"
echo "| path | underlay MTU | 8 B half RTT (us), median | 4 MiB stream (GB/s), median | rounds (lat/bw) |"
echo "|---|---:|---:|---:|---|"
for mtu in 1500 9000; do
  FFAG_NETNS_BEFORE=${#FFAG_NETNS[@]}
  ffag_topology 2 "$mtu"
  overlay "$mtu"
  ffag_start_agent 0
  ffag_start_agent 1
  ffag_add_job 0 job1 "$KEY" "0 1"
  ffag_add_job 1 job1 "$KEY" "0 1"
  declare -A LAT=() BW=()
  SETUP=""
  for ((r = 0; r < ROUNDS; r++)); do
    for kind in handoff host overlay; do
      read -r lat bw setup < <(one "$kind")
      LAT[$kind]+="$lat "
      BW[$kind]+="$bw "
      [ -z "$setup" ] || SETUP+="$setup "
    done
  done
  SETUP_LINES+="| $mtu | $(tr ' ' '\n' <<<"$SETUP" | grep . | median) | $SETUP|"$'\n'
  for kind in handoff host overlay; do
    lm=$(tr ' ' '\n' <<<"${LAT[$kind]}" | grep . | median)
    bm=$(tr ' ' '\n' <<<"${BW[$kind]}" | grep . | median)
    echo "| $kind | $mtu | $lm | $bm | ${LAT[$kind]}/ ${BW[$kind]}|"
  done
  # next MTU: fresh namespaces and agents
  for pid in "${FFAG_AGENT_PID[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
  for ns in "${FFAG_NETNS[@]}"; do ip netns del "$ns"; done
  FFAG_NETNS=()
  rm -rf "$FFAG_WORK"/ctl-h* "$FFAG_WORK"/job1-h*
done
echo
echo "Channel set-up (ff_agent_connect: two agents, TCP connect, HMAC handshake, two descriptor passes):"
echo "| underlay MTU | median (us) | rounds (us) |"
echo "|---:|---:|---|"
printf '%s' "$SETUP_LINES"
