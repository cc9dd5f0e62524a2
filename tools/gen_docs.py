#!/usr/bin/env python3
"""Write the README's table of finding kinds from the registry.

The table sits in README.md's "Finding kinds" section between the marker comments
``<!-- kinds:begin -->`` and ``<!-- kinds:end -->``; it is generated from
``beaminspect/analysis/findings.py`` (:data:`~beaminspect.analysis.findings.REGISTRY`)
by :func:`beaminspect.render.kinds.kinds_markdown`.

Usage::

    python tools/gen_docs.py            # rewrite the table in README.md
    python tools/gen_docs.py --check    # exit 1 if the committed table is stale
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- kinds:begin -->"
END = "<!-- kinds:end -->"

sys.path.insert(0, str(ROOT))
from beaminspect.render.kinds import kinds_markdown  # noqa: E402


class MarkerError(ValueError):
    pass


def split(text: str) -> tuple[str, str, str]:
    """-> (before and including the begin marker's line, the table, from the end marker
    on).  Raises :class:`MarkerError` unless each marker occurs once, in order."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise MarkerError(f"README.md must hold {BEGIN} and {END} once each")
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    if not body.startswith("\n"):
        raise MarkerError(f"{BEGIN} must end its line")
    return head + BEGIN + "\n", body[1:], END + tail


def table() -> str:
    """The generated block between the markers."""
    return kinds_markdown() + "\n"


def render(text: str) -> str:
    head, _, tail = split(text)
    return head + table() + tail


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if README.md's kinds table is not up to date")
    args = ap.parse_args(argv)
    try:
        current = README.read_text(encoding="utf-8")
        text = render(current)
    except (OSError, MarkerError) as exc:
        print(f"gen_docs: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if current != text:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), "README.md", "generated"))
            print("gen_docs: README.md's finding-kinds table is out of date; "
                  "run python tools/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        README.write_text(text, encoding="utf-8")
        print("gen_docs: wrote the finding-kinds table of README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
