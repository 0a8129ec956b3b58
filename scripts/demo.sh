#!/usr/bin/env bash
# The README's main command (issue 6): on a fresh Debian 12 machine with Rust, as root,
# installs the packages, builds aksnet and aksnet-cni, and runs `aksnet lab demo`:
# an AKS-style cluster in network namespaces (both legacy models) that checks the
# documented AKS claims (docs/azure.md) live, then removes everything it created. Extra arguments go to
# `aksnet lab demo` (e.g. --prefix).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root (the lab creates network namespaces)" >&2; exit 1; }
bash scripts/install-deps.sh
bash scripts/preflight.sh
cargo build --locked -p aksnet -p aksnet-cni
# The lab finds aksnet-cni next to aksnet (target/debug).
exec ./target/debug/aksnet lab demo "$@"
