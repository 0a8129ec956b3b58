#!/usr/bin/env bash
# Release binaries in dist/:
#   dist/aksnet-cni  statically linked, as CNI plugins usually ship (the Go reference
#                    plugins are static too). A runtime execs the plugin for every ADD,
#                    CHECK and DEL; the dynamic loader alone costs about 0.26 ms of each
#                    call here, a tenth of an ADD (docs/benchmarks.md). Against musl when
#                    its Rust target is installed (scripts/install-deps.sh adds it): glibc's
#                    static start-up probes the CPU (cpuid, which traps to the hypervisor
#                    on a VM) and sets up IRELATIVE functions, about 1 ms of every call
#                    here that musl does not spend (docs/benchmarks.md). Not
#                    position-independent either (relocation-model=static, as Go links
#                    the reference plugins on amd64): a static PIE relocates itself at
#                    every start, writing to its read-only-after-relocation pages, which
#                    cost about 0.15 ms of every call here (docs/benchmarks.md).
#   dist/aksnet      the CLI (node, agent, plan, lab, install), dynamically linked against
#                    glibc and libgcc_s only (no OpenSSL); with the Kubernetes API as the agent's source (feature
#                    `kube`: kube-rs over rustls and ring, no OpenSSL; `aksnet agent
#                    --in-cluster`, docs/kubernetes.md), and with the etcd store backend when
#                    protoc is installed (Debian protobuf-compiler; scripts/install-deps.sh).
# Install: cp dist/aksnet-cni /opt/cni/bin/ (or your runtime's plugin directory) and
# dist/aksnet somewhere on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
triple="$(rustc -vV | sed -n 's/^host: //p')"
musl="${triple%%-*}-unknown-linux-musl"
libdir="$(rustc --print target-libdir --target "$musl" 2>/dev/null || true)"
if [ -n "$libdir" ] && compgen -G "$libdir/libstd-*.rlib" >/dev/null; then
  triple="$musl"
else
  echo "build-release: no $musl standard library (rustup target add $musl); linking glibc" >&2
fi
# An explicit --target keeps the static flag off build scripts and proc macros.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --locked --release --target "$triple" -p aksnet-cni
features=kube
if command -v protoc >/dev/null; then features=kube,etcd; fi
cargo build --locked --release -p aksnet --features "$features"
mkdir -p dist
install -m 0755 "target/$triple/release/aksnet-cni" dist/aksnet-cni
install -m 0755 target/release/aksnet dist/aksnet
echo "dist/aksnet-cni (static, $triple) and dist/aksnet (features: $features) built"
