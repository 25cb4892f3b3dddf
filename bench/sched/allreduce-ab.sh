#!/bin/bash
# allreduce-ab.sh: 4-rank MPI_Allreduce (or the 2-pair message rate) with more ranks than cores, each
# rank in a cpu cgroup of its own (as ffrun's containers: one cgroup per container) or all 4 in one (as
# vader's ranks in one container), for vader and builds of the freeflow BTL side by side, interleaved
# (issue 10's collective and message-rate targets, docs/btl.md, "4 ranks in 4 containers"). Plain mpirun
# in one namespace, 4 ranks unbound with mpi_yield_when_idle 1 (what ffrun sets when ranks outnumber
# cores), or ffrun itself (its runc containers, fork agent and MCA settings), so that the harness and
# ffrun's containers are measured in the same rounds. Run as root (cgroup v1 `cpu` controller, ffrun's
# local cluster); removes the cgroups and the BTL's directory it creates. Every round runs every mode
# once, in a rotated order; prints one line per round and mode, then medians [min-max] of per-round
# ratios to the first mode.
#
#   bench/sched/allreduce-ab.sh [--rounds 5] [--bench allreduce|mr] [--iterations 300] [--warmup 30]
#                               [--sizes 8,64K] [--modes NAME=BTL@LAYOUT[@PARAM=VALUE...],...]
#
# BTL is vader or a directory holding mca_btl_freeflow.so (e.g. build/btl of a worktree, or a copy of
# main's); LAYOUT is one (one cgroup for the 4 ranks) or per-rank under plain mpirun, or through
# ffrun: containers (a container per rank, one host), container (the 4 ranks in one) or hosts (2 hosts of
# 2 containers, a rank each: pairs 0-1 and 2-3 by shared memory, the others across hosts). ffrun
# loads this tree's BTL with its own BTL list (self,vader,freeflow,tcp; a PARAM btl=... replaces it), so
# its freeflow modes name this tree's build/btl. Modes are separated by semicolons instead of commas when a
# value holds a comma. Default modes: vader in one cgroup (the reference),
# vader per rank, this tree's freeflow per rank and in one cgroup. allreduce reports the slowest rank's
# mean time per call (us), mr the message rate of the 2 pairs (messages/s, windows of 64).
set -euo pipefail

cgroup_root=/sys/fs/cgroup/cpu

# Re-entered by mpirun as each rank's wrapper: joins the rank's cgroup, then becomes the benchmark.
if [ "${1:-}" = --as-rank ]; then
    group=$2
    shift 2
    [ -d "$group" ] || group=$group-$OMPI_COMM_WORLD_RANK
    echo $$ >"$group/cgroup.procs"
    exec "$@"
fi

repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$repo/build/bin
rounds=5 bench=allreduce iterations=300 warmup=30 sizes=8,64K
modes="vader=vader@one,vader-per-rank=vader@per-rank,freeflow=$repo/build/btl@per-rank,freeflow-one=$repo/build/btl@one"
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --bench) bench=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    *) echo "allreduce-ab.sh: unknown option '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
case $bench in
allreduce) field=latency_us unit=us ;;
mr) field=message_rate_per_s unit=msg/s ;;
*) echo "allreduce-ab.sh: --bench is allreduce or mr, not '$bench'" >&2; exit 2 ;;
esac
[ -d "$cgroup_root" ] || { echo "allreduce-ab.sh: no cgroup v1 cpu controller at $cgroup_root" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "allreduce-ab.sh: run as root (it creates cpu cgroups)" >&2; exit 1; }
separator=,
[[ $modes != *';'* ]] || separator=';'
IFS=$separator read -r -a mode_list <<<"$modes"
IFS=, read -r -a size_list <<<"$sizes"
system_dir=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
out=$(mktemp -d /tmp/allreduce-ab.XXXXXX)
# the BTL's shared directory: private, so that other users' checks of /dev/shm/freeflow-0-* see nothing of ours
ffdir=$out/ffdir
mkdir -m 700 "$ffdir"
group=$cgroup_root/ffsched-$$
cleanup() {
    rmdir "$group"-one "$group"-0 "$group"-1 "$group"-2 "$group"-3 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT
trap "exit 143" TERM
trap "exit 130" INT
mkdir "$group"-one "$group"-0 "$group"-1 "$group"-2 "$group"-3

# sets $args (mpirun's BTL selection), $path (component path) and $layout for one mode
mode_args() {
    local spec=${1#*=} btl setting
    [[ $1 == *=*@* ]] || { echo "allreduce-ab.sh: mode '$1' is not NAME=BTL@LAYOUT" >&2; exit 2; }
    IFS=@ read -r -a parts <<<"$spec"
    btl=${parts[0]} layout=${parts[1]}
    case $layout in
    one | per-rank) ;;
    containers) args=(--network freeflow --hosts 1) ;;
    container) args=(--network freeflow --hosts 1 --containers-per-host 1 --slots-per-container 4) ;;
    hosts) args=(--network freeflow --hosts 2 --containers-per-host 2) ;;
    *) echo "allreduce-ab.sh: layout '$layout' in mode '$1' is one, per-rank, containers, container or hosts" >&2; exit 2 ;;
    esac
    if [[ $layout != one && $layout != per-rank ]]; then
        if [ "$btl" = vader ]; then
            [ "$layout" = container ] || { echo "allreduce-ab.sh: vader runs in one container (mode '$1')" >&2; exit 2; }
            args=(--network overlay --mca btl self,vader "${args[@]:2}")
        elif [ "$(cd "$btl" && pwd)" != "$repo/build/btl" ]; then
            echo "allreduce-ab.sh: ffrun loads this tree's BTL ($repo/build/btl), not '$btl' (mode '$1')" >&2
            exit 2
        fi
    elif [ "$btl" = vader ]; then
        path=$system_dir args=(--mca btl self,vader)
    else
        [ -f "$btl/mca_btl_freeflow.so" ] || { echo "allreduce-ab.sh: no mca_btl_freeflow.so in '$btl'" >&2; exit 2; }
        path=$btl:$system_dir args=(--mca btl self,freeflow --mca btl_freeflow_dir "$ffdir")
    fi
    for setting in "${parts[@]:2}"; do
        [[ $setting == *=* ]] || { echo "allreduce-ab.sh: '$setting' in mode '$1' is not PARAM=VALUE" >&2; exit 2; }
        args+=(--mca "${setting%%=*}" "${setting#*=}")
    done
}

for mode in "${mode_list[@]}"; do mode_args "$mode"; done # bad modes fail before any run

run() { # mode -> one "size value" line per size
    mode_args "$1"
    if [[ $layout != one && $layout != per-rank ]]; then
        timeout -k 10 900 "$repo/bin/ffrun" -n 4 "${args[@]}" -- "$bin/ffbench_mpi" "$bench" --sizes "$sizes" \
            --iterations "$iterations" --warmup "$warmup" --json - 2>"$out/ffrun.err" |
            sed -n "s/^\[rank 0\] .*\"size\": \([0-9]*\),.*\"$field\": \([0-9.e+-]*\),.*/\1 \2/p"
        return
    fi
    local target=$group-one
    [ "$layout" = one ] || target=$group
    OMPI_MCA_mca_base_component_path=$path timeout -k 10 900 mpirun --allow-run-as-root -n 4 --oversubscribe \
        --bind-to none --mca mpi_yield_when_idle 1 --mca pml ob1 "${args[@]}" \
        "$0" --as-rank "$target" "$bin/ffbench_mpi" "$bench" --sizes "$sizes" --iterations "$iterations" \
        --warmup "$warmup" --json - |
        sed -n "s/.*\"size\": \([0-9]*\),.*\"$field\": \([0-9.e+-]*\),.*/\1 \2/p"
}

echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), $bench"
for ((r = 0; r < rounds; r++)); do
    n=${#mode_list[@]}
    for ((i = 0; i < n; i++)); do
        mode=${mode_list[$(((i + r) % n))]}
        name=${mode%%=*}
        result=$(run "$mode")
        if [ -z "$result" ]; then
            echo "allreduce-ab.sh: mode $name gave no result in round $((r + 1))" >&2
            [ ! -s "$out/ffrun.err" ] || tail -5 "$out/ffrun.err" >&2
            exit 1
        fi
        while read -r size us; do echo "$r $us" >>"$out/$name.$size"; done <<<"$result"
        printf 'round %d %-16s %s\n' $((r + 1)) "$name" "$(echo "$result" | awk -v unit="$unit" '{ printf "%s B %s %s  ", $1, $2, unit }')"
        [ -z "$(ls -A "$ffdir")" ] || { echo "allreduce-ab.sh: $name left files in $ffdir" >&2; exit 1; }
    done
done

# median [min-max] of a column of numbers
stats() { sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    printf "%.3g [%.3g-%.3g]", m, v[1], v[NR] }'; }
reference=${mode_list[0]%%=*}
echo "# load after $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds; ratios of per-round figures to $reference"
for mode in "${mode_list[@]}"; do
    name=${mode%%=*}
    line=$(printf '%-16s' "$name")
    for f in "$out/$name".*; do
        size=${f##*.}
        ratio=$(join "$f" "$out/$reference.$size" | awk '{ print $2 / $3 }' | stats)
        line+="  $size B $(awk '{ print $2 }' "$f" | stats) $unit ($ratio x)"
    done
    echo "$line"
done
