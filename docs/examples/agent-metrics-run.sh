#!/usr/bin/env bash
# The real runs of docs/agent.md, "Metrics": `aksnet agent` in a network namespace of its
# own, real aksnet-cni calls on pods in namespaces this script creates, then curl /metrics
# on loopback. As root, after `cargo build -p aksnet -p aksnet-cni`; B=dir of the binaries.
#   kubenet:   a /29 (5 pod addresses), the plugin logging to a temp file, NetworkPolicy
#              from a manifest directory that is broken once and fixed;
#   podsubnet: `aksnet node join --pod-subnet` (dynamic: one /28 block), pods added.
# Usage: agent-metrics-run.sh [kubenet|podsubnet]   (default kubenet)
# Everything it creates (namespaces, bridge, nft tables, files) is removed on exit.
set -u
MODEL=${1:-kubenet}
B=${B:-$(cd "$(dirname "$0")/../.." && pwd)/target/debug}
P=${P:-aksK$(( $$ % 1000 ))}
NS=${P}n; POD1=${P}p1; POD2=${P}p2; POD3=${P}p3
D=$(mktemp -d)
cleanup() {
  [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null; wait 2>/dev/null
  for n in $(ip netns list | awk '{print $1}' | grep "^$P"); do ip netns del "$n"; done
  rm -rf "$D"
}
trap cleanup EXIT
mkdir -p $D/conf $D/data $D/policy $D/log
ip netns add $NS; ip -n $NS link set lo up
for p in $POD1 $POD2 $POD3; do ip netns add $p; done
cni() { # verb pod container
  CNI_COMMAND=$1 CNI_CONTAINERID=$3 CNI_NETNS=/var/run/netns/$2 CNI_IFNAME=eth0 CNI_PATH=$B \
  CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=$2" \
  ip netns exec $NS $B/aksnet-cni < $D/net.json > /dev/null 2>&1; echo "$1 $2 -> $?"
}
scrape() {
  sleep 1
  echo "\$ curl -s http://127.0.0.1:9465/metrics"
  ip netns exec $NS curl -s http://127.0.0.1:9465/metrics
  ip netns exec $NS curl -s http://127.0.0.1:9465/healthz
}

if [ "$MODEL" = podsubnet ]; then
  # The node's uplink: its address in the node subnet and the route to the subnet's gateway.
  ip -n $NS link add ${P}up type veth peer name ${P}uq; ip -n $NS link set ${P}up up
  ip -n $NS addr add 10.240.0.4/24 dev ${P}up; ip -n $NS route add default via 10.240.0.1
  $B/aksnet node join --node node-0 --subnet 10.240.0.0/24 --pod-subnet 10.241.0.0/24 \
    --pod-subnet-name pods --max-pods 30 --store $D/store --data-dir $D/data
  cat > $D/net.json <<J
{"cniVersion":"1.0.0","name":"azure","type":"aksnet-cni","mode":"podsubnet",
 "dataDir":"$D/data","logFile":"$D/log/aksnet-cni.log"}
J
  ip netns exec $NS $B/aksnet agent --mode nodesubnet --vnet-cidr 10.240.0.0/15 \
    --config-dir $D/conf --data-dir $D/data --table ${P}snat \
    --cni-log-file $D/log/aksnet-cni.log --metrics-addr 127.0.0.1:9465 2>$D/agent.err &
  AGENT=$!
  sleep 2
  cni ADD $POD1 c1; cni ADD $POD2 c2; cni ADD $POD3 c3; cni DEL $POD2 c2
  scrape
  cni DEL $POD1 c1; cni DEL $POD3 c3
  exit 0
fi

cat > $D/net.json <<J
{"cniVersion":"1.0.0","name":"kubenet","type":"aksnet-cni","mode":"kubenet","bridge":"${P}br","isGateway":true,
 "dataDir":"$D/data","logFile":"$D/log/aksnet-cni.log",
 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/29"}]],"routes":[{"dst":"0.0.0.0/0"}]}}
J
cat > $D/policy/ns.yaml <<Y
apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {kubernetes.io/metadata.name: default}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: default}
spec: {podSelector: {}, policyTypes: [Ingress]}
Y
ip netns exec $NS $B/aksnet agent --mode kubenet --cluster-pod-cidr 10.244.0.0/16 \
  --config-dir $D/conf --data-dir $D/data --table ${P}snat --policy-table ${P}pol \
  --policy-dir $D/policy --node-name node-0 --policy-pod-range 10.244.1.0/29 \
  --cni-conf $D/net.json \
  --cni-log-file $D/log/aksnet-cni.log --metrics-addr 127.0.0.1:9465 2>$D/agent.err &
AGENT=$!
sleep 2
cni ADD $POD1 c1; cni ADD $POD2 c2; cni CHECK $POD1 c1; cni ADD $POD3 c3
cni ADD $POD1 c1          # duplicate ADD of a live attachment: refused
cni DEL $POD2 c2; cni DEL $POD2 c2
# /29: .1 is the gateway, 5 pod addresses; fill them, then one more is refused
for i in 4 5 6 7; do ip netns add ${P}q$i; cni ADD ${P}q$i q$i; done
for i in 4 5 6 7; do cni DEL ${P}q$i q$i; ip netns del ${P}q$i; done
# A manifest that does not parse (the policy in force stays), then fixed: one error, one update.
printf 'kind: Pod\nmetadata: [broken]\n' > $D/policy/pod.yaml; sleep 1
cat > $D/policy/pod.yaml <<Y
apiVersion: v1
kind: Pod
metadata: {name: $POD1, namespace: default, labels: {app: web}}
spec: {nodeName: node-0, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.244.1.2, podIPs: [{ip: 10.244.1.2}]}
Y
# Two pods still running when scraped (c1, c3).
scrape
echo "\$ cat aksnet-cni.log"
cat $D/log/aksnet-cni.log
cni DEL $POD1 c1; cni DEL $POD3 c3
