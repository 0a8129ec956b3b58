#!/usr/bin/env bash
# Where one ADD and one DEL spend their time (issue 7: "where a target is
# missed, include the profile that shows why"). For each of aksnet-cni
# (kubenet, nodesubnet) and the reference bridge / ptp (+ host-local), in a
# scratch node netns `aksntprof-node` with one pod netns `aksntprof-pod`:
#   - strace -f -T -tt of one ADD and one DEL (every syscall with its duration),
#     summarised as the slowest syscalls and the total per syscall (strace -c);
#   - a separate timing of the same DEL without strace and of `ip link del`
#     of a plain veth pair (the kernel's own cost of deleting a veth).
# Everything is deleted at the end. Run as root from the repository root after
# `cargo build --release -p aksnet-cni`. Output goes to stdout; raw traces to
# $OUT (default /tmp/aksnt-profile).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v strace >/dev/null || { echo "strace missing: apt-get install strace" >&2; exit 1; }
BIN=${AKSNET_CNI_DIR:-$PWD/dist}
[ -x "$BIN/aksnet-cni" ] || { echo "$BIN/aksnet-cni missing: ./scripts/build-release.sh" >&2; exit 1; }
OUT=${OUT:-/tmp/aksnt-profile}
NODE=aksntprof-node
POD=aksntprof-pod
rm -rf "$OUT"; mkdir -p "$OUT"

cleanup() {
    ip netns del "$POD" 2>/dev/null || true
    ip netns del "$NODE" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$NODE"
ip netns add "$POD"
ip -n "$NODE" link set lo up
ip -n "$NODE" link add aksntup0 type veth peer name aksntup1
ip -n "$NODE" link set aksntup0 up
ip -n "$NODE" link set aksntup1 up
ip -n "$NODE" addr add 192.168.254.2/24 dev aksntup0
ip -n "$NODE" route add default via 192.168.254.1 dev aksntup0

in_node() { ip netns exec "$NODE" "$@"; }

# conf NAME: the request configuration on stdin (one plugin, as a runtime sends it).
conf() {
    local d="$OUT/data-$1"
    case $1 in
        kubenet) echo "{\"cniVersion\":\"1.1.0\",\"name\":\"aksntprof\",\"type\":\"aksnet-cni\",\"mode\":\"kubenet\",\"bridge\":\"aksntprofbr\",\"dataDir\":\"$d\",\"ipam\":{\"ranges\":[[{\"subnet\":\"10.99.0.0/22\"}]]}}" ;;
        nodesubnet) echo "{\"cniVersion\":\"1.1.0\",\"name\":\"aksntprof\",\"type\":\"aksnet-cni\",\"mode\":\"nodesubnet\",\"dataDir\":\"$d\"}" ;;
        bridge) echo "{\"cniVersion\":\"1.0.0\",\"name\":\"aksntprof\",\"type\":\"bridge\",\"bridge\":\"aksntprofbr\",\"isGateway\":true,\"ipam\":{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":\"10.99.0.0/22\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dataDir\":\"$d\"}}" ;;
        ptp) echo "{\"cniVersion\":\"1.0.0\",\"name\":\"aksntprof\",\"type\":\"ptp\",\"ipam\":{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":\"10.98.0.0/22\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dataDir\":\"$d\"}}" ;;
    esac
}

plugin() {
    case $1 in kubenet|nodesubnet) echo "$BIN/aksnet-cni" ;; *) echo "/usr/lib/cni/$1" ;; esac
}

# call NAME VERB CID [wrapper...]: run one plugin call in the node netns.
call() {
    local name=$1 verb=$2 cid=$3; shift 3
    conf "$name" | in_node env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND="$verb" \
        CNI_CONTAINERID="$cid" CNI_IFNAME=eth0 CNI_NETNS=/run/netns/$POD CNI_PATH=/usr/lib/cni \
        "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=prof;K8S_POD_NAME=$cid" \
        "$@" "$(plugin "$name")" >/dev/null
}

ms_since() { echo "scale=2; ($(date +%s%N) - $1) / 1000000" | bc; }

for name in kubenet nodesubnet bridge ptp; do
    if [ "$name" = nodesubnet ]; then
        mkdir -p "$OUT/data-nodesubnet"
        ./target/debug/aksnet node join --node aksntprof --subnet 10.98.0.0/22 --subnet-name aksntprof \
            --max-pods 30 --store "$OUT/store" --data-dir "$OUT/data-nodesubnet" >/dev/null
    fi
    # Warm up (bridge creation, page cache), then trace one ADD and one DEL.
    call "$name" ADD warm; call "$name" DEL warm
    call "$name" ADD traced strace -f -T -tt -o "$OUT/$name-ADD.strace"
    call "$name" DEL traced strace -f -T -tt -o "$OUT/$name-DEL.strace"
    call "$name" ADD counted strace -f -c -w -o "$OUT/$name-ADD.count"
    call "$name" DEL counted strace -f -c -w -o "$OUT/$name-DEL.count"
    for verb in ADD DEL; do
        echo "== $name $verb: slowest syscalls (strace -f -T: seconds, pid, call)"
        grep -E '<[0-9.]+>$' "$OUT/$name-$verb.strace" \
            | sed -E 's/^([0-9]+) +([0-9:.]+) (.{0,100}).*<([0-9.]+)>$/\4 \1 \3/' \
            | sort -rn | head -5 | sed 's/^/   /' || true
        echo "   -- wall time per syscall (strace -f -c -w), top 5:"
        sed -n '3,7p' "$OUT/$name-$verb.count" | sed 's/^/   /' || true
    done
    # Untraced timings, 10 each.
    add_t=(); del_t=()
    for i in $(seq 10); do
        t=$(date +%s%N); call "$name" ADD "t$i"; add_t+=("$(ms_since "$t")")
        t=$(date +%s%N); call "$name" DEL "t$i"; del_t+=("$(ms_since "$t")")
    done
    echo "== $name untraced (ms, incl. ip netns exec + env): ADD ${add_t[*]}"
    echo "== $name untraced (ms, incl. ip netns exec + env): DEL ${del_t[*]}"
    ip -n "$NODE" link del aksntprofbr 2>/dev/null || true
done

echo "== kernel: ip link del of a plain veth pair (ms), 10 times"
vt=()
for i in $(seq 10); do
    ip -n "$NODE" link add aksntpv0 type veth peer name aksntpv1 netns "$POD"
    t=$(date +%s%N); ip -n "$NODE" link del aksntpv0; vt+=("$(ms_since "$t")")
done
echo "   ${vt[*]}"
echo "== baseline: ip netns exec + env + /bin/true (ms), 10 times"
bt=()
for i in $(seq 10); do t=$(date +%s%N); in_node env -i /bin/true; bt+=("$(ms_since "$t")"); done
echo "   ${bt[*]}"
echo "raw traces in $OUT"
