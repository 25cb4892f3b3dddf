#!/usr/bin/env bash
# Path r (the router through the agents) against the overlay, MPI level: ffbench_mpi through ffrun,
# 2 hosts x 1 container, one rank each. Each round runs every configuration once, interleaved, one ffrun
# job per benchmark; the medians over the rounds are printed with every round's value. Root.
#
#   ROUNDS=3 MTU=1500 CONFIGS="tcp r-spin r-yield r-coop" bench/router/run.sh
#
# A configuration is one of the names below, or name=<inter-host>,<agent spin us>,<rank yield after>[,mca=val...]
# (agent spin: FFAGENT_SPIN_US of the agents ffrun starts; yield after: btl_freeflow_router_yield_after;
# UCX_*=v: environment of the agents (ffrun's environment), other k=v: --mca k v).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
MTU=${MTU:-1500}
CONFIGS=${CONFIGS:-tcp r-spin r-yield r-coop}
LATENCY_ITERATIONS=${LATENCY_ITERATIONS:-2000}
BW_ITERATIONS=${BW_ITERATIONS:-5}
BW_SIZES=${BW_SIZES:-64K,1M,4M}
FFRUN=bin/ffrun
BENCH=build/bin/ffbench_mpi
out=$(mktemp -d /tmp/ffbench-router.XXXXXX)
trap 'rm -rf "$out"' EXIT

declare -A NAMED=(
  [tcp]="tcp,0,0"
  [r-spin]="router,0,0"    # before: agents block at once, ranks never yield
  [r-yield]="router,0,64"  # ranks yield after 64 empty passes, agents block at once
  [r-coop]="router,200,64" # and agents poll (yielding) 200 us after traffic before they block
)

run_one() { # config benchmark sizes iterations warmup
  local spec=${NAMED[$1]:-${1#*=}} extra=()
  IFS=, read -ra f <<<"$spec"
  extra+=(--mca btl_freeflow_router_yield_after "${f[2]}")
  local env=(FFAGENT_SPIN_US="${f[1]}")
  for kv in "${f[@]:3}"; do
    if [[ $kv == UCX_* ]]; then env+=("$kv"); else extra+=(--mca "${kv%%=*}" "${kv#*=}"); fi
  done
  env "${env[@]}" "$FFRUN" -n 2 --hosts 2 --mtu "$MTU" --inter-host "${f[0]}" --timeout 300 "${extra[@]}" -- \
    "$BENCH" "$2" --sizes "$3" --iterations "$4" --warmup "$5" 2>&1 |
    awk '/^\[rank 0\] [0-9]+ +[0-9.]+/ { print $3, $4 }'
}

echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; MTU $MTU; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
for round in $(seq "$ROUNDS"); do
  for config in $CONFIGS; do
    name=${config%%=*}
    run_one "$config" latency 8 "$LATENCY_ITERATIONS" $((LATENCY_ITERATIONS / 10)) | sed "s/^/$name latency /" | tee -a "$out/results" >&2
    run_one "$config" bw "$BW_SIZES" "$BW_ITERATIONS" 1 | sed "s/^/$name bw /" | tee -a "$out/results" >&2
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
echo "# config benchmark size median [rounds in order]   (latency in us, bw in MB/s)"
awk '{ key = $1 " " $2 " " $3; values[key] = values[key] " " $4; if (!(key in order)) order[key] = ++n }
     END { for (key in values) print order[key], key, values[key] }' "$out/results" | sort -n | cut -d' ' -f2- |
while read -r config benchmark size rest; do
  median=$(tr ' ' '\n' <<<"$rest" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  printf '%s %s %s %s [%s]\n' "$config" "$benchmark" "$size" "$median" "$(sed 's/^ *//' <<<"$rest")"
done
