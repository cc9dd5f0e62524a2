"""Noise figure: findings per changed module, by kind and severity.

    python bench/noise.py [OLD_TREE NEW_TREE]

Over the bundled pairs (samples/pairs, one module each; blocking calls read from the
host's OTP and Elixir code) and, when given, two whole
release trees compared by the gate (e.g. OTP 27's and OTP 29's lib directories from
the oracle roots).  Prints a Markdown table; make bench appends it to its results.
"""

from __future__ import annotations

import collections
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import beaminspect  # noqa: E402


def _pairs():
    from beaminspect.analysis.hotload import analyse
    from beaminspect.analysis.waits import WaitIndex
    # Which calls block, read from the host's OTP and Elixir code, as the VM tests do.
    waits = WaitIndex.from_code_path(["/usr/lib/erlang/lib", "/usr/lib/elixir/lib"])
    root = os.path.join(os.path.dirname(HERE), "samples", "pairs")
    counts, modules = collections.Counter(), 0
    for d in sorted(glob.glob(os.path.join(root, "*"))):
        v1 = sorted(glob.glob(os.path.join(d, "v1", "*.beam")))
        v2 = sorted(glob.glob(os.path.join(d, "v2", "*.beam")))
        if len(v1) != 1 or len(v2) != 1:
            continue
        modules += 1
        for f in analyse(beaminspect.load(v1[0]), beaminspect.load(v2[0]),
                         waits=waits).findings:
            counts[(f.severity, f.kind)] += 1
    return modules, counts


def _trees(old, new):
    from beaminspect.release.gate import compare_releases
    report = compare_releases(old, new)
    counts = collections.Counter((f.severity, f.kind) for f in report.findings)
    return len(report.by_status("changed")), counts


def _table(title, modules, counts) -> str:
    lines = [f"### {title}: {modules} changed modules", "",
             "| severity | kind | findings | per changed module |", "|---|---|---|---|"]
    order = ("error", "warning", "info")
    for (sev, kind), n in sorted(counts.items(),
                                 key=lambda kv: (order.index(kv[0][0]), -kv[1], kv[0][1])):
        lines.append(f"| {sev} | `{kind}` | {n} | {n / max(modules, 1):.2f} |")
    by_sev = collections.Counter()
    for (sev, _), n in counts.items():
        by_sev[sev] += n
    lines += ["", "Totals: " + ", ".join(f"{by_sev[s]} {s}" for s in ("error", "warning", "info"))]
    return "\n".join(lines)


def main(argv) -> int:
    out = [_table("Bundled pairs", *_pairs())]
    if len(argv) == 2:
        out.append(_table(f"{argv[0]} -> {argv[1]}", *_trees(*argv)))
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
