#!/usr/bin/env bash
# CI, part two: the ipvlan and netkit datapaths, which this host's kernel
# lacks, run in a Debian 6.12 guest (ipvlan and netkit as modules, TCX for
# the eBPF programs):
#   1. `dplab run` of the three ipvlan and the two netkit datapaths: all ten
#      cells must be ok, with the guest's kernel recorded, and netkit-ebpf
#      must prove its path (service hits on the cluster IP, redirects, netkit
#      links);
#   2. the privileged ipvlan tests (lifecycle and services): they must pass
#      and must not skip;
#   3. the ipvs proxy tests (veth-routed and ipvlan-l2, cluster IP and node
#      port), which need IPVS and dummy links;
#   4. the short capability matrix (kernel-table.sh --quick) on this host,
#      6.12, 6.1 and 5.10: no cell may fail, no required capability may skip.
# Inside a guest DPLAB_REQUIRE is that kernel's list (require.sh), so a test
# that skips a capability the kernel must have fails.
# Functional checks only: speeds under emulation mean nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly KERNEL=${DPLAB_GUEST_KERNEL:-6.12}
# CI may run without standard input; virtme-ng needs one.
guest() {
    DPLAB_REQUIRE=$(tests/guest/require.sh "$KERNEL") \
        tests/guest/run-in-guest.sh --kernel "$KERNEL" -- "$@" </dev/null
}

# Test executables of the release build (built by the host test run).
test_binary() {
    cargo test --release --no-run --message-format=json --test "$1" 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1" | tail -n 1
}

start=$(date +%s)
out=$(mktemp -d /tmp/dplab-guest-run.XXXXXX)
guest target/release/dplab run topologies/blog.toml \
    --only ipvlan-l2,ipvlan-l3,ipvlan-ebpf,netkit,netkit-ebpf \
    --duration 1s --repetitions 1 --out "$out"
python3 - "$out/results.json" "$(uname -r)" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
kernel = results["host"]["kernel"]
assert kernel != sys.argv[2], f"results say host kernel {kernel}: not run in the guest"
cells = results["cells"]
bad = [f'{c["datapath"]}/{c["target"]}: {c["status"]} {c["reason"]}' for c in cells if c["status"] != "ok"]
assert len(cells) == 10 and not bad, f"{len(cells)} cells, not ok: {bad}"
for c in cells:
    if c["datapath"] != "netkit-ebpf":
        continue
    proof = c["proof"]
    assert c.get("bpf_attach") == "netkit", f'netkit-ebpf attached by {c.get("bpf_attach")}'
    assert proof.get("bpf_redirected", 0) > 0, f'netkit-ebpf/{c["target"]}: {proof}'
    if c["target"] == "cluster-ip":
        assert proof.get("bpf_service_hits", 0) > 0, f"netkit-ebpf/cluster-ip: {proof}"
print(f"guest run on {kernel}: 10 of 10 ipvlan and netkit cells ok, netkit-ebpf proven")
PY

log=$(mktemp /tmp/dplab-guest-tests.XXXXXX)
for t in lifecycle services; do
    bin=$(test_binary "$t")
    [ -x "$bin" ] || { echo "guest: no test binary for $t" >&2; exit 1; }
    # The ipvs and socket-lb tests on ipvlan run in their own blocks below.
    guest "$bin" ipvlan --skip ipvs --skip socket_lb --test-threads 1 --nocapture 2>&1 | tee -a "$log"
done
if grep -q "^SKIPPED" "$log"; then
    echo "guest: ipvlan tests skipped in the guest:" >&2
    grep "^SKIPPED" "$log" >&2
    exit 1
fi
echo "guest: ipvlan and netkit checks took $(( $(date +%s) - start )) s"

# 3. The ipvs proxy: IPVS and dummy links exist only in the guest. Its tests
# skip on the host; here they must pass (DPLAB_REQUIRE has ipvs).
ipvs_tests() {
    local bin started=$SECONDS
    bin=$(test_binary services)
    [ -x "$bin" ] || { echo "guest: no test binary for services" >&2; return 1; }
    guest "$bin" ipvs --test-threads 1 --nocapture
    guest "$bin" socket_lb --test-threads 1 --nocapture
    echo "guest: ipvs tests took $((SECONDS - started)) s"
}

# 4. What each kernel can run, checked against tests/guest/require.sh.
kernel_table_quick() {
    tests/guest/kernel-table.sh --quick --kernels host,6.12,6.1,5.10
}

ipvs_tests
kernel_table_quick
