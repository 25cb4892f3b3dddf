#!/usr/bin/env bash
# The load/store round trip through an MPI_Win_allocate_shared window (ffbench_shmwin_pingpong):
#   A: 2 ranks in 2 containers of one host under ffrun (host launch: one orted, one MPI node)
#   B: 2 ranks in one namespace, plain mpirun with vader (the target: "vader's speed")
# interleaved A, B, A, B, ... REPS times; prints every run's median and the median of the medians.
#   bench/nodeshare/run.sh [REPS] [ITERATIONS]     (run from the repository root, as root, after setup.sh)
set -euo pipefail
reps=${1:-7}
iterations=${2:-20000}
program=build/bin/ffbench_shmwin_pingpong
[ -x "$program" ] || { echo "run scripts/setup.sh first ($program is missing)" >&2; exit 2; }
lscpu | sed -n 's/^Model name: *//p' | head -1 | sed 's/^/CPU: /'
echo "CPUs: $(nproc); $reps interleaved repetitions of $iterations round trips each (1 round per run)"
a=() b=()
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for ((r = 1; r <= reps; r++)); do
  line=$(bin/ffrun -n 2 --hosts 1 --containers-per-host 2 --timeout 120 -- "$program" --rounds 1 --iterations "$iterations" 2>/dev/null |
    sed -n 's/.*median of 1 round medians \([0-9]*\) ns.*/\1/p')
  [ -n "$line" ] || { echo "run $r: ffrun produced no result" >&2; exit 1; }
  a+=("$line")
  line=$(mpirun --allow-run-as-root -n 2 --bind-to core --mca pml ob1 --mca btl self,vader "$program" --rounds 1 --iterations "$iterations" 2>/dev/null |
    sed -n 's/.*median of 1 round medians \([0-9]*\) ns.*/\1/p')
  [ -n "$line" ] || { echo "run $r: mpirun produced no result" >&2; exit 1; }
  b+=("$line")
  echo "repetition $r: 2 containers (ffrun) ${a[-1]} ns, 1 namespace (vader) ${b[-1]} ns"
done
echo "median round trip: 2 containers of one host ${a[*]:+$(median "${a[@]}")} ns; 2 ranks in one namespace $(median "${b[@]}") ns"
