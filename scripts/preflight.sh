#!/usr/bin/env bash
# Proves the install step: every file and tool the build and the tests use, with the
# Debian package that provides it. For each row it checks that
#   1. the package is one scripts/install-deps.sh installs (so a fresh machine gets it,
#      not only this one, where it may have been installed by hand),
#   2. the file is there, and
#   3. dpkg says that package provides it (so this table stays true).
# Any failure names the package and what is wrong; the exit status is 1.
set -uo pipefail
cd "$(dirname "$0")/.."
listed=$(bash scripts/install-deps.sh --list)
arch=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
# path                                              package                      used by
rows=$(cat <<ROWS
/usr/bin/gcc                                        gcc                          rustc's linker, cc for -sys crates
/usr/lib/$arch/crt1.o                               libc6-dev                    linking every binary
/usr/bin/protoc                                     protobuf-compiler            etcd-client's build script
/usr/include/google/protobuf/descriptor.proto       libprotobuf-dev              etcd-client's build script (protoc imports it)
/usr/include/google/protobuf/struct.proto           libprotobuf-dev              etcd-client's build script (protoc imports it)
/bin/ip                                             iproute2                     the lab and privileged tests
/usr/sbin/nft                                       nftables                     SNAT, ipMasq, their tests
/bin/ping                                           iputils-ping                 connectivity checks
/sbin/sysctl                                        procps                       tests reading sysctls
/usr/lib/cni/bridge                                 containernetworking-plugins  reference plugins (benchmarks, chaining)
/usr/lib/cni/host-local                             containernetworking-plugins  reference plugins
/usr/lib/cni/ptp                                    containernetworking-plugins  reference plugins
/usr/lib/cni/tuning                                 containernetworking-plugins  chaining test (libcni)
/usr/bin/podman                                     podman                       runtime test (podman, CNI backend)
/usr/bin/buildah                                    buildah                      podman's image build
/usr/sbin/runc                                      runc                         podman and containerd tests
/bin/busybox                                        busybox-static               container images built at test time
/usr/bin/containerd                                 containerd                   runtime tests (ctr run --cni, CRI)
/usr/bin/ctr                                        containerd                   runtime tests
/usr/bin/go                                         golang-go                    the libcni driver
/usr/share/gocode/src/github.com/containernetworking/cni/libcni/api.go golang-github-appc-cni-dev the libcni driver
/usr/bin/etcd                                       etcd-server                  etcd backend tests
/usr/bin/etcdctl                                    etcd-client                  etcd backend tests
/usr/bin/openssl                                    openssl                      etcd TLS test (CA and certificates)
/usr/bin/python3                                    python3-minimal              bench/bench.py
/usr/bin/iperf3                                     iperf3                       NetworkPolicy throughput benchmark
ROWS
)
fail=0
while read -r path pkg used; do
  [ -n "$path" ] || continue
  if ! grep -qx "$pkg" <<<"$listed"; then
    echo "preflight: $path ($used) comes from Debian package $pkg, which scripts/install-deps.sh does not install: add $pkg there" >&2
    fail=1; continue
  fi
  alt="$path"; case "$path" in /usr/*) alt="${path#/usr}";; *) alt="/usr$path";; esac
  if [ ! -e "$path" ] && [ ! -e "$alt" ]; then
    echo "preflight: $path ($used) is missing: install Debian package $pkg (bash scripts/install-deps.sh)" >&2
    fail=1; continue
  fi
  owner=$( (dpkg -S "$path" 2>/dev/null || dpkg -S "$alt" 2>/dev/null) | head -n1 | cut -d: -f1)
  if [ "$owner" != "$pkg" ]; then
    echo "preflight: $path ($used) should come from Debian package $pkg but dpkg says ${owner:-no package}: fix the table in scripts/preflight.sh" >&2
    fail=1
  fi
done <<<"$rows"
if [ "$fail" = 0 ]; then
  echo "preflight: $(grep -c . <<<"$rows") files and tools present, each from a package scripts/install-deps.sh installs"
fi
exit "$fail"
