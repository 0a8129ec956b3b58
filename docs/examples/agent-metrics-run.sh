#!/usr/bin/env bash
# The real run of docs/agent.md, "Metrics": `aksnet agent` in a network namespace of its own,
# real aksnet-cni calls (kubenet on a /29: 5 pod addresses) logging to a temp file, then
# curl /metrics. As root, after `cargo build -p aksnet -p aksnet-cni`; B=dir of the binaries.
# Everything it creates (namespaces, bridge, nft tables, files) is removed on exit.
set -u
B=${B:-$(cd "$(dirname "$0")/../.." && pwd)/target/debug}
P=aksK$(( $$ % 1000 ))
NS=${P}n; POD1=${P}p1; POD2=${P}p2; POD3=${P}p3
D=$(mktemp -d)
cleanup() {
  [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null; wait 2>/dev/null
  for n in $POD1 $POD2 $POD3 $NS; do ip netns del $n 2>/dev/null; done
  rm -rf "$D"
}
trap cleanup EXIT
mkdir -p $D/conf $D/data $D/policy $D/log
ip netns add $NS; ip -n $NS link set lo up
for p in $POD1 $POD2 $POD3; do ip netns add $p; done
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
  --cni-log-file $D/log/aksnet-cni.log --metrics-addr 127.0.0.1:9465 2>$D/agent.err &
AGENT=$!
sleep 2
cni() { # verb pod container
  CNI_COMMAND=$1 CNI_CONTAINERID=$3 CNI_NETNS=/var/run/netns/$2 CNI_IFNAME=eth0 CNI_PATH=$B \
  CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=$2" \
  ip netns exec $NS $B/aksnet-cni < $D/net.json > /dev/null 2>&1; echo "$1 $2 -> $?"
}
cni ADD $POD1 c1; cni ADD $POD2 c2; cni CHECK $POD1 c1; cni ADD $POD3 c3
cni ADD $POD1 c1          # duplicate ADD of a live attachment: refused
cni DEL $POD2 c2; cni DEL $POD2 c2
# /29: .1 is the gateway, 5 pod addresses; fill them, then one more is refused
for i in 4 5 6 7; do ip netns add ${P}q$i; cni ADD ${P}q$i q$i; done
for i in 4 5 6 7; do cni DEL ${P}q$i q$i; ip netns del ${P}q$i; done
cni DEL $POD1 c1; cni DEL $POD3 c3
sleep 1
ip netns exec $NS curl -s http://127.0.0.1:9465/metrics 
ip netns exec $NS curl -s http://127.0.0.1:9465/healthz
grep -F "\"error\"" $D/log/aksnet-cni.log
