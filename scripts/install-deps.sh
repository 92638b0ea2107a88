#!/usr/bin/env bash
# Installs what dplab needs on a fresh Debian machine: the eBPF compiler,
# iptables, nftables and ipvsadm (the nftables and ipvs proxies), the
# reference measurement tools, the report renderer, and curl and python3
# for the socket-lb tests (a client and servers run in pods).
# Idempotent: a second run installs nothing.
set -euo pipefail

packages=(clang llvm libbpf-dev iptables nftables ipvsadm iperf3 qperf iputils-ping iproute2 bpftool librsvg2-bin apache2-utils curl python3)

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
