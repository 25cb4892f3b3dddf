#!/usr/bin/env bash
# Start-up cost of the Slurm backend (docs/slurm.md, "Start-up"): the demo job (2 hosts x 2 containers,
# 4 ranks, ffcheck_allpairs) through the local backend and through --backend slurm, interleaved, N rounds.
# Prints per round: backend, total wall time of ffrun, the cluster's set-up (namespaces, containers,
# agents), the embedded Slurm's boot (munged, slurmctld, slurmds until every node is idle), and the
# launcher's (mpirun's or srun's) time; then medians. Run as root on an otherwise idle machine if you can; the load
# average is printed with every round.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
lscpu | grep -E '^Model name' || true
printf 'round backend total_s setup_s slurm_boot_s launcher_s load1\n'
for round in $(seq 1 "$rounds"); do
  for backend in local slurm; do
    start=$(date +%s.%N)
    bin/ffrun run jobs/demo.yaml --backend "$backend" >"$out/stdout" 2>"$out/stderr" || { echo "round $round $backend failed:"; tail -20 "$out/stderr"; exit 1; }
    end=$(date +%s.%N)
    boot=$(grep -oP 'booting an embedded Slurm.*done in \K[0-9.]+' "$out/stderr" || echo 0)
    launcher=$(grep -oP 'exited with code 0: mpirun \K[0-9.]+' "$out/stderr")
    setup=$(grep -oP 'set-up \K[0-9.]+' "$out/stderr")
    load=$(cut -d' ' -f1 /proc/loadavg)
    printf '%s %s %.2f %s %s %s %s\n' "$round" "$backend" "$(echo "$end - $start" | bc)" "$setup" "$boot" "$launcher" "$load" | tee -a "$out/rows"
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for backend in local slurm; do
  for column in 3 4 5 6; do
    name=$(echo "total_s setup_s slurm_boot_s launcher_s" | cut -d' ' -f$((column - 2)))
    printf 'median %s %s: %s\n' "$backend" "$name" "$(awk -v b="$backend" -v c="$column" '$2 == b {print $c}' "$out/rows" | median)"
  done
done
