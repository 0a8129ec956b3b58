#!/usr/bin/env bash
# Installs the Debian 12 packages aksnet's demo and tests need. Idempotent; run as root.
set -euo pipefail
pkgs=(
  iproute2 nftables iputils-ping procps      # kernel plumbing the tests and the lab drive
  containernetworking-plugins                # reference bridge/ptp/host-local (benchmarks, chaining)
  podman buildah runc busybox-static         # a real runtime (podman, CNI backend)
  containerd                                 # a second real runtime (ctr run --cni)
  golang-go golang-github-appc-cni-dev       # the libcni driver in shared/bench
  etcd-server etcd-client                    # the cluster store's etcd backend
  protobuf-compiler                          # protoc: etcd-client compiles etcd's .proto files (feature etcd)
  libprotobuf-dev                            # google/protobuf/*.proto, the well-known types protoc imports
  python3
  iperf3                                     # NetworkPolicy benchmark: pod-to-pod throughput with and without policies
)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
