#!/usr/bin/env bash
# One-sided put/get between 2 ranks, IMB-RMA Unidir_put/Unidir_get, interleaved rounds (docs/onesided.md):
#   vader   both ranks in one container, btl self,vader: osc rdma over vader (CMA single copy)
#   ff-1c   both ranks in one container, ffrun's default: osc rdma over the freeflow BTL's RDMA module
#   ff-2c   one rank in each of 2 containers of one host: osc rdma over freeflow (target-side, over the rings)
# Prints, per mode, the median over the rounds of: 8 B put and get latency (NON-AGGREGATE: put + flush per
# message, usec) and 4 MiB put and get bandwidth (AGGREGATE, MB/s). Needs root and IMB-RMA (IMB_RMA=...).
#   bench/onesided/imb-rma.sh [rounds] [outdir]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
out=${2:-$(mktemp -d /tmp/onesided-bench.XXXXXX)}
imb=${IMB_RMA:-/tmp/imb/IMB-RMA}
mkdir -p "$out"
# three sizes only (-msglen): latency, one request, many requests; -time 10 so that 4 MiB is not skipped
# (next to IMB-RMA: ffrun mounts the program's directory into the containers, not the rest of /tmp)
msglen="$(dirname "$imb")/onesided-msglen"
printf '8\n65536\n4194304\n' >"$msglen"
args=(-msglen "$msglen" -iter 1000 -time 10 Unidir_put Unidir_get)
run() { # mode round
  local mode=$1 log="$out/$1.$2.log"
  case $mode in
    vader) bin/ffrun -n 2 --containers-per-host 1 --slots-per-container 2 --mca btl self,vader -- "$imb" "${args[@]}" >"$log" 2>&1 ;;
    ff-1c) bin/ffrun -n 2 --containers-per-host 1 --slots-per-container 2 -- "$imb" "${args[@]}" >"$log" 2>&1 ;;
    ff-2c) bin/ffrun -n 2 --containers-per-host 2 --slots-per-container 1 -- "$imb" "${args[@]}" >"$log" 2>&1 ;;
  esac
}
[ "${SUMMARY_ONLY:-}" = 1 ] || for round in $(seq 1 "$rounds"); do
  for mode in vader ff-1c ff-2c; do run "$mode" "$round"; done
done
# value <log> <benchmark> <mode NON-AGGREGATE|AGGREGATE> <bytes> <column 3=t[usec] 4=Mbytes/sec>
value() {
  awk -v bench="$2" -v mode="$3" -v bytes="$4" -v col="$5" '
    { sub(/^\[rank [0-9]+\] */, "") }
    /Benchmarking/ { inb = ($0 ~ ("Benchmarking " bench " *$")) }
    /MODE:/ { m = $NF }
    inb && m == mode && $1 == bytes && NF >= 4 { print $col; exit }' "$1"
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; $rounds interleaved rounds; logs in $out"
printf '%-6s %14s %14s %16s %16s\n' mode 'put 8B us' 'get 8B us' 'put 4MiB MB/s' 'get 4MiB MB/s'
for mode in vader ff-1c ff-2c; do
  cols=()
  for spec in "Unidir_put NON-AGGREGATE 8 3" "Unidir_get NON-AGGREGATE 8 3" "Unidir_put AGGREGATE 4194304 4" "Unidir_get AGGREGATE 4194304 4"; do
    set -- $spec
    cols+=("$(for f in "$out/$mode".*.log; do value "$f" "$1" "$2" "$3" "$4"; done | median)")
  done
  printf '%-6s %14s %14s %16s %16s\n' "$mode" "${cols[@]}"
done
