#!/usr/bin/env bash
# Installs every Debian package crius and its tests need. Idempotent; run as root on Debian 12.
#
#   build:    protobuf-compiler (k8s-cri's build script runs protoc), pkg-config
#   runtime:  runc (default OCI runtime), containernetworking-plugins (/usr/lib/cni),
#             iproute2, iptables (CNI bridge/portmap)
#   tests:    docker-registry (the real registry the conformance suite pushes to and pulls from),
#             containerd (the baseline the benchmarks measure crius against),
#             busybox-static (the content of the test images),
#             openssl (a certificate for the streaming server's TLS test)
set -euo pipefail

packages=(
  protobuf-compiler pkg-config
  runc containernetworking-plugins iproute2 iptables
  docker-registry busybox-static openssl
  containerd
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

# Package maintainer scripts must not start services (docker-registry would start a system
# registry on :5000); the tests start their own instances on random loopback ports.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  own_policy=true
fi
cleanup() { if $own_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get install -y -qq --no-install-recommends "${missing[@]}"
