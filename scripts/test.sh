#!/usr/bin/env bash
# Runs every aksnet test: formatting, lints, unit tests and the privileged tests
# (network namespaces, veth, nftables, podman). Must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (the tests create network namespaces)" >&2; exit 1; }
bash scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --locked --bins
# Benchmarks are compiled, never run, in CI (issue 7): docs/benchmarks.md has the numbers.
cargo build --workspace --locked --benches
cargo test --workspace --locked -- --test-threads 4
