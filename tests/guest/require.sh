#!/usr/bin/env bash
# What each test environment must be able to run, as DPLAB_REQUIRE wants it
# (comma-separated datapath and service proxy names, plus `ebpf` for dplab's
# eBPF programs). A test or a `dplab run` cell that skips a required
# capability fails: tests/common/skip.rs for the tests, check-results.py for
# results.json. So CI notices a capability that disappears.
#   tests/guest/require.sh host|5.10|6.1|6.12
set -euo pipefail

# This kind of machine (kernel 6.18): no ipvlan, dummy, netkit or IPVS.
base=veth-routed,bridge,bridge-nf-off,macvlan,veth-ebpf,iptables,ebpf
host=$base,nftables,socket-lb

# Debian 6.12 (bookworm-security): everything the host has, plus the ipvlan
# and netkit datapaths, and IPVS and dummy links as modules.
guest_6_12=$host,ipvlan-l2,ipvlan-l3,ipvlan-ebpf,ipvs,netkit,netkit-ebpf

# Debian 6.1 (bookworm): no TCX and no netkit; the eBPF programs attach by
# netlink (clsact qdisc + cls_bpf filter), so the eBPF datapaths run.
guest_6_1=$host,ipvlan-l2,ipvlan-l3,ipvlan-ebpf,ipvs

# Debian 11's 5.10 (bullseye): the same as 6.1 (no TCX, no netkit).
guest_5_10=$guest_6_1

case ${1:-} in
host) echo "$host" ;;
6.12) echo "$guest_6_12" ;;
6.1) echo "$guest_6_1" ;;
5.10) echo "$guest_5_10" ;;
*)
	echo "usage: $0 host|5.10|6.1|6.12" >&2
	exit 2
	;;
esac
