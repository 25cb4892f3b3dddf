#!/bin/bash
# allreduce-ab.sh: 4-rank MPI_Allreduce with more ranks than cores, each rank in a cpu cgroup of its own
# (as ffrun's containers: one cgroup per container) or all 4 in one (as vader's ranks in one container),
# for vader and builds of the freeflow BTL side by side, interleaved (issue 10's collective target and
# docs/btl.md, "4 ranks in 4 containers"). Plain mpirun in one namespace, 4 ranks unbound with
# mpi_yield_when_idle 1 (what ffrun sets when ranks outnumber cores). Run as root (cgroup v1 `cpu`
# controller); removes the cgroups and the BTL's directory it creates. Every round runs every mode once,
# in a rotated order; prints one line per round and mode, then medians [min-max] of per-round ratios to
# the first mode.
#
#   bench/sched/allreduce-ab.sh [--rounds 5] [--iterations 300] [--warmup 30] [--sizes 8,64K]
#                               [--modes NAME=BTL@LAYOUT[@PARAM=VALUE...],...]
#
# BTL is vader or a directory holding mca_btl_freeflow.so (e.g. build/btl of a worktree, or a copy of
# main's); LAYOUT is one (one cgroup for the 4 ranks) or per-rank. Default modes: vader in one cgroup (the
# reference), vader per rank, this tree's freeflow per rank and in one cgroup.
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
rounds=5 iterations=300 warmup=30 sizes=8,64K
modes="vader=vader@one,vader-per-rank=vader@per-rank,freeflow=$repo/build/btl@per-rank,freeflow-one=$repo/build/btl@one"
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    *) echo "allreduce-ab.sh: unknown option '$1' (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
[ -d "$cgroup_root" ] || { echo "allreduce-ab.sh: no cgroup v1 cpu controller at $cgroup_root" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "allreduce-ab.sh: run as root (it creates cpu cgroups)" >&2; exit 1; }
IFS=, read -r -a mode_list <<<"$modes"
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
mkdir "$group"-one "$group"-0 "$group"-1 "$group"-2 "$group"-3

# sets $args (mpirun's BTL selection), $path (component path) and $layout for one mode
mode_args() {
    local spec=${1#*=} btl setting
    [[ $1 == *=*@* ]] || { echo "allreduce-ab.sh: mode '$1' is not NAME=BTL@LAYOUT" >&2; exit 2; }
    IFS=@ read -r -a parts <<<"$spec"
    btl=${parts[0]} layout=${parts[1]}
    case $layout in one | per-rank) ;; *) echo "allreduce-ab.sh: layout '$layout' in mode '$1' is one or per-rank" >&2; exit 2 ;; esac
    if [ "$btl" = vader ]; then
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

run() { # mode -> one "size latency_us" line per size
    mode_args "$1"
    local target=$group-one
    [ "$layout" = one ] || target=$group
    OMPI_MCA_mca_base_component_path=$path timeout -k 10 900 mpirun --allow-run-as-root -n 4 --oversubscribe \
        --bind-to none --mca mpi_yield_when_idle 1 --mca pml ob1 "${args[@]}" \
        "$0" --as-rank "$target" "$bin/ffbench_mpi" allreduce --sizes "$sizes" --iterations "$iterations" \
        --warmup "$warmup" --json - |
        sed -n 's/.*"size": \([0-9]*\),.*"latency_us": \([0-9.e+-]*\),.*/\1 \2/p'
}

echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for ((r = 0; r < rounds; r++)); do
    n=${#mode_list[@]}
    for ((i = 0; i < n; i++)); do
        mode=${mode_list[$(((i + r) % n))]}
        name=${mode%%=*}
        result=$(run "$mode")
        [ -n "$result" ] || { echo "allreduce-ab.sh: mode $name gave no result in round $((r + 1))" >&2; exit 1; }
        while read -r size us; do echo "$r $us" >>"$out/$name.$size"; done <<<"$result"
        printf 'round %d %-16s %s\n' $((r + 1)) "$name" "$(echo "$result" | awk '{ printf "%s B %s us  ", $1, $2 }')"
        [ -z "$(ls -A "$ffdir")" ] || { echo "allreduce-ab.sh: $name left files in $ffdir" >&2; exit 1; }
    done
done

# median [min-max] of a column of numbers
stats() { sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    printf "%.3g [%.3g-%.3g]", m, v[1], v[NR] }'; }
reference=${mode_list[0]%%=*}
echo "# load after $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds; ratios of per-round times to $reference"
for mode in "${mode_list[@]}"; do
    name=${mode%%=*}
    line=$(printf '%-16s' "$name")
    for f in "$out/$name".*; do
        size=${f##*.}
        ratio=$(join "$f" "$out/$reference.$size" | awk '{ print $2 / $3 }' | stats)
        line+="  $size B $(awk '{ print $2 }' "$f" | stats) us ($ratio x)"
    done
    echo "$line"
done
