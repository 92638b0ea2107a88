#!/usr/bin/env bash
# Capability table per kernel: a short functional matrix (every datapath x
# every service proxy, pod IP and cluster IP, ping and a 1 s tcp-stream;
# topologies/kernel-table.toml) on this host and on Debian guest kernels
# booted by run-in-guest.sh.
#
#   tests/guest/kernel-table.sh [--kernels host,6.12,6.1,5.10] [--out DIR]
#       the whole matrix; writes DIR/<column>/results.json and DIR/README.md
#       (the table; DIR defaults to results/kernels)
#   tests/guest/kernel-table.sh --quick [--kernels host,6.12,6.1,5.10]
#       CI's subset (tcp-stream only: each datapath with its natural proxy,
#       and bridge with iptables and the non-natural proxies); writes
#       nothing outside /tmp
#
# Every kernel's cells are checked against what it must be able to run
# (tests/guest/require.sh, check-results.py): the script exits 1 if a cell
# failed or a required capability was skipped, after running every kernel.
# Functional only: speeds under emulation mean nothing and are not shown.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly TOPOLOGY=topologies/kernel-table.toml
readonly PROXIES=iptables,nftables,ipvs,ebpf,socket-lb
# --quick's second run: the proxies no datapath has as its natural one
# (the first run measures ebpf), after iptables, whose lab measures the
# pod-IP cells even where none of the others can be built.
readonly OTHER_PROXIES=iptables,nftables,ipvs,socket-lb
readonly DPLAB=target/release/dplab
readonly RUN=(--duration 1s --repetitions 1)

usage() {
	sed -n '7,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# The runs themselves, on the kernel this runs on (host, or inside a guest).
# dplab's exit 3 (some cells failed) is judged by check-results.py.
run_here() {
	local out=$1 mode=$2 status=0
	if [[ $mode == full ]]; then
		"$DPLAB" run "$TOPOLOGY" --proxies "$PROXIES" "${RUN[@]}" --out "$out/all" || status=$?
	else
		# tcp-stream alone: it uses every capability ping does, in half the cells.
		local quick=$out/quick.toml
		sed 's/^workloads = \["ping", "tcp-stream"\]$/workloads = ["tcp-stream"]/' \
			"$TOPOLOGY" >"$quick"
		grep -q '^workloads = \["tcp-stream"\]$' "$quick" ||
			{ echo "kernel-table: $TOPOLOGY changed shape: update --quick" >&2 && return 1; }
		"$DPLAB" run "$quick" "${RUN[@]}" --out "$out/natural" || status=$?
		if ((status == 0 || status == 3)); then
			"$DPLAB" run "$quick" --only bridge --proxies "$OTHER_PROXIES" "${RUN[@]}" \
				--out "$out/proxies" || status=$?
		fi
	fi
	((status == 0 || status == 3))
}

# Column name of a kernel: host-6.18, debian-6.12, ...
label_of() {
	if [[ $1 == host ]]; then
		echo "host-$(uname -r | cut -d. -f1-2)"
	else
		echo "debian-$1"
	fi
}

# Runs and checks one kernel; its runs go to OUT/<run>/results.json.
one_kernel() {
	local kernel=$1 out=$2 mode=$3 started=$SECONDS
	local check=(tests/guest/check-results.py --require "$(tests/guest/require.sh "$kernel")")
	mkdir -p "$out"
	echo "kernel-table: $(label_of "$kernel"): running the $mode matrix" >&2
	if [[ $kernel == host ]]; then
		run_here "$out" "$mode" || return 1
	else
		# CI may run without standard input; virtme-ng needs one.
		tests/guest/run-in-guest.sh --kernel "$kernel" -- \
			tests/guest/kernel-table.sh --run-here "$out" "$mode" </dev/null || return 1
		check+=(--not-kernel "$(uname -r)")
	fi
	echo "kernel-table: $(label_of "$kernel"): $((SECONDS - started)) s" >&2
	"${check[@]}" "$out"/*/results.json
}

main() {
	local kernels=host,6.12,6.1,5.10 out=results/kernels mode=full
	while (($#)); do
		case $1 in
		--run-here)
			(($# == 3)) || usage
			run_here "$2" "$3"
			return
			;;
		--kernels) kernels=${2:?} && shift 2 ;;
		--out) out=${2:?} && shift 2 ;;
		--quick) mode=quick && shift ;;
		*) usage ;;
		esac
	done
	[[ -x $DPLAB ]] || {
		echo "kernel-table: build first: cargo build --release" >&2
		exit 1
	}
	local work failed=() kernel columns=()
	work=$(mktemp -d /tmp/dplab-kernel-table.XXXXXX)
	IFS=, read -ra list <<<"$kernels"
	for kernel in "${list[@]}"; do
		one_kernel "$kernel" "$work/$(label_of "$kernel")" "$mode" || failed+=("$(label_of "$kernel")")
	done
	if [[ $mode == full ]]; then
		for kernel in "${list[@]}"; do
			local label
			label=$(label_of "$kernel")
			[[ -e $work/$label/all/results.json ]] || continue
			mkdir -p "$out/$label"
			cp "$work/$label/all/results.json" "$out/$label/results.json"
			columns+=("$label=$out/$label/results.json")
		done
		tests/guest/kernel-table.py "$out/README.md" "${columns[@]}"
		echo "kernel-table: wrote $out/README.md" >&2
	fi
	rm -rf "$work"
	if ((${#failed[@]})); then
		echo "kernel-table: problems on ${failed[*]} (see above)" >&2
		exit 1
	fi
	echo "kernel-table: every kernel ran what it must"
}

main "$@"
