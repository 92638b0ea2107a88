#!/usr/bin/env bash
# Installs what dplab needs on a fresh Debian machine: the eBPF compiler,
# iptables and nftables (nft), the reference measurement tools and the
# report renderer.
# Idempotent: a second run installs nothing.
set -euo pipefail

packages=(clang llvm libbpf-dev iptables nftables iperf3 qperf iputils-ping iproute2 bpftool librsvg2-bin apache2-utils)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# eBPF maps are pinned under /sys/fs/bpf/dplab: make sure bpffs is there.
if ! grep -qs " /sys/fs/bpf bpf " /proc/mounts; then
    mount -t bpf bpf /sys/fs/bpf
fi
