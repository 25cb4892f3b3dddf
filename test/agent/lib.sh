# Shared by test/agent/netns_test.sh and bench/agent/run.sh: simulated hosts (network namespaces on an
# underlay bridge), containers (network namespaces with no interface but lo), one ffagent per host.
# Everything is named with a random suffix and removed by ffag_cleanup, which the callers run from an
# EXIT trap so that it happens in every outcome. Addresses: 10.250.0.<host+1>/24, only inside our
# namespaces.

FFAG_SUFFIX=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
FFAG_PREFIX="ffag${FFAG_SUFFIX}"
FFAG_WORK=$(mktemp -d "/tmp/ffag-${FFAG_SUFFIX}.XXXX")
FFAG_NETNS=()
FFAG_PIDS=()
FFAG_PORT=7470
declare -A FFAG_AGENT_PID

ffag_say() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }

ffag_cleanup() {
  local rc=$?
  local pid
  for pid in "${FFAG_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${FFAG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  local ns
  for ns in "${FFAG_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ] && [ -d "$FFAG_WORK" ]; then
    local f
    for f in "$FFAG_WORK"/*.log; do
      [ -f "$f" ] && { echo "---- $f"; tail -n 40 "$f"; } >&2
    done
  fi
  rm -rf "$FFAG_WORK"
  # Nothing of ours may be left, whatever happened.
  if ip netns list | grep -q "$FFAG_PREFIX"; then
    echo "LEAK: namespaces left: $(ip netns list | grep "$FFAG_PREFIX" | tr '\n' ' ')" >&2
    rc=1
  fi
  for pid in "${FFAG_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then echo "LEAK: process $pid still running" >&2; rc=1; fi
  done
  exit "$rc"
}

ffag_fail() { ffag_say "FAIL: $*"; exit 1; }

# ffag_topology <hosts> [mtu]: a fabric namespace with a bridge; host namespaces h<i> with an underlay
# veth u0 (10.250.0.<i+1>) on it; a container namespace c<i> per host with only lo.
ffag_topology() {
  local hosts=$1 mtu=${2:-1500} i
  local fab="${FFAG_PREFIX}-fab"
  ip netns add "$fab" && FFAG_NETNS+=("$fab")
  ip -n "$fab" link add br0 type bridge
  ip -n "$fab" link set br0 mtu "$mtu" up
  for ((i = 0; i < hosts; i++)); do
    local h="${FFAG_PREFIX}-h$i" c="${FFAG_PREFIX}-c$i"
    ip netns add "$h" && FFAG_NETNS+=("$h")
    ip netns add "$c" && FFAG_NETNS+=("$c")
    ip link add u0 netns "$h" mtu "$mtu" type veth peer name "v$i" netns "$fab" mtu "$mtu"
    ip -n "$fab" link set "v$i" master br0 up
    ip -n "$h" addr add "10.250.0.$((i + 1))/24" dev u0
    ip -n "$h" link set u0 up
    ip -n "$h" link set lo up
    ip -n "$c" link set lo up
  done
}

ffag_host() { echo "${FFAG_PREFIX}-h$1"; }
ffag_container() { echo "${FFAG_PREFIX}-c$1"; }
ffag_ctl() { echo "$FFAG_WORK/ctl-h$1/control.sock"; }
ffag_addr() { echo "10.250.0.$(($1 + 1)):$FFAG_PORT"; }

ffag_wait_for() { # <seconds> <command...>: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

ffag_start_agent() { # <host index>
  local i=$1
  ip netns exec "$(ffag_host "$i")" "$FFAG_BIN/ffagent" --control "$(ffag_ctl "$i")" --listen "$(ffag_addr "$i")" \
    --log "$FFAG_WORK/agent-h$i.log" &
  local pid=$!
  FFAG_PIDS+=("$pid")
  FFAG_AGENT_PID[$i]=$pid
  ffag_wait_for 5 test -S "$(ffag_ctl "$i")" || ffag_fail "ffagent on host $i did not start (log: $FFAG_WORK/agent-h$i.log)"
}

# ffag_add_job <host> <job> <key> <peer list "0 1 2"> [extra args]: shared dir $FFAG_WORK/<job>-h<host>
ffag_add_job() {
  local i=$1 job=$2 key=$3 peers="" p
  for p in $4; do peers+="${peers:+,}$p@$(ffag_addr "$p")"; done
  shift 4
  mkdir -p "$FFAG_WORK/$job-h$i"
  "$FFAG_BIN/ffagentctl" "$(ffag_ctl "$i")" add "$job" "key=$key" "dir=$FFAG_WORK/$job-h$i" uid=0 gid=0 \
    "host=$i" "peers=$peers" "$@" >/dev/null
}

ffag_dir() { echo "$FFAG_WORK/$2-h$1"; } # <host> <job>

# ffag_probe <host> <output name> <probe args...>: runs ffagent_probe in the container of that host, in
# the background; output in $FFAG_WORK/<name>.out; sets FFAG_LAST_PID.
ffag_probe() {
  local i=$1 name=$2; shift 2
  ip netns exec "$(ffag_container "$i")" "$FFAG_BIN/ffagent_probe" "$@" >"$FFAG_WORK/$name.out" 2>"$FFAG_WORK/$name.log" &
  FFAG_LAST_PID=$!
  FFAG_PIDS+=("$FFAG_LAST_PID")
}

ffag_out() { cat "$FFAG_WORK/$1.out"; }
ffag_registered() { grep -q '^registered' "$FFAG_WORK/$1.out"; }

ffag_counter() { # <host> <rx|tx>
  ip netns exec "$(ffag_host "$1")" cat "/sys/class/net/u0/statistics/$2_bytes"
}

ffag_fd_count() { ls "/proc/$1/fd" | wc -l; }
