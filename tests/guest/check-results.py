#!/usr/bin/env python3
"""Checks a `dplab run` results.json against what its environment promises.

    check-results.py RESULTS.json [RESULTS.json...] --require LIST [--not-kernel K]

Fails (exit 1, one line per problem) when
- a cell failed;
- a cell was skipped although everything it needs is in --require (a cell
  needs its datapath, and on a service target its proxy; `ebpf` in the list
  stands for the ebpf proxy): a required capability has disappeared;
- a required capability has no ok cell at all in the given files (so a
  requirement cannot pass by not being measured);
- the results say kernel K (e.g. the host's, for a run meant for a guest).
Cells that no kernel can run (see kernel_cells.not_applicable) never count.
"""

import argparse
import json
import sys

from kernel_cells import needs, not_applicable


def check(paths, required, not_kernel):
    problems = []
    ok_uses = set()
    counts = {}
    for path in paths:
        results = json.load(open(path))
        kernel = results["host"]["kernel"]
        if not_kernel and kernel == not_kernel:
            problems.append(f"{path}: results say kernel {kernel}: not run where meant")
        for c in results["cells"]:
            status = c["status"]
            counts[status] = counts.get(status, 0) + 1
            name = f'{kernel}: {c["datapath"]}/{c.get("service_proxy") or "-"} {c["target"]} {c["workload"]}'
            if status == "failed":
                problems.append(f'{name}: failed: {c["reason"]}')
            elif status == "skipped" and not not_applicable(c):
                need = needs(c)
                if need <= required:
                    problems.append(
                        f'{name}: skipped although required ({", ".join(sorted(need))}): {c["reason"]}'
                    )
            elif status == "ok":
                ok_uses |= needs(c)
    for capability in sorted(required - ok_uses):
        problems.append(f"required {capability}: no ok cell uses it")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return problems, summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="+")
    parser.add_argument("--require", default="", help="comma-separated capabilities")
    parser.add_argument("--not-kernel", default="")
    args = parser.parse_args()
    required = {c for c in args.require.split(",") if c}
    problems, summary = check(args.results, required, args.not_kernel)
    for p in problems:
        print(f"check-results: {p}", file=sys.stderr)
    print(f"check-results: {summary}; {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
