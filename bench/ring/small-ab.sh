#!/bin/bash
# small-ab.sh: 8 B latency and message rate of freeflow builds against vader, interleaved (issue 10's
# small-message targets). Plain mpirun in one namespace, 2 ranks bound to cores 0 and 1 at real-time
# priority (chrt -f 10: a rank is not preempted by other jobs mid-measurement), and the core-to-core floor
# (ffbench_ring --floor, same priority) before every round, so each round's ratios are taken under one
# placement of the two vCPUs. Every round runs every mode once, in a rotated order.
#
#   bench/ring/small-ab.sh [--rounds 5] [--iterations 20000] [--windows 2000] [--pairs 1]
#                          [--modes vader,vader2,NAME=BTLDIR,...] [--dir DIR]
#
# NAME=BTLDIR[@PARAM=VALUE...] is a freeflow build: a directory holding mca_btl_freeflow.so (e.g. build/btl
# of a worktree), so two builds of the BTL can be compared side by side, with MCA settings of its own
# (e.g. small=build/btl@btl_freeflow_ring_size=16384). --pairs 2 runs mr with 4 ranks (2 per core,
# unbound, mpi_yield_when_idle, no chrt: 4 spinning real-time ranks on 2 vCPUs would only measure the
# throttle). --dir DIR: the shared directory of every freeflow mode (btl_freeflow_dir; a directory of
# yours, mode 0700), so that runs leave nothing under /dev/shm/freeflow-* while others check for
# leftovers there. mr runs 2000 windows of 64 (7-18 ms): 200 windows (about 1.5 ms) measured start-up
# more than the steady rate, 0.95x of vader where 2000 windows gave 1.3x in the same rounds. Prints one line per round and mode, then medians [min-max] of per-round ratios to vader.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$repo/build/bin
rounds=5 iterations=20000 windows=2000 pairs=1 dir=
modes="vader,vader2,freeflow=$repo/build/btl"
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --windows) windows=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "small-ab.sh: unknown option '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
[ -z "$dir" ] || [ -d "$dir" ] || { echo "small-ab.sh: --dir '$dir' is not a directory (mkdir -m 700 it)" >&2; exit 2; }
shared_dir=$dir
case $pairs in 1 | 2) ;; *) echo "small-ab.sh: --pairs is 1 or 2, got '$pairs'" >&2; exit 2 ;; esac
IFS=, read -r -a mode_list <<<"$modes"
system_dir=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
out=$(mktemp -d /tmp/small-ab.XXXXXX)
trap 'rm -rf "$out"' EXIT

# sets $args (mpirun's BTL selection) and $path (OMPI_MCA_mca_base_component_path) for one mode
mode_args() {
    case $1 in
    vader) path=$system_dir args=(--mca btl self,vader) ;;
    vader2) path=$system_dir args=(--mca btl self,vader --mca btl_vader_single_copy_mechanism none) ;;
    *=*)
        local spec=${1#*=} dir setting
        dir=${spec%%@*}
        [ -f "$dir/mca_btl_freeflow.so" ] || { echo "small-ab.sh: no mca_btl_freeflow.so in '$dir'" >&2; exit 2; }
        path=$dir:$system_dir args=(--mca btl self,freeflow)
        [ -z "$shared_dir" ] || args+=(--mca btl_freeflow_dir "$shared_dir")
        if [ "$spec" != "$dir" ]; then
            IFS=@ read -r -a settings <<<"${spec#*@}"
            for setting in "${settings[@]}"; do
                [[ $setting == *=* ]] || { echo "small-ab.sh: '$setting' in mode '$1' is not PARAM=VALUE" >&2; exit 2; }
                args+=(--mca "${setting%%=*}" "${setting#*=}")
            done
        fi ;;
    *) echo "small-ab.sh: mode '$1' is vader, vader2 or NAME=BTLDIR" >&2; exit 2 ;;
    esac
}

for mode in "${mode_list[@]}"; do mode_args "$mode"; done # bad modes fail before any run

run() { # mode bench -> value (us for latency, messages/s for mr)
    mode_args "$1"
    if [ "$2" = latency ]; then
        OMPI_MCA_mca_base_component_path=$path mpirun --allow-run-as-root -n 2 --mca pml ob1 "${args[@]}" --bind-to core \
            chrt -f 10 "$bin/ffbench_mpi" latency --sizes 8 --iterations "$iterations" --warmup 1000 --json - |
            sed -n 's/.*"latency_us": \([0-9.e+-]*\).*/\1/p'
    elif [ "$pairs" = 1 ]; then
        OMPI_MCA_mca_base_component_path=$path mpirun --allow-run-as-root -n 2 --mca pml ob1 "${args[@]}" --bind-to core \
            chrt -f 10 "$bin/ffbench_mpi" mr --sizes 8 --iterations "$windows" --warmup 20 --json - |
            sed -n 's/.*"message_rate_per_s": \([0-9.e+-]*\).*/\1/p'
    else
        OMPI_MCA_mca_base_component_path=$path mpirun --allow-run-as-root -n 4 --oversubscribe --bind-to none \
            --mca mpi_yield_when_idle 1 --mca pml ob1 "${args[@]}" \
            "$bin/ffbench_mpi" mr --sizes 8 --iterations "$windows" --warmup 20 --json - |
            sed -n 's/.*"message_rate_per_s": \([0-9.e+-]*\).*/\1/p'
    fi
}

echo "# $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for ((r = 0; r < rounds; r++)); do
    floor=$(chrt -f 10 "$bin/ffbench_ring" --floor | awk '{ print $(NF-1) }')
    echo "$floor" >>"$out/floor"
    n=${#mode_list[@]}
    for ((i = 0; i < n; i++)); do
        mode=${mode_list[$(((i + r) % n))]}
        name=${mode%%=*}
        lat=$(run "$mode" latency)
        mr=$(run "$mode" mr)
        echo "$r $lat" >>"$out/lat.$name"
        echo "$r $mr" >>"$out/mr.$name"
        printf 'round %d floor %s ns  %-10s latency %s us  mr %s msg/s\n' $((r + 1)) "$floor" "$name" "$lat" "$mr"
    done
done

# median [min-max] of a column of numbers
stats() { sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    printf "%.3f [%.3f-%.3f]", m, v[1], v[NR] }'; }
echo "# load after $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds; floor ns $(stats <"$out/floor")"
for mode in "${mode_list[@]}"; do
    name=${mode%%=*}
    lat_ratio=$(join "$out/lat.$name" "$out/lat.vader" | awk '{ print $2 / $3 }' | stats)
    mr_ratio=$(join "$out/mr.$name" "$out/mr.vader" | awk '{ print $2 / $3 }' | stats)
    printf '%-10s latency %s us (%s x vader)  mr %s M msg/s (%s x vader)\n' "$name" \
        "$(awk '{ print $2 }' "$out/lat.$name" | stats)" "$lat_ratio" \
        "$(awk '{ print $2 / 1e6 }' "$out/mr.$name" | stats)" "$mr_ratio"
done
