#!/usr/bin/env bash
# Checks, inside a guest started by run-in-guest.sh, the kernel features dplab
# needs that the host kernel lacks or that the guest setup must provide:
#   tests/guest/run-in-guest.sh -- tests/guest/check-guest.sh
# Prints one line per check and "N passed, N failed"; exits 1 if any failed.
# Creates only namespaces named dltg-*, and removes them on exit.
set -euo pipefail

readonly NS_PARENT=dltg-parent NS_A=dltg-a NS_B=dltg-b
PASSED=0 FAILED=0

check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok    $name${out:+: $out}"
		PASSED=$((PASSED + 1))
	else
		echo "FAIL  $name: $out"
		FAILED=$((FAILED + 1))
	fi
}

cleanup() {
	local ns
	for ns in "$NS_PARENT" "$NS_A" "$NS_B"; do
		ip netns del "$ns" 2>/dev/null || true
	done
}

make_namespaces() {
	cleanup
	ip netns add "$NS_PARENT" && ip netns add "$NS_A" && ip netns add "$NS_B"
}

# Two ipvlan slaves of one dummy parent, each moved into its own namespace,
# then a ping from A to B. The parent lives in a namespace of its own so the
# root namespace is never touched.
ipvlan_ping() {
	local mode=$1
	ip -n "$NS_PARENT" link del dltg-par 2>/dev/null || true
	ip -n "$NS_PARENT" link add dltg-par type dummy
	ip -n "$NS_PARENT" link set dltg-par up
	ip -n "$NS_PARENT" link add link dltg-par name dltg-va type ipvlan mode "$mode"
	ip -n "$NS_PARENT" link add link dltg-par name dltg-vb type ipvlan mode "$mode"
	ip -n "$NS_PARENT" link set dltg-va netns "$NS_A"
	ip -n "$NS_PARENT" link set dltg-vb netns "$NS_B"
	ip -n "$NS_A" addr add 10.250.0.1/24 dev dltg-va
	ip -n "$NS_B" addr add 10.250.0.2/24 dev dltg-vb
	ip -n "$NS_A" link set dltg-va up
	ip -n "$NS_B" link set dltg-vb up
	ip netns exec "$NS_A" ping -c 2 -W 2 -q 10.250.0.2 | grep -o '[0-9]* received'
	ip -n "$NS_PARENT" link del dltg-par
}

iptables_nat() {
	ip netns exec "$NS_A" iptables -t nat -L -n >/dev/null
	iptables -V
}

tc_clsact() {
	ip -n "$NS_PARENT" link add dltg-tc type dummy
	tc -n "$NS_PARENT" qdisc add dev dltg-tc clsact
	tc -n "$NS_PARENT" qdisc show dev dltg-tc | grep -o clsact
	ip -n "$NS_PARENT" link del dltg-tc
}

netkit_link() {
	ip -n "$NS_PARENT" link add dltg-nk type netkit
	ip -n "$NS_PARENT" link del dltg-nk
}

kernel_at_least() {
	local major minor
	IFS=. read -r major minor _ < <(uname -r)
	((major > $1 || (major == $1 && minor >= $2)))
}

main() {
	trap cleanup EXIT
	echo "kernel $(uname -r)"
	check "netns add" make_namespaces
	check "ipvlan l2 ping" ipvlan_ping l2
	check "ipvlan l3 ping" ipvlan_ping l3
	check "iptables -t nat -L" iptables_nat
	check "tc qdisc add clsact" tc_clsact
	check "/sys/fs/bpf is bpffs" sh -c 'stat -f -c %T /sys/fs/bpf | grep -x bpf_fs'
	check "/run/netns writable" test -w /run/netns
	check "BTF /sys/kernel/btf/vmlinux" test -e /sys/kernel/btf/vmlinux
	check "IPVS (ip_vs loaded)" test -d /proc/sys/net/ipv4/vs
	check "iptables-legacy -t nat -L" sh -c 'iptables-legacy -t nat -L -n >/dev/null && iptables-legacy -V'
	if kernel_at_least 6 7; then
		check "netkit link" netkit_link
	else
		echo "SKIPPED: netkit link: needs kernel 6.7 or later"
	fi
	echo "$PASSED passed, $FAILED failed"
	((FAILED == 0))
}

main "$@"
