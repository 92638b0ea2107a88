#!/usr/bin/env python3
"""Checks the shape of lab/src that a newcomer relies on (CI runs it):

- imports flow one way: no cycle between the top-level modules of the crate,
  nor between the submodules of any top-level module folder;
- no source file is over 500 lines (a longer one usually holds two jobs).

    scripts/check-modules.py [--graph]

`--graph` also prints each module's imports. Reads `crate::a::...`,
`crate::{a, b}` and (inside a folder) `super::x` paths, comments left out.
Exit 1 with one line per problem.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab", "src")
MAX_LINES = 500


def code_of(path):
    """The file's text without // comments (doc comments name modules too)."""
    with open(path) as f:
        return "\n".join(line.split("//")[0] for line in f.read().splitlines())


def names_after(prefix, code):
    """Module names that follow `prefix::` or stand in `prefix::{...}`."""
    names = set(re.findall(re.escape(prefix) + r"::([a-z_][a-z0-9_]*)", code))
    for group in re.findall(re.escape(prefix) + r"::\{([^}]*)\}", code):
        names |= set(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
    return names


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def module_of(rel):
    return rel.split(os.sep)[0].removesuffix(".rs")


def main():
    show = "--graph" in sys.argv[1:]
    problems = []
    top = {}
    inner = {}
    for folder, _, files in os.walk(ROOT):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, ROOT)
            with open(path) as f:
                lines = sum(1 for _ in f)
            if lines > MAX_LINES:
                problems.append(f"lab/src/{rel}: {lines} lines (at most {MAX_LINES})")
            code = code_of(path)
            module = module_of(rel)
            if module in ("main", "lib"):
                continue
            top.setdefault(module, set()).update(names_after("crate", code) - {module})
            if os.sep in rel:
                sub_rel = rel.split(os.sep, 1)[1]
                sub = module_of(sub_rel)
                if sub == "mod":
                    continue
                graph = inner.setdefault(module, {})
                uses = names_after(f"crate::{module}", code)
                # `super::` names a sibling from a file beside mod.rs or
                # from a subfolder's own mod.rs.
                if os.sep not in sub_rel or sub_rel.endswith(os.sep + "mod.rs"):
                    uses |= names_after("super", code)
                graph.setdefault(sub, set()).update(uses - {sub})
    for component in cycles(top):
        problems.append("import cycle between top-level modules: " + " <-> ".join(component))
    for module, graph in sorted(inner.items()):
        for component in cycles(graph):
            problems.append(f"import cycle inside {module}/: " + " <-> ".join(component))
    if show:
        for module in sorted(top):
            print(f"{module} -> {', '.join(sorted(m for m in top[module] if m in top))}")
    for p in problems:
        print(f"check-modules: {p}", file=sys.stderr)
    print(f"check-modules: {len(top)} modules, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
