#!/usr/bin/env bash
# Runs every aksnet test: formatting, lints, unit tests and the privileged tests
# (network namespaces, veth, nftables, podman). Must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (the tests create network namespaces)" >&2; exit 1; }
bash scripts/install-deps.sh
# Prove the install step: every file the build and the tests need, from a package
# install-deps.sh installs (a machine that had it from before would hide the gap).
bash scripts/preflight.sh
cargo fmt --all -- --check
# --all-features: the etcd backend of the cluster store (tested against a real etcd).
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo build --workspace --all-features --locked --bins
# Benchmarks are compiled, never run, in CI (issue 7): docs/benchmarks.md has the numbers.
cargo build --workspace --all-features --locked --benches
# The shipped binaries (static aksnet-cni, scripts/build-release.sh) end to end:
# the lab demo drives dist/aksnet-cni exactly as a runtime does.
bash scripts/build-release.sh
./dist/aksnet lab demo --prefix aksnt-rel-
cargo test --workspace --all-features --locked -- --test-threads 4
