#!/usr/bin/env bash
# Path h (host-network handoff) against the overlay (tcp BTL over VXLAN), MPI level: ffbench_mpi through
# ffrun, 2 hosts x 1 container, one rank each. For every MTU and round the modes run interleaved
# (handoff, tcp, handoff, tcp, ...), one ffrun job per benchmark, and the medians over the rounds are
# printed with every round's value. Root; about 10 s per job.
#
#   ROUNDS=3 MTUS="1500 9000 9000/1450" MODES="handoff tcp" BENCHMARKS="latency bw" EXTRA_MCA="" bench/handoff/run.sh
#
# MTU is the hosts' network (underlay) MTU (ffrun --mtu); the overlay gets 50 less, or what follows a slash:
# 9000/1450 is a jumbo-frame host network under containers kept at 1450 (ffrun --container-mtu). A mode is an
# --inter-host value, optionally with the handoff module's rdma protocol: handoff:get, handoff:put,
# handoff:none (btl_freeflow_sock_rdma), and optionally btl_freeflow_sock_* settings after commas, e.g.
# handoff,wait_spin=0 (A/B runs of one tunable).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
MTUS=${MTUS:-1500 9000}
MODES=${MODES:-handoff tcp}
# latency and/or bw: what each mode runs per round (both by default)
BENCHMARKS=${BENCHMARKS:-latency bw}
# fixed counts instead of OSU's per-size defaults: a job takes seconds, not minutes, on a loaded machine
LATENCY_ITERATIONS=${LATENCY_ITERATIONS:-5000}
BW_ITERATIONS=${BW_ITERATIONS:-5}
FFRUN=bin/ffrun
BENCH=build/bin/ffbench_mpi
out=$(mktemp -d /tmp/ffbench-handoff.XXXXXX)
trap 'rm -rf "$out"' EXIT

# rank 0's result lines: "<size> <value> ..." -> "<size> <value>"
run_one() { # mtu mode benchmark sizes iterations warmup
    local mtu=$1 mode=$2 benchmark=$3 sizes=$4 iterations=$5 warmup=$6 extra=()
    if [[ -n "${EXTRA_MCA:-}" ]]; then read -ra extra <<<"$EXTRA_MCA"; fi
    local settings plane setting
    IFS=, read -ra settings <<<"$mode"
    plane=${settings[0]}
    for setting in "${settings[@]:1}"; do extra+=(--mca "btl_freeflow_sock_${setting%%=*}" "${setting#*=}"); done
    if [[ "$plane" == *:* ]]; then extra+=(--mca btl_freeflow_sock_rdma "${plane#*:}"); fi
    if [[ "$mtu" == */* ]]; then extra+=(--container-mtu "${mtu#*/}"); fi
    "$FFRUN" -n 2 --hosts 2 --mtu "${mtu%%/*}" --inter-host "${plane%%:*}" --timeout 300 "${extra[@]}" -- \
        "$BENCH" "$benchmark" --sizes "$sizes" --iterations "$iterations" --warmup "$warmup" 2>&1 |
        awk '/^\[rank 0\] [0-9]+ +[0-9.]+/ { print $3, $4 }'
}

echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
for mtu in $MTUS; do
    for round in $(seq "$ROUNDS"); do
        for mode in $MODES; do
            if [[ " $BENCHMARKS " == *" latency "* ]]; then
                run_one "$mtu" "$mode" latency 8 "$LATENCY_ITERATIONS" $((LATENCY_ITERATIONS / 10)) | sed "s|^|$mtu $mode latency |" | tee -a "$out/results" >&2
            fi
            if [[ " $BENCHMARKS " == *" bw "* ]]; then
                run_one "$mtu" "$mode" bw 64K,1M,4M "$BW_ITERATIONS" 1 | sed "s|^|$mtu $mode bw |" | tee -a "$out/results" >&2
            fi
        done
    done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# mtu mode benchmark size median [rounds in order]   (latency in us, bw in MB/s)"
awk '{ key = $1 " " $2 " " $3 " " $4; values[key] = values[key] " " $5; order[key] = ++n }
     END { for (key in values) print order[key], key, values[key] }' "$out/results" | sort -n | cut -d' ' -f2- |
while read -r mtu mode benchmark size rest; do
    median=$(tr ' ' '\n' <<<"$rest" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    printf '%s %s %s %s %s [%s]\n' "$mtu" "$mode" "$benchmark" "$size" "$median" "$(sed 's/^ *//' <<<"$rest")"
done
