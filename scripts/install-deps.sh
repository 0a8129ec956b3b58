#!/usr/bin/env bash
# Installs the Debian 12 packages aksnet's demo and tests need. Idempotent; run as root.
# `install-deps.sh --list` prints the package names, one a line (scripts/preflight.sh
# checks that every file the build and the tests use comes from one of them).
set -euo pipefail
pkgs=(
  gcc libc6-dev                              # the linker and C runtime rustc links with; cc for -sys crates
  iproute2 nftables iputils-ping procps      # kernel plumbing the tests and the lab drive
  containernetworking-plugins                # reference bridge/ptp/host-local (benchmarks, chaining)
  podman buildah runc busybox-static         # a real runtime (podman, CNI backend)
  containerd                                 # a second real runtime (ctr run --cni)
  golang-go golang-github-appc-cni-dev       # the libcni driver in bench/
  etcd-server etcd-client                    # the cluster store's etcd backend
  protobuf-compiler                          # protoc: etcd-client compiles etcd's .proto files (feature etcd)
  libprotobuf-dev                            # google/protobuf/*.proto, the well-known types protoc imports
  openssl                                    # the etcd TLS test generates a CA and certificates
  python3 python3-minimal                    # bench/bench.py
  iperf3                                     # NetworkPolicy benchmark: pod-to-pod throughput with and without policies
)
if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The Rust standard library for musl, which dist/aksnet-cni links against
# (scripts/build-release.sh: a static musl binary starts about 1 ms faster than a static
# glibc one on this kind of VM, docs/benchmarks.md). rustup's component, not a Debian
# package; without rustup the release build falls back to a static glibc plugin.
musl="$(uname -m)-unknown-linux-musl"
if command -v rustup >/dev/null; then
  if ! rustup target list --installed | grep -qx "$musl"; then
    rustup target add "$musl" ||
      echo "install-deps: rustup target add $musl failed; dist/aksnet-cni will link glibc" >&2
  fi
else
  echo "install-deps: no rustup, so no $musl target; dist/aksnet-cni will link glibc" >&2
fi
