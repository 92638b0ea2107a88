"""What a results.json cell needs of its environment, shared by
check-results.py and kernel-table.py."""

import re

# Reasons of cells that no kernel can run, whatever it has: a workload the
# target cannot carry (runner/cells.rs) and a (datapath, proxy) pair the
# compatibility table calls impossible (service/compat.rs). Anything else
# skipped is something this environment lacks.
NOT_APPLICABLE = [
    re.compile(r"ping sends ICMP"),
    re.compile(r"is \S+ with the eBPF proxy: to measure"),
]


def not_applicable(cell):
    reason = cell.get("reason") or ""
    return cell["status"] == "skipped" and any(p.search(reason) for p in NOT_APPLICABLE)


def needs(cell):
    """The capabilities a cell uses: its datapath, and its service proxy on
    a service target (`ebpf` is both the proxy and dplab's eBPF programs)."""
    out = {cell["datapath"]}
    if cell.get("service_proxy"):
        out.add(cell["service_proxy"])
    return out


def plain_reason(reason):
    """A reason without what differs between runs (run ids in namespace and
    link names), so equal reasons from several kernels share a footnote."""
    return re.sub(r"\bdl[0-9a-f]{4}-", "dl<run>-", reason or "").strip()
