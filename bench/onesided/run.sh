#!/usr/bin/env bash
# Issue 9's one-sided targets with the project's own programs (no IMB needed; docs/onesided.md, "Cost"),
# interleaved round by round:
#   vader  2 ranks on the bare host (plain mpirun, one namespace), btl self,vader: osc rdma over vader (CMA)
#   ff-2c  one rank in each of 2 containers of one host, ffrun's default: osc rdma over the freeflow BTL
#   ffbench_rma (bench/onesided/rma_bench.c): put, get, accumulate at 8 B, 64 KiB, 4 MiB; latency (one
#   operation + MPI_Win_flush) and bandwidth (32 operations per flush); and ffbench_shmwin_pingpong: the
#   MPI_Win_allocate_shared load/store round trip, 2 containers (one MPI node) vs one namespace.
# Prints the median [min-max] over the rounds, the ratio ff-2c / vader (for times: vader / ff-2c, so that
# higher is better everywhere) and the verdict against issue 9's 0.8x. Needs root and scripts/setup.sh.
#   bench/onesided/run.sh [rounds] [outdir]          SUMMARY_ONLY=1: summarise an existing outdir
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
out=${2:-$(mktemp -d /tmp/onesided-run.XXXXXX)}
rma=build/bin/ffbench_rma
pingpong=build/bin/ffbench_shmwin_pingpong
for program in "$rma" "$pingpong"; do [ -x "$program" ] || { echo "run scripts/setup.sh first ($program is missing)" >&2; exit 2; }; done
mkdir -p "$out"
modes=(vader ff-2c)
run() { # mode round
  local mode=$1 round=$2
  case $mode in
    vader)
      # plain mpirun on the host (issue 9: "vader's bandwidth on the bare host"): under ffrun vader runs
      # with btl_vader_single_copy_mechanism none (host launches), has no RDMA then, and osc falls to pt2pt
      timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -n 2 --mca pml ob1 --mca btl self,vader \
        --mca osc ^ucx "$rma" >"$out/rma.vader.$round.log" 2>&1 || true
      timeout 120 mpirun --allow-run-as-root --oversubscribe --bind-to none -n 2 --mca pml ob1 --mca btl self,vader \
        "$pingpong" --rounds 1 --iterations 20000 >"$out/shmwin.vader.$round.log" 2>&1 || true ;;
    ff-2c)
      bin/ffrun -n 2 --containers-per-host 2 --slots-per-container 1 --timeout 300 -- "$rma" >"$out/rma.ff-2c.$round.log" 2>&1 || true
      bin/ffrun -n 2 --containers-per-host 2 --slots-per-container 1 --timeout 120 -- "$pingpong" --rounds 1 --iterations 20000 >"$out/shmwin.ff-2c.$round.log" 2>&1 || true ;;
  esac
}
if [ "${SUMMARY_ONLY:-}" != 1 ]; then
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$out/load"
  for round in $(seq 1 "$rounds"); do
    # alternate which mode goes first, so that neither always meets the same neighbour load
    if ((round % 2)); then order=("${modes[@]}"); else order=(ff-2c vader); fi
    for mode in "${order[@]}"; do run "$mode" "$round"; done
  done
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load"
fi
# "median min max" of the numbers on stdin
stats() { sort -g | awk '{ a[NR] = $1 } END { if (!NR) { print "- - -"; exit } print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR] }'; }
rma_value() { sed -n "s/.*rma op=$2 bytes=$3 mode=$4 value=\([0-9.]*\) .*/\1/p" "$1" | head -1; }
shmwin_value() { sed -n 's/.*median of 1 round medians \([0-9]*\) ns.*/\1/p' "$1" | head -1; }
row() { # label unit higher-is-better(1|0) <vader values> -- <ff values>
  local label=$1 unit=$2 higher=$3; shift 3
  local v=() f=() side=v
  for x in "$@"; do if [ "$x" = -- ]; then side=f; elif [ $side = v ]; then v+=("$x"); else f+=("$x"); fi; done
  read -r vm vl vh < <(printf '%s\n' "${v[@]}" | grep . | stats)
  read -r fm fl fh < <(printf '%s\n' "${f[@]}" | grep . | stats)
  local ratio verdict
  ratio=$(awk -v v="$vm" -v f="$fm" -v h="$higher" 'BEGIN { if (v == "-" || f == "-" || v + 0 == 0 || f + 0 == 0) { print "-"; exit } printf "%.2f", (h ? f / v : v / f) }')
  verdict=$(awk -v r="$ratio" 'BEGIN { if (r == "-") print "not measured"; else print (r + 0 >= 0.8 ? "met" : "NOT met") }')
  printf '| %s | %s %s [%s-%s] | %s %s [%s-%s] | %s | %s |\n' "$label" "$vm" "$unit" "$vl" "$vh" "$fm" "$unit" "$fl" "$fh" "$ratio" "$verdict"
}
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; $rounds interleaved rounds; $(tr '\n' ' ' <"$out/load" 2>/dev/null); logs in $out"
echo "| measurement | vader (1 namespace) | freeflow (2 containers) | ff / vader (higher is better) | >= 0.8x |"
echo "|---|---|---|---|---|"
for op in put get acc; do
  for bytes in 8 65536 4194304; do
    for mode in latency bandwidth; do
      [ "$bytes" = 8 ] && [ "$mode" = bandwidth ] && continue
      [ "$bytes" != 8 ] && [ "$mode" = latency ] && [ "$bytes" != 65536 ] && continue
      unit=MB/s higher=1
      [ "$mode" = latency ] && unit=us higher=0
      row "$op $bytes B $mode" "$unit" "$higher" \
        $(for f in "$out"/rma.vader.*.log; do rma_value "$f" "$op" "$bytes" "$mode"; done) -- \
        $(for f in "$out"/rma.ff-2c.*.log; do rma_value "$f" "$op" "$bytes" "$mode"; done)
    done
  done
done
row "MPI_Win_allocate_shared load/store round trip" ns 0 \
  $(for f in "$out"/shmwin.vader.*.log; do shmwin_value "$f"; done) -- \
  $(for f in "$out"/shmwin.ff-2c.*.log; do shmwin_value "$f"; done)
