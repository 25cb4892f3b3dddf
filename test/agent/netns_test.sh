#!/usr/bin/env bash
# ffagent across real network namespaces (run by ctest as agent.netns_<case>; needs root and iproute2).
#
#   netns_test.sh handoff     <bin dir>   2 hosts: channels both ways between containers that have no
#                                          network at all, data checked, traffic seen on the underlay,
#                                          agents keep no descriptors after the handoff
#   netns_test.sh three_hosts <bin dir>   3 hosts: one rank served from two hosts; a host outside a job's
#                                          list refused on both sides; `probe` (agent-to-agent handshake
#                                          before the plan), also with the agent port filtered (tc)
#   netns_test.sh router      <bin dir>   2 hosts, the `r` plane: 4 MiB from a network-less container on
#                                          host 0 through both agents' routers (UCX over tcp) to a
#                                          container on host 1 and back, bytes checked, traffic on the
#                                          underlay, idle agents use no CPU, agent SIGKILL ends routes
#   netns_test.sh failures    <bin dir>   wrong key, wrong uid, unknown rank, duplicate owner, peer agent
#                                          with another key, unreachable peer, symlinks, client crash,
#                                          job removal, launcher lease, agent killed
#
# Every namespace, process and file is removed on every exit (trap), and the cleanup fails the test if
# anything is left.
set -euo pipefail
CASE=${1:?case}
FFAG_BIN=$(cd "${2:?bin dir}" && pwd)
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
  echo "netns_test.sh needs root and iproute2 (network namespaces): skipped" >&2
  exit 77 # ctest SKIP_RETURN_CODE
fi
source "$(dirname "$0")/lib.sh"
trap ffag_cleanup EXIT
trap 'exit 130' INT TERM

KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
OTHER_KEY=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
R0=0x0000000700000000 # owner ids: job 7, vpids 0..3
R1=0x0000000700000001
R2=0x0000000700000002
R3=0x0000000700000003

expect_out() { # <name> <regex>
  grep -Eq "$2" "$FFAG_WORK/$1.out" || ffag_fail "$1: expected output matching '$2', got: $(cat "$FFAG_WORK/$1.out" "$FFAG_WORK/$1.log")"
}
expect_log() { # <host> <regex>
  grep -Eq "$2" "$FFAG_WORK/agent-h$1.log" || ffag_fail "agent log of host $1 lacks '$2'"
}
wait_pid() { # <pid> <seconds> <what>
  local deadline=$(($(date +%s%N) + $2 * 1000000000))
  while kill -0 "$1" 2>/dev/null; do
    [ "$(date +%s%N)" -lt "$deadline" ] || ffag_fail "$3 did not finish within $2 s"
    sleep 0.01
  done
  wait "$1" 2>/dev/null || return $?
}
run_probe() { # <host> <name> <args...>: runs to completion (60 s at most: a hang guard, not a speed limit; a loaded 2-vCPU machine took over 10 s), returns its exit status
  ffag_probe "$@"
  local rc=0
  wait_pid "$FFAG_LAST_PID" 60 "probe $2" || rc=$?
  return $rc
}
expect_refusal() { # <host> <name> <FF_AGENT_* reason> <probe args...>: the probe is refused (exit 3) with that reason
  local rc=0
  run_probe "$1" "$2" "${@:4}" || rc=$?
  [ "$rc" -eq 3 ] || ffag_fail "$2: expected refusal $3 (exit 3), got exit $rc: $(cat "$FFAG_WORK/$2.out" "$FFAG_WORK/$2.log")"
  expect_out "$2" "^refused $3\$"
}
start_server() { # <host> <name> <args...>: background probe, waits for its registration
  ffag_probe "$@"
  ffag_wait_for 5 ffag_registered "$2" || ffag_fail "$2 did not register: $(cat "$FFAG_WORK/$2.out" "$FFAG_WORK/$2.log")"
}

case "$CASE" in
handoff)
  ffag_topology 2
  ffag_start_agent 0
  ffag_start_agent 1
  ffag_add_job 0 job7 "$KEY" "0 1"
  ffag_add_job 1 job7 "$KEY" "0 1"
  test "$(stat -c '%a %u %F' "$(ffag_dir 1 job7)/agent.sock")" = "600 0 socket" ||
    ffag_fail "agent.sock is not a 0600 root socket: $(stat -c '%a %u %F' "$(ffag_dir 1 job7)/agent.sock")"
  # The containers have no network: no address, no route; only the shared directory.
  c0=$(ffag_container 0)
  test -z "$(ip -n "$c0" route show)" || ffag_fail "container 0 has a route"
  ip -n "$c0" -4 addr show | grep -q 10.250 && ffag_fail "container 0 has an underlay address"
  fds0=$(ffag_fd_count "${FFAG_AGENT_PID[0]}")
  fds1=$(ffag_fd_count "${FFAG_AGENT_PID[1]}")
  tx0=$(ffag_counter 0 tx)
  rx0=$(ffag_counter 0 rx)

  BYTES=$((4 << 20))
  # rank 1 on host 1 serves; rank 0 on host 0 calls: 4 MiB each way over the handed-off socket.
  start_server 1 serve1 serve "$(ffag_dir 1 job7)" "$KEY" "$R1" 1
  run_probe 0 call0 call "$(ffag_dir 0 job7)" "$KEY" "$R0" "$R1" 1 "$BYTES" || ffag_fail "call 0->1: $(cat "$FFAG_WORK/call0.log")"
  expect_out call0 "^ok bytes=$BYTES\$"
  wait_pid "$FFAG_LAST_PID" 5 serve1 || true
  expect_out serve1 "^served peer=0000000700000000 host=0 bytes=$BYTES\$"
  # and the other way round: host 0 serves, host 1 calls
  start_server 0 serve0 serve "$(ffag_dir 0 job7)" "$KEY" "$R2" 1
  run_probe 1 call1 call "$(ffag_dir 1 job7)" "$KEY" "$R3" "$R2" 0 "$BYTES" || ffag_fail "call 1->0: $(cat "$FFAG_WORK/call1.log")"
  expect_out call1 "^ok bytes=$BYTES\$"
  expect_out serve0 "^served peer=0000000700000003 host=1 bytes=$BYTES\$"

  # The data crossed host 0's underlay interface: 2 x 4 MiB each way, plus headers.
  dtx=$(($(ffag_counter 0 tx) - tx0))
  drx=$(($(ffag_counter 0 rx) - rx0))
  ffag_say "host 0 underlay: tx +$dtx rx +$drx bytes for 2 x $BYTES echoed"
  [ "$dtx" -ge $((2 * BYTES)) ] && [ "$drx" -ge $((2 * BYTES)) ] || ffag_fail "underlay counters too small: tx +$dtx rx +$drx"
  expect_log 0 "handoff: owner=0000000700000000 -> owner=0000000700000001 host=1 via 10.250.0.2:7470"
  expect_log 1 "handoff: owner=0000000700000000 host=0 \(10.250.0.1:[0-9]+\) -> owner=0000000700000001"
  # The agents hold no copy of any channel (and nothing else of the finished ranks).
  sleep 0.1
  [ "$(ffag_fd_count "${FFAG_AGENT_PID[0]}")" -eq "$fds0" ] || ffag_fail "agent 0 holds extra descriptors"
  [ "$(ffag_fd_count "${FFAG_AGENT_PID[1]}")" -eq "$fds1" ] || ffag_fail "agent 1 holds extra descriptors"
  # Idle, the agent blocks in epoll_wait: no CPU time over a second (utime + stime in clock ticks).
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  t_before=$(ticks "${FFAG_AGENT_PID[0]}")
  sleep 1
  t_idle=$(($(ticks "${FFAG_AGENT_PID[0]}") - t_before))
  [ "$t_idle" -le 1 ] || ffag_fail "idle agent used $t_idle clock ticks in 1 s (busy polling?)"
  # SIGTERM: clean exit, sockets removed
  kill -TERM "${FFAG_AGENT_PID[1]}"
  wait_pid "${FFAG_AGENT_PID[1]}" 2 "agent 1 after SIGTERM" || ffag_fail "agent 1 exited non-zero on SIGTERM"
  [ ! -e "$(ffag_dir 1 job7)/agent.sock" ] && [ ! -e "$(ffag_ctl 1)" ] || ffag_fail "SIGTERM left sockets behind"
  expect_log 1 "job=job7 removed: the agent is stopping"
  ;;

three_hosts)
  ffag_topology 3
  for i in 0 1 2; do ffag_start_agent "$i"; done
  for i in 0 1 2; do ffag_add_job "$i" job7 "$KEY" "0 1 2"; done
  # rank 2 on host 2 accepts one channel from host 0 and one from host 1
  start_server 2 serve2 serve "$(ffag_dir 2 job7)" "$KEY" "$R2" 2
  run_probe 0 call0 call "$(ffag_dir 0 job7)" "$KEY" "$R0" "$R2" 2 65536 || ffag_fail "call 0->2: $(cat "$FFAG_WORK/call0.log")"
  run_probe 1 call1 call "$(ffag_dir 1 job7)" "$KEY" "$R1" "$R2" 2 65536 || ffag_fail "call 1->2: $(cat "$FFAG_WORK/call1.log")"
  wait_pid "$FFAG_LAST_PID" 5 serve2 || true
  expect_out call0 '^ok bytes=65536$'
  expect_out call1 '^ok bytes=65536$'
  expect_out serve2 'served peer=0000000700000000 host=0'
  expect_out serve2 'served peer=0000000700000001 host=1'

  # job8 spans hosts 0 and 1 only; host 2's agent (wrongly) lists all three.
  ffag_add_job 0 job8 "$KEY" "0 1"
  ffag_add_job 1 job8 "$KEY" "0 1"
  ffag_add_job 2 job8 "$KEY" "0 1 2"
  start_server 0 serve8 hold "$(ffag_dir 0 job8)" "$KEY" "$R0"
  # host 0 refuses to connect to host 2 (not in its list) ...
  expect_refusal 0 out8 FF_AGENT_HOST_NOT_ALLOWED call "$(ffag_dir 0 job8)" "$KEY" "$R1" "$R2" 2
  # ... and refuses host 2's agent when it comes in
  expect_refusal 2 in8 FF_AGENT_HOST_NOT_ALLOWED call "$(ffag_dir 2 job8)" "$KEY" "$R2" "$R0" 0
  expect_log 0 "job=job8 peer=10.250.0.3:[0-9]+ .*refused incoming channel: FF_AGENT_HOST_NOT_ALLOWED"

  # probe (reachability before the plan): every agent completes the handshake with the others of job7
  for i in 0 1 2; do
    out=$("$FFAG_BIN/ffagentctl" "$(ffag_ctl "$i")" probe job7) || ffag_fail "probe on host $i: $out"
    want=$(echo 0 1 2 | tr ' ' '\n' | grep -vx "$i" | paste -sd,)
    [ "$out" = "ok reached=$want unreached=" ] || ffag_fail "probe on host $i: $out"
  done
  expect_log 1 "job=job7 probe from host 0 \(10.250.0.1:[0-9]+\): handshake completed"
  # ... host 2 is not in job8's list at hosts 0 and 1: both refuse its probe, and they do not list it
  out=$("$FFAG_BIN/ffagentctl" "$(ffag_ctl 2)" probe job8) || ffag_fail "probe job8: $out"
  [ "$out" = "ok reached= unreached=0:FF_AGENT_HOST_NOT_ALLOWED,1:FF_AGENT_HOST_NOT_ALLOWED" ] || ffag_fail "probe job8: $out"
  [ "$("$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" probe job8)" = "ok reached=1 unreached=" ] || ffag_fail "probe job8 from host 0"
  # ... the agent port filtered between hosts 1 and 2 (policy routing rules in host 1's namespace only;
  # this kernel has no netfilter tools or tc actions): host 1 cannot connect to host 2's agent port, and
  # its agent's answers to host 2 are dropped; host 0 still reaches both
  ip -n "$(ffag_host 1)" rule add to 10.250.0.3 ipproto tcp dport "$FFAG_PORT" prohibit
  ip -n "$(ffag_host 1)" rule add to 10.250.0.3 ipproto tcp sport "$FFAG_PORT" prohibit
  out=$("$FFAG_BIN/ffagentctl" "$(ffag_ctl 1)" probe job7) || ffag_fail "probe on host 1: $out"
  [ "$out" = "ok reached=0 unreached=2:FF_AGENT_PEER_UNREACHABLE" ] || ffag_fail "filtered probe on host 1: $out"
  out=$("$FFAG_BIN/ffagentctl" "$(ffag_ctl 2)" probe job7) || ffag_fail "probe on host 2: $out"
  [ "$out" = "ok reached=0 unreached=1:FF_AGENT_PEER_UNREACHABLE" ] || ffag_fail "filtered probe on host 2: $out"
  out=$("$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" probe job7) || ffag_fail "probe on host 0: $out"
  [ "$out" = "ok reached=1,2 unreached=" ] || ffag_fail "probe on host 0 with the filter: $out"
  out=$("$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" probe nosuchjob) && ffag_fail "probe of an unknown job: $out"
  [ "$out" = "error unknown-job nosuchjob" ] || ffag_fail "unclear error: $out"
  ;;

failures)
  ffag_topology 2
  ffag_start_agent 0
  ffag_start_agent 1
  ffag_add_job 0 job7 "$KEY" "0 1"
  ffag_add_job 1 job7 "$KEY" "0 1"
  D0=$(ffag_dir 0 job7)
  D1=$(ffag_dir 1 job7)
  start_server 1 hold1 hold "$D1" "$KEY" "$R1"

  # control protocol: clear errors, nothing half-registered
  ctl0() { "$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" "$@"; }
  out=$(ctl0 add jobx "key=$KEY" "dir=$FFAG_WORK" uid=0 gid=0 host=0) && ffag_fail "add without peers accepted"
  [ "$out" = "error bad-argument missing peers=" ] || ffag_fail "unclear error: $out"
  out=$(ctl0 add job7 "key=$KEY" "dir=$D0" uid=0 gid=0 host=0 "peers=1@$(ffag_addr 1)") && ffag_fail "duplicate job accepted"
  [[ "$out" == "error exists job job7 is already registered"* ]] || ffag_fail "unclear error: $out"
  out=$(ctl0 add jobx key=123 "dir=$FFAG_WORK" uid=0 gid=0 host=0 "peers=1@$(ffag_addr 1)") && ffag_fail "bad key accepted"
  [[ "$out" == "error bad-argument key=123"* ]] || ffag_fail "unclear error: $out"
  out=$(ctl0 add) && ffag_fail "empty add accepted"
  [[ "$out" == "error bad-argument"* ]] || ffag_fail "unclear error: $out"
  out=$(ctl0 frobnicate) && ffag_fail "unknown command accepted"
  [[ "$out" == "error bad-request unknown command"* ]] || ffag_fail "unclear error: $out"
  [ "$(ctl0 list)" = "ok job7:ranks=0" ] || ffag_fail "list: $(ctl0 list)"
  [ "$(ctl0 ping)" = "ok ffagent protocol 1" ] || ffag_fail "ping: $(ctl0 ping)"

  # wrong key on the job socket: refused and logged
  expect_refusal 0 badkey FF_AGENT_BAD_KEY hold "$D0" "$OTHER_KEY" "$R0"
  expect_log 0 "job=job7 .* refused: FF_AGENT_BAD_KEY"
  # duplicate owner id
  expect_refusal 1 dup FF_AGENT_DUPLICATE_OWNER hold "$D1" "$KEY" "$R1"
  # unknown target rank on the peer host
  expect_refusal 0 unknown FF_AGENT_UNKNOWN_RANK call "$D0" "$KEY" "$R0" "$R3" 1
  expect_log 1 "refused incoming channel: FF_AGENT_UNKNOWN_RANK"
  # a job whose uid is not the caller's (the socket belongs to nobody; root connects, SO_PEERCRED says 0)
  mkdir -p "$FFAG_WORK/job9-h0"
  "$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" add job9 "key=$KEY" "dir=$FFAG_WORK/job9-h0" uid=65534 gid=65534 host=0 \
    "peers=1@$(ffag_addr 1)" >/dev/null
  test "$(stat -c '%u %g %a' "$FFAG_WORK/job9-h0/agent.sock")" = "65534 65534 600" || ffag_fail "job9 socket not handed to uid 65534"
  expect_refusal 0 baduid FF_AGENT_BAD_UID hold "$FFAG_WORK/job9-h0" "$KEY" "$R0"
  # the same job id on host 1 with another key: the agents cannot authenticate each other
  ffag_add_job 0 job10 "$KEY" "0 1"
  ffag_add_job 1 job10 "$OTHER_KEY" "0 1"
  start_server 1 hold10 hold "$(ffag_dir 1 job10)" "$OTHER_KEY" "$R1"
  expect_refusal 0 auth FF_AGENT_PEER_AUTH_FAILED call "$(ffag_dir 0 job10)" "$KEY" "$R0" "$R1" 1
  expect_log 0 "job=job10 .*FF_AGENT_PEER_AUTH_FAILED"
  # a peer host whose agent does not listen
  mkdir -p "$FFAG_WORK/job11-h0"
  "$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" add job11 "key=$KEY" "dir=$FFAG_WORK/job11-h0" uid=0 gid=0 host=0 \
    "peers=1@10.250.0.2:7999" >/dev/null
  expect_refusal 0 unreach FF_AGENT_PEER_UNREACHABLE call "$FFAG_WORK/job11-h0" "$KEY" "$R1" "$R2" 1

  # deadlines: a peer host that never answers (no such address: the SYN goes nowhere), and a "peer" that
  # connects to agent 0 and sends nothing; both end after the 3 s handshake deadline, nothing hangs
  mkdir -p "$FFAG_WORK/job15-h0"
  "$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" add job15 "key=$KEY" "dir=$FFAG_WORK/job15-h0" uid=0 gid=0 host=0 \
    "peers=1@10.250.0.99:7470" >/dev/null
  ip netns exec "$(ffag_host 1)" bash -c 'exec 3<>/dev/tcp/10.250.0.1/7470; sleep 6' &
  FFAG_PIDS+=($!)
  t0=$SECONDS
  expect_refusal 0 silent FF_AGENT_PEER_UNREACHABLE call "$FFAG_WORK/job15-h0" "$KEY" "$R0" "$R1" 1
  [ $((SECONDS - t0)) -le 5 ] || ffag_fail "silent host took $((SECONDS - t0)) s"
  expect_log 0 "job=job15 .*FF_AGENT_PEER_UNREACHABLE \(timed out connecting to or authenticating the peer agent\)"
  ffag_wait_for 2 grep -q "10.250.0.2:[0-9]*: timed out in a handshake, closing" "$FFAG_WORK/agent-h0.log" ||
    ffag_fail "agent 0 did not drop a silent inbound connection"

  # symlinks: agent.sock pre-planted as a symlink, and a shared directory that is a symlink
  mkdir -p "$FFAG_WORK/job12-h0" "$FFAG_WORK/real"
  ln -s "$FFAG_WORK/real/agent.sock" "$FFAG_WORK/job12-h0/agent.sock"
  if "$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" add job12 "key=$KEY" "dir=$FFAG_WORK/job12-h0" uid=0 gid=0 host=0 \
    "peers=1@$(ffag_addr 1)" >"$FFAG_WORK/sym1.out"; then ffag_fail "agent.sock symlink accepted"; fi
  grep -q "is not an agent's socket" "$FFAG_WORK/sym1.out" || ffag_fail "symlink refusal unclear: $(cat "$FFAG_WORK/sym1.out")"
  ln -s "$FFAG_WORK/real" "$FFAG_WORK/job13-h0"
  if "$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" add job13 "key=$KEY" "dir=$FFAG_WORK/job13-h0" uid=0 gid=0 host=0 \
    "peers=1@$(ffag_addr 1)" >"$FFAG_WORK/sym2.out"; then ffag_fail "symlinked shared directory accepted"; fi
  grep -q "without following symlinks" "$FFAG_WORK/sym2.out" || ffag_fail "symlink dir refusal unclear: $(cat "$FFAG_WORK/sym2.out")"
  [ ! -e "$FFAG_WORK/real/agent.sock" ] || ffag_fail "a socket was created through a symlink"

  # a client crashes (SIGKILL while registered): the agent forgets it and keeps serving
  start_server 0 crash hold "$D0" "$KEY" "$R2"
  kill -9 "$FFAG_LAST_PID"
  ffag_wait_for 2 grep -q "owner=0000000700000002 pid=[0-9]*: registration closed" "$FFAG_WORK/agent-h0.log" ||
    ffag_fail "agent 0 did not notice the crashed client"
  start_server 1 serve1 serve "$D1" "$KEY" "$R3" 1
  run_probe 0 after call "$D0" "$KEY" "$R2" "$R3" 1 65536 || ffag_fail "handoff after a client crash: $(cat "$FFAG_WORK/after.log")"
  expect_out after '^ok bytes=65536$'

  # launcher lease: the job goes when the launcher's control connection does (SIGKILL included)
  mkdir -p "$FFAG_WORK/job14-h0"
  "$FFAG_BIN/ffagentctl" --hold "$(ffag_ctl 0)" add job14 "key=$KEY" "dir=$FFAG_WORK/job14-h0" uid=0 gid=0 host=0 \
    "peers=1@$(ffag_addr 1)" lease=1 >"$FFAG_WORK/lease.out" &
  lease_pid=$!
  FFAG_PIDS+=("$lease_pid")
  ffag_wait_for 3 test -S "$FFAG_WORK/job14-h0/agent.sock" || ffag_fail "leased job not created"
  start_server 0 hold14 hold "$FFAG_WORK/job14-h0" "$KEY" "$R0"
  kill -9 "$lease_pid"
  wait_pid "$FFAG_LAST_PID" 1 "rank of the leased job after its launcher was killed"
  expect_out hold14 '^agent-gone ffagent .*agent.sock.*: the registration connection closed'
  [ ! -e "$FFAG_WORK/job14-h0/agent.sock" ] || ffag_fail "leased job's agent.sock left behind"
  expect_log 0 "job=job14 removed: its launcher's control connection closed"

  # job removal closes the job's connections and removes agent.sock
  start_server 0 hold7 hold "$D0" "$KEY" "$R3"
  "$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" remove job7 >/dev/null || ffag_fail "remove job7"
  wait_pid "$FFAG_LAST_PID" 1 "rank of a removed job"
  expect_out hold7 '^agent-gone '
  [ ! -e "$D0/agent.sock" ] || ffag_fail "removed job's agent.sock left behind"
  "$FFAG_BIN/ffagentctl" "$(ffag_ctl 0)" list | grep -q 'job7:' && ffag_fail "job7 still listed"

  # out of descriptors: an agent limited to 16 is flooded with 40 connections; it sheds them without
  # spinning (a level-triggered listener it cannot accept from would busy-loop) and serves again after
  mkdir -p "$FFAG_WORK/ctl-x"
  ip netns exec "$(ffag_host 0)" prlimit --nofile=16:16 "$FFAG_BIN/ffagent" --control "$FFAG_WORK/ctl-x/control.sock" \
    --listen 10.250.0.1:7471 --log "$FFAG_WORK/agent-x.log" &
  xpid=$!
  FFAG_PIDS+=("$xpid")
  ffag_wait_for 5 test -S "$FFAG_WORK/ctl-x/control.sock" || ffag_fail "limited agent did not start"
  ip netns exec "$(ffag_host 1)" bash -c 'for i in $(seq 40); do exec {fd}<>/dev/tcp/10.250.0.1/7471; done; sleep 2' &
  flood=$!
  FFAG_PIDS+=("$flood")
  sleep 0.5
  x0=$(awk '{print $14 + $15}' "/proc/$xpid/stat")
  sleep 1
  x1=$(awk '{print $14 + $15}' "/proc/$xpid/stat")
  [ $((x1 - x0)) -le 2 ] || ffag_fail "flooded agent used $((x1 - x0)) clock ticks in 1 s (busy loop)"
  [ "$(grep -c 'connection shed' "$FFAG_WORK/agent-x.log")" -ge 20 ] || ffag_fail "flooded agent did not shed connections"
  # while out of descriptors it sheds control connections too; once the flood ends it answers again
  wait "$flood" || true
  ffag_wait_for 4 "$FFAG_BIN/ffagentctl" "$FFAG_WORK/ctl-x/control.sock" ping >/dev/null ||
    ffag_fail "agent does not answer after the flood"
  kill -TERM "$xpid"

  # the agent is killed: its registered ranks see EOF within a second
  t0=$(date +%s%N)
  kill -9 "${FFAG_AGENT_PID[1]}"
  ffag_wait_for 2 grep -q '^agent-gone' "$FFAG_WORK/hold1.out" || ffag_fail "rank on host 1 did not see the agent die"
  ffag_wait_for 2 grep -q '^agent-gone' "$FFAG_WORK/hold10.out" || ffag_fail "job10's rank did not see the agent die"
  ms=$((($(date +%s%N) - t0) / 1000000))
  ffag_say "ranks saw the agent die after $ms ms: $(cat "$FFAG_WORK/hold1.out")"
  [ "$ms" -lt 1000 ] || ffag_fail "took $ms ms"
  expect_out hold1 'agent-gone ffagent \(.*agent.sock\): the registration connection closed: the host.s ffagent died'
  ;;
router)
  ffag_topology 2
  # The agents poll (yielding) 2 ms after traffic before they block: the idle checks below must hold with
  # that spin too.
  FFAGENT_SPIN_US=2000 ffag_start_agent 0
  FFAGENT_SPIN_US=2000 ffag_start_agent 1
  ffag_add_job 0 job7 "$KEY" "0 1"
  ffag_add_job 1 job7 "$KEY" "0 1"
  c0=$(ffag_container 0)
  test -z "$(ip -n "$c0" route show)" || ffag_fail "container 0 has a route"
  tx0=$(ffag_counter 0 tx)
  rx0=$(ffag_counter 0 rx)
  BYTES=$((4 << 20))
  # rank 1 on host 1 echoes 64 messages of 64 KiB back to host 0; rank 0 on host 0 sends and checks them.
  ffag_probe 1 echo1 route-echo "$(ffag_dir 1 job7)" "$KEY" "$R1" 0 64
  echo_pid=$FFAG_LAST_PID
  ffag_wait_for 5 grep -q '^routed' "$FFAG_WORK/echo1.out" || ffag_fail "echo1 did not open its route: $(cat "$FFAG_WORK/echo1.log")"
  run_probe 0 call0 route-call "$(ffag_dir 0 job7)" "$KEY" "$R0" "$R1" 1 "$BYTES" ||
    ffag_fail "route-call 0->1: $(cat "$FFAG_WORK/call0.out" "$FFAG_WORK/call0.log")"
  expect_out call0 "^ok bytes=$BYTES "
  wait_pid "$echo_pid" 5 echo1 || ffag_fail "echo1 failed: $(cat "$FFAG_WORK/echo1.log")"
  expect_out echo1 "^echoed messages=64 bytes=$BYTES\$"
  ffag_say "router: $(cat "$FFAG_WORK/call0.out" | tail -n 1)"
  dtx=$(($(ffag_counter 0 tx) - tx0))
  drx=$(($(ffag_counter 0 rx) - rx0))
  ffag_say "host 0 underlay: tx +$dtx rx +$drx bytes for $BYTES each way"
  [ "$dtx" -ge "$BYTES" ] && [ "$drx" -ge "$BYTES" ] || ffag_fail "underlay counters too small: tx +$dtx rx +$drx"
  expect_log 0 "job=job7 router link to host 1 \(10.250.0.2:7470\) up"
  expect_log 1 "job=job7 router link to host 0 \(10.250.0.1:7470\) up"
  expect_log 0 "owner=0000000700000000: router carried 64 messages \($BYTES bytes\) out, 64 \($BYTES bytes\) in"
  # 8 B ping-pong with ranks that yield their CPU after 4 empty polls (the BTL's policy,
  # ff_route_poll_pass) and agents that poll a while after traffic (2 ms, above): every
  # message arrives, the waiting side did yield, and one that must not yield (0) never does.
  ffag_probe 1 pong1 route-ping "$(ffag_dir 1 job7)" "$KEY" "$R1" "$R0" 0 300 0 4
  pong_pid=$FFAG_LAST_PID
  ffag_wait_for 5 grep -q '^routed' "$FFAG_WORK/pong1.out" || ffag_fail "pong1 did not open its route: $(cat "$FFAG_WORK/pong1.log")"
  run_probe 0 ping0 route-ping "$(ffag_dir 0 job7)" "$KEY" "$R0" "$R1" 1 300 1 0 ||
    ffag_fail "route-ping 0->1: $(cat "$FFAG_WORK/ping0.out" "$FFAG_WORK/ping0.log")"
  wait_pid "$pong_pid" 5 pong1 || ffag_fail "pong1 failed: $(cat "$FFAG_WORK/pong1.log")"
  expect_out ping0 '^lat_us=[0-9.]+$'
  expect_out ping0 '^yields=0$'
  expect_out pong1 '^yields=[1-9][0-9]*$'
  ffag_say "router ping with yielding ranks: $(ffag_out ping0 | tr '\n' ' ')/ $(ffag_out pong1 | tr '\n' ' ')"
  # Idle (routes closed, link and UCX worker still up), neither agent polls: no CPU over a second.
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  sleep 0.2
  a0=$(ticks "${FFAG_AGENT_PID[0]}"); a1=$(ticks "${FFAG_AGENT_PID[1]}")
  sleep 1
  i0=$(($(ticks "${FFAG_AGENT_PID[0]}") - a0)); i1=$(($(ticks "${FFAG_AGENT_PID[1]}") - a1))
  [ "$i0" -le 1 ] && [ "$i1" -le 1 ] || ffag_fail "idle agents used $i0 / $i1 clock ticks in 1 s (busy polling?)"
  # Ranks waiting on routes (one per host, so the link is in use) with the agents blocked: still no CPU.
  ffag_probe 0 hold0 route-hold "$(ffag_dir 0 job7)" "$KEY" "$R2"
  hold0=$FFAG_LAST_PID
  ffag_probe 1 hold1 route-hold "$(ffag_dir 1 job7)" "$KEY" "$R3"
  hold1=$FFAG_LAST_PID
  ffag_wait_for 5 grep -q '^routed' "$FFAG_WORK/hold0.out" || ffag_fail "hold0 did not open its route"
  ffag_wait_for 5 grep -q '^routed' "$FFAG_WORK/hold1.out" || ffag_fail "hold1 did not open its route"
  sleep 0.2
  a0=$(ticks "${FFAG_AGENT_PID[0]}")
  sleep 1
  i0=$(($(ticks "${FFAG_AGENT_PID[0]}") - a0))
  [ "$i0" -le 1 ] || ffag_fail "agent 0 with an open route used $i0 clock ticks in 1 s while nothing moved"
  # Agent of host 1 SIGKILLed: its rank sees EOF at once, and host 0's agent loses the link and closes
  # the job's routes there, so the rank on host 0 learns it too (instead of waiting forever).
  kill -9 "${FFAG_AGENT_PID[1]}"
  wait_pid "$hold1" 3 "hold1 after the agent died" || true
  wait_pid "$hold0" 3 "hold0 after the peer agent died" || true
  expect_out hold1 "^agent-gone .*ffagent \(.*agent.sock\) closed this rank's router connection"
  expect_out hold0 "^agent-gone "
  expect_log 0 "job=job7 router link to host 1 \(10.250.0.2:7470\) lost"
  ;;
*)
  echo "unknown case $CASE" >&2
  exit 2
  ;;

esac
ffag_say "agent.netns_$CASE: all checks passed"
