#!/usr/bin/env python3
"""Renders the capability table of several kernels from their results.json.

    kernel-table.py OUT/README.md LABEL=RESULTS.json [LABEL=RESULTS.json...]

Rows: a datapath's pod IP (ping and tcp-stream), then the datapath with each
service proxy to the cluster IP (tcp-stream). Columns: kernels. Cells: ok,
skipped, unreachable or failed, with the reasons as footnotes; no speeds
(guests run under emulation). Rows that no kernel can run (impossible
pairs) are left out and named below the table.
"""

import json
import sys

from kernel_cells import not_applicable, plain_reason

# Worst first: the one a table cell shows when its cells differ.
SEVERITY = ["failed", "skipped", "unreachable", "ok"]


class Footnotes:
    def __init__(self):
        self.texts = []

    def mark(self, text):
        if text not in self.texts:
            self.texts.append(text)
        return self.texts.index(text) + 1


def row_keys(all_cells):
    """(datapath, proxy or None) in the order the runs measured them."""
    keys = []
    for c in all_cells:
        key = (c["datapath"], c.get("service_proxy"))
        if c["target"] == "pod-ip":
            key = (c["datapath"], None)
        if key not in keys:
            keys.append(key)
    # Per datapath: its pod-IP row, then its proxies.
    datapaths = []
    for d, _ in keys:
        if d not in datapaths:
            datapaths.append(d)
    return [k for d in datapaths for k in sorted((k for k in keys if k[0] == d), key=lambda k: k[1] is not None)]


def cells_of(results, key):
    datapath, proxy = key
    if proxy is None:
        return [c for c in results["cells"] if c["datapath"] == datapath and c["target"] == "pod-ip"]
    return [
        c
        for c in results["cells"]
        if c["datapath"] == datapath and c.get("service_proxy") == proxy and c["target"] == "cluster-ip"
    ]


def summarize(cells, notes):
    """One table cell: the worst status among the cells, footnoted."""
    cells = [c for c in cells if not not_applicable(c)]
    if not cells:
        return None
    worst = min(cells, key=lambda c: SEVERITY.index(c["status"]))
    if worst["status"] == "ok":
        return "ok"
    worst_cells = [c for c in cells if c["status"] == worst["status"]]
    marks = sorted({notes.mark(f'{c["status"]}: {plain_reason(c["reason"])}') for c in worst_cells})
    which = ""
    if len(worst_cells) < len(cells):
        which = " (" + ", ".join(c["workload"] for c in worst_cells) + ")"
    return f'{worst["status"]}{which} ' + "".join(f"[{m}]" for m in marks)


def render(columns):
    notes = Footnotes()
    all_cells = [c for _, r in columns for c in r["cells"]]
    lines = [
        "| datapath | service proxy | target | " + " | ".join(label for label, _ in columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    left_out = []
    for key in row_keys(all_cells):
        shown = [summarize(cells_of(r, key), notes) for _, r in columns]
        if all(s is None for s in shown):
            left_out.append(f"{key[0]}/{key[1]}")
            continue
        datapath, proxy = key
        target = "pod IP (ping, tcp-stream)" if proxy is None else "cluster IP (tcp-stream)"
        lines.append(
            f"| {datapath} | {proxy or '–'} | {target} | "
            + " | ".join(s or "–" for s in shown)
            + " |"
        )
    out = "\n".join(lines) + "\n\n"
    out += "".join(f"[{i}] {t}  \n" for i, t in enumerate(notes.texts, 1))
    if left_out:
        out += (
            "\nLeft out, as no kernel can run them (the compatibility table "
            f"calls the pairs impossible): {', '.join(left_out)}.\n"
        )
    return out


INTRO = """# Capability table per kernel

What dplab can build and carry on each kernel: every datapath with every
service proxy, to the pod IP (ping and a 1 s tcp-stream) and to the cluster
IP (1 s tcp-stream), one repetition. Made by `tests/guest/kernel-table.sh`
(topology `topologies/kernel-table.toml`); each column's `results.json` is
in the folder of its name. The guest kernels are Debian's, booted with
virtme-ng under emulation (TCG): this table says what works, never how
fast, so it shows no speeds. 6.1 and 6.12 are Debian 12's kernels, 5.10
Debian 11's. "eBPF attach" says how the tc programs
were attached there (`tcx` links on 6.6+, else `netlink`: a clsact qdisc
and cls_bpf filters) and `netkit` where netkit-ebpf used netkit's own
attach points.

"""


def attach_modes(r):
    """How the run attached its tc programs (settings), and netkit's own
    attach points where netkit-ebpf ran: what `dplab probe` chose by trying."""
    modes = []
    tc = (r.get("settings") or {}).get("tc_attach")
    if tc:
        modes.append(tc)
    for c in r["cells"]:
        mode = c.get("bpf_attach")
        if c["status"] == "ok" and mode and mode not in modes:
            modes.append(mode)
    return ", ".join(modes) or "–"


def header(columns):
    rows = "".join(
        f'| {label} | {r["host"]["kernel"]} | {r["host"].get("cpu_model", "")} | {attach_modes(r)} | {r["started_at"]} |\n'
        for label, r in columns
    )
    return "| column | kernel | CPU | eBPF attach | run at |\n|---|---|---|---|---|\n" + rows + "\n"


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out_path = sys.argv[1]
    columns = []
    for arg in sys.argv[2:]:
        label, path = arg.split("=", 1)
        with open(path) as f:
            columns.append((label, json.load(f)))
    with open(out_path, "w") as f:
        f.write(INTRO + header(columns) + render(columns))


if __name__ == "__main__":
    main()
