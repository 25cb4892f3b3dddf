#!/usr/bin/env bash
# The socket-level ceiling under path `h`, without MPI: bench/handoff/rawstream.c between two simulated
# hosts (network namespaces joined by a veth underlay) and between two containers over a VXLAN overlay on
# that underlay, the two processes pinned to cores 0 and 1 like ffrun's ranks. For every underlay MTU, round,
# path and receive mode (spin: non-blocking recv loop; block: recv(MSG_WAITALL); hybrid: spin then poll) one
# run, interleaved; medians over the rounds with every round's value.
#
#   ROUNDS=3 MTUS="1500 9000" CONTAINER_MTUS="" PATHS="host overlay" RECV="spin block hybrid" bench/handoff/raw.sh
#
# The overlay's MTU is the underlay's minus 50 unless CONTAINER_MTUS gives one per underlay MTU (e.g.
# MTUS="9000" CONTAINER_MTUS="1450": Docker's overlay default on a jumbo-frame host network). Root.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
MTUS=${MTUS:-1500 9000}
read -ra CONTAINER_MTU_LIST <<<"${CONTAINER_MTUS:-}"
PATHS=${PATHS:-host overlay}
RECV=${RECV:-spin block hybrid}
PREFIX="ffhbw$$"
work=$(mktemp -d /tmp/ffbench-raw.XXXXXX)
NETNS=()
PIDS=()
cleanup() {
    local pid ns
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rawstream=build/bin/rawstream
[ -x "$rawstream" ] || { echo "raw.sh: $rawstream is not built: run scripts/setup.sh" >&2; exit 1; }

topology() { # <underlay mtu> <container mtu>
    local mtu=$1 cmtu=$2 i
    for i in 0 1; do
        ip netns add "$PREFIX-h$i" && NETNS+=("$PREFIX-h$i")
        ip netns add "$PREFIX-o$i" && NETNS+=("$PREFIX-o$i")
    done
    ip link add ul0 netns "$PREFIX-h0" mtu "$mtu" type veth peer name ul0 netns "$PREFIX-h1" mtu "$mtu"
    for i in 0 1; do
        local h="$PREFIX-h$i" o="$PREFIX-o$i"
        ip -n "$h" addr add "10.249.0.$((i + 1))/24" dev ul0
        ip -n "$h" link set ul0 up
        ip -n "$h" link set lo up
        ip -n "$h" link add br0 type bridge
        ip -n "$h" link add vxlan0 mtu "$cmtu" type vxlan id 42 local "10.249.0.$((i + 1))" remote "10.249.0.$((2 - i))" dstport 4789 dev ul0
        ip -n "$h" link set vxlan0 master br0 up
        ip -n "$h" link set br0 up
        ip link add eth0 netns "$o" mtu "$cmtu" type veth peer name "c$i" netns "$h" mtu "$cmtu"
        ip -n "$h" link set "c$i" master br0 up
        ip -n "$o" addr add "10.248.0.$((i + 1))/24" dev eth0
        ip -n "$o" link set eth0 up
        ip -n "$o" link set lo up
    done
}

teardown() {
    local ns
    for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    NETNS=()
}

one() { # <path> <recv> -> "lat bw cwnd rtt retrans mss"
    local ns ip
    case "$1" in
    host) ns=$PREFIX-h; ip=10.249.0.2 ;;
    overlay) ns=$PREFIX-o; ip=10.248.0.2 ;;
    esac
    ip netns exec "${ns}1" taskset -c 1 "$rawstream" --serve "$ip:7601" --recv "$2" 2>>"$work/usage" &
    PIDS+=($!)
    ip netns exec "${ns}0" taskset -c 0 "$rawstream" --call "$ip:7601" --recv "$2" 2>>"$work/usage" |
        sed -E 's/[a-z_A-Z]+=//g'
    wait "${PIDS[-1]}"
    unset 'PIDS[-1]'
}

echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) vCPUs; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
index=0
for mtu in $MTUS; do
    cmtu=${CONTAINER_MTU_LIST[$index]:-$((mtu - 50))}
    index=$((index + 1))
    topology "$mtu" "$cmtu"
    echo "# underlay $mtu, overlay $cmtu; offloads of ul0 in host 0: $(ip netns exec "$PREFIX-h0" ethtool -k ul0 2>/dev/null |
        grep -E '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):' | tr -s ' \n' ' ')" >&2
    for round in $(seq "$ROUNDS"); do
        for path in $PATHS; do
            for recv in $RECV; do
                read -r lat bw cwnd rtt retrans mss < <(one "$path" "$recv")
                echo "$mtu/$cmtu $path $recv $lat $bw cwnd=$cwnd rtt=$rtt retrans=$retrans mss=$mss" | tee -a "$work/results" >&2
                tail -2 "$work/usage" | sed 's/^/    /' >&2
            done
        done
    done
    teardown
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# mtu(underlay/overlay) path recv: latency us median [rounds] | 4 MiB MB/s median [rounds]"
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
awk '{ key = $1 " " $2 " " $3; lat[key] = lat[key] " " $4; bw[key] = bw[key] " " $5; if (!(key in order)) order[key] = ++n }
     END { for (key in order) print order[key] "|" key "|" lat[key] "|" bw[key] }' "$work/results" | sort -n | cut -d'|' -f2- |
while IFS='|' read -r key lats bws; do
    printf '%s: %s [%s] | %s [%s]\n' "$key" "$(median <<<"$lats")" "$(sed 's/^ *//' <<<"$lats")" "$(median <<<"$bws")" "$(sed 's/^ *//' <<<"$bws")"
done
