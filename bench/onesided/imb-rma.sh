#!/usr/bin/env bash
# MPI one-sided bandwidth and latency between 2 ranks, IMB-RMA unmodified, interleaved rounds
# (docs/onesided.md):
#   vader     both ranks on the bare host (plain mpirun, one namespace), btl self,vader: osc rdma over vader (CMA)
#   ff-2c     one rank in each of 2 containers of one host, ffrun's default: osc rdma over the freeflow
#             BTL's RDMA module, single copy through the shared directory
#   ff-2c-tx  the same with btl_freeflow_rdma_single_copy 0: every operation executed by the target
# Prints per benchmark (Unidir_put, Unidir_get, Accumulate), aggregation mode and size the median
# [min-max] over the rounds of MB/s (t[usec] for 8 B), the ratio ff-2c / vader (for 8 B: vader's time /
# ff-2c's) and whether issue 9's target (>= 0.8x vader) is met. Needs root and IMB-RMA (IMB_RMA=...).
#   bench/onesided/imb-rma.sh [rounds] [outdir]        SUMMARY_ONLY=1: summarise an existing outdir
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
out=${2:-$(mktemp -d /tmp/onesided-bench.XXXXXX)}
imb=${IMB_RMA:-/tmp/imb/IMB-RMA}
modes=(vader ff-2c ff-2c-tx)
benchmarks=(Unidir_put Unidir_get Accumulate)
mkdir -p "$out"
# three sizes only (-msglen): latency, one BTL fragment, many fragments; -time 10 so that 4 MiB is not
# skipped (next to IMB-RMA: ffrun mounts the program's directory into the containers, not the rest of /tmp)
msglen="$(dirname "$imb")/onesided-msglen"
printf '8\n65536\n4194304\n' >"$msglen"
args=(-msglen "$msglen" -iter 1000 -time 10 "${benchmarks[@]}")
run() { # mode round
  local mode=$1 log="$out/$1.$2.log"
  case $mode in
    # plain mpirun on the host: under ffrun vader runs with btl_vader_single_copy_mechanism none (host
    # launches), has no RDMA, and windows went to osc pt2pt (docs/onesided.md, "Cost")
    vader) mpirun --allow-run-as-root --oversubscribe --bind-to none -n 2 --mca pml ob1 --mca btl self,vader --mca osc ^ucx "$imb" "${args[@]}" >"$log" 2>&1 ;;
    ff-2c) bin/ffrun -n 2 --containers-per-host 2 --slots-per-container 1 -- "$imb" "${args[@]}" >"$log" 2>&1 ;;
    ff-2c-tx) bin/ffrun -n 2 --containers-per-host 2 --slots-per-container 1 --mca btl_freeflow_rdma_single_copy 0 -- "$imb" "${args[@]}" >"$log" 2>&1 ;;
  esac
}
if [ "${SUMMARY_ONLY:-}" != 1 ]; then
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >"$out/load"
  for round in $(seq 1 "$rounds"); do
    for mode in "${modes[@]}"; do run "$mode" "$round"; done
  done
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load"
fi
# value <log> <benchmark> <NON-AGGREGATE|AGGREGATE> <bytes> <column 3=t[usec] 4=Mbytes/sec>
value() {
  awk -v bench="$2" -v mode="$3" -v bytes="$4" -v col="$5" '
    { sub(/^\[rank [0-9]+\] */, "") }
    /Benchmarking/ { inb = ($0 ~ ("Benchmarking " bench " *$")) }
    /MODE:/ { m = $NF }
    inb && m == mode && $1 == bytes && NF >= 4 { print $col; exit }' "$1"
}
# "median min max" of the numbers on stdin
stats() { sort -g | awk '{ a[NR] = $1 } END { if (!NR) { print "- - -"; exit } print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR] }'; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; $rounds interleaved rounds; $(tr '\n' ' ' <"$out/load" 2>/dev/null); logs in $out"
printf '%-11s %-13s %8s  %-26s %-26s %-26s %7s %s\n' benchmark mode bytes 'vader' 'ff-2c' 'ff-2c-tx' 'ff/vdr' 'target >=0.8x'
for bench in "${benchmarks[@]}"; do
  for agg in NON-AGGREGATE AGGREGATE; do
    for bytes in 8 65536 4194304; do
      col=4 unit=MB/s
      [ "$bytes" = 8 ] && col=3 unit=us
      cells=() medians=()
      for mode in "${modes[@]}"; do
        read -r med lo hi < <(for f in "$out/$mode".*.log; do value "$f" "$bench" "$agg" "$bytes" "$col"; done | stats)
        cells+=("$(printf '%s %s [%s-%s]' "$med" "$unit" "$lo" "$hi")")
        medians+=("$med")
      done
      ratio=$(awk -v v="${medians[0]}" -v f="${medians[1]}" -v col="$col" 'BEGIN {
        if (v == "-" || f == "-" || v + 0 == 0 || f + 0 == 0) { print "-"; exit }
        printf "%.2f", (col == 3 ? v / f : f / v) }')
      verdict=$(awk -v r="$ratio" 'BEGIN { if (r == "-") print "-"; else print (r + 0 >= 0.8 ? "met" : "not met") }')
      printf '%-11s %-13s %8s  %-26s %-26s %-26s %7s %s\n' "$bench" "$agg" "$bytes" "${cells[@]}" "$ratio" "$verdict"
    done
  done
done
