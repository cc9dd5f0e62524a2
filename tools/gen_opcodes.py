#!/usr/bin/env python3
"""Generate ``beaminspect/format/opcodes.py`` from ``tools/genop.tab``.

``tools/genop.tab`` is a committed copy of erlang/otp's
``lib/compiler/src/genop.tab``; its first comment lines name the repository (erlang/otp
or a mirror of it) and the commit it was taken from.  Each opcode line there reads ``N: name/arity`` (``N: -name/arity`` for an
opcode the compiler no longer emits).

genop.tab does not say which OTP release first emitted an opcode.  That mapping is
kept here, as data (:data:`FIRST_RELEASE`), and checked against the section comments
of genop.tab (``# OTP 24`` and so on): where a section comment names a release, it
wins over the table below and the disagreement is reported on stderr.

Usage::

    python tools/gen_opcodes.py            # rewrite beaminspect/format/opcodes.py
    python tools/gen_opcodes.py --check    # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tools" / "genop.tab"
TARGET = ROOT / "beaminspect" / "format" / "opcodes.py"

#: First OTP release whose compiler emits each opcode, as inclusive ranges
#: ``(first, last, release)``.  ``None`` means "before OTP 20" (R13B03 or earlier:
#: genop.tab's own section comments give the R-release for most of them, but the
#: project only distinguishes releases from OTP 20 on).  Sources: BEAM-NOTES.md
#: ("Added since OTP 20") and the ``# OTP NN`` section comments of genop.tab.
FIRST_RELEASE: tuple[tuple[int, int, int | None], ...] = (
    (1, 158, None),
    (159, 159, 20),   # is_tagged_tuple
    (160, 163, 21),   # build_stacktrace raw_raise get_hd get_tl
    (164, 168, 22),   # put_tuple2 bs_get_tail bs_start_match3 bs_get_position bs_set_position
    (169, 170, 23),   # swap bs_start_match4
    (171, 176, 24),   # make_fun3 init_yregs recv_marker_*
    (177, 180, 25),   # bs_create_bin call_fun2 nif_start badrecord
    (181, 182, 26),   # update_record bs_match
    (183, 183, 27),   # executable_line
    (184, 184, 28),   # debug_line
    (185, 191, 29),   # bif3 and the native-record opcodes
)

#: Releases before this one are not told apart (``since`` is ``None``).
FIRST_TRACKED_RELEASE = 20

_OPCODE_RE = re.compile(r"^(\d+):\s*(-?)([a-z_][a-z0-9_]*)/(\d+)\s*$")
_SECTION_RE = re.compile(r"^#\s*OTP\s+(\d+)\s*$")
_COMMIT_RE = re.compile(r"\bcommit ([0-9a-f]{40})\b")
_REPO_RE = re.compile(r"https://github\.com/([\w.-]+/[\w.-]+)")
_FORMAT_RE = re.compile(r"^BEAM_FORMAT_NUMBER=(\d+)\s*$")


class TableError(Exception):
    """genop.tab could not be read as expected."""


def release_for(number: int) -> int | None:
    for first, last, release in FIRST_RELEASE:
        if first <= number <= last:
            return release
    raise TableError(f"opcode {number} has no entry in FIRST_RELEASE; extend the table")


def parse(text: str) -> dict:
    """Parse genop.tab text into ``{"repo", "commit", "format", "opcodes", "warnings"}``.

    ``opcodes`` is a list of ``(number, name, arity, obsolete, since)`` in number order.
    """
    commit = None
    repo = None
    fmt = None
    section = None
    opcodes = []
    warnings = []
    seen_names = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if commit is None and line.startswith("#"):
            m = _COMMIT_RE.search(line)
            if m:
                commit = m.group(1)
            m = _REPO_RE.search(line)
            if m and repo is None:
                repo = m.group(1)
        m = _SECTION_RE.match(line)
        if m:
            section = int(m.group(1))
            continue
        if line.startswith("#"):
            # An R-release section ("# R17", "# R15A") ends any OTP NN section.
            if re.match(r"^#\s*R\d", line):
                section = None
            continue
        m = _FORMAT_RE.match(line)
        if m:
            fmt = int(m.group(1))
            continue
        m = _OPCODE_RE.match(line)
        if not m:
            raise TableError(f"genop.tab line {lineno}: cannot parse {raw!r}")
        number, obsolete, name, arity = int(m.group(1)), m.group(2) == "-", m.group(3), int(m.group(4))
        if number != len(opcodes) + 1:
            raise TableError(f"genop.tab line {lineno}: opcode {number} out of order "
                             f"(expected {len(opcodes) + 1})")
        if name in seen_names:
            raise TableError(f"genop.tab line {lineno}: duplicate name {name}")
        seen_names.add(name)
        since = release_for(number)
        if section is not None and section != since:
            warnings.append(f"opcode {number} {name}: FIRST_RELEASE says {since}, "
                            f"genop.tab section says OTP {section}; using {section}")
            since = section
        opcodes.append((number, name, arity, obsolete, since))
    if commit is None:
        raise TableError("genop.tab header does not name the source commit")
    if fmt != 0:
        raise TableError(f"unexpected BEAM_FORMAT_NUMBER {fmt!r}")
    if not opcodes:
        raise TableError("no opcodes found")
    return {"repo": repo or "erlang/otp", "commit": commit, "format": fmt,
            "opcodes": opcodes, "warnings": warnings}


def max_opcode_by_release(opcodes) -> dict[int, int]:
    """Highest opcode a release's compiler may emit, for each release from OTP 20 to
    the newest release that introduced an opcode in the table."""
    releases = sorted({since for *_, since in opcodes if since is not None})
    result = {}
    for rel in range(FIRST_TRACKED_RELEASE, releases[-1] + 1):
        result[rel] = max(num for num, _n, _a, _o, since in opcodes
                          if since is None or since <= rel)
    return result


def render(table: dict) -> str:
    opcodes = table["opcodes"]
    highest = opcodes[-1][0]
    out = []
    w = out.append
    w(f"# Generated by tools/gen_opcodes.py from {table['repo']} lib/compiler/src/genop.tab "
      f"at {table['commit']} \u2014 do not edit")
    w('"""BEAM generic opcodes: number, name, arity, obsolete flag, first release.')
    w("")
    w("``OPCODES[n]`` is the :class:`Opcode` numbered ``n`` (``OPCODES[0]`` is ``None``).")
    w("``since`` is the first OTP release whose compiler emits the opcode, or ``None``")
    w("for opcodes older than OTP 20.  ``obsolete`` marks opcodes the compiler no longer")
    w("emits (a leading ``-`` in genop.tab); the loader refuses some of them.")
    w("``NAMES`` and ``ARITIES`` are plain 256-entry tuples indexed by any opcode byte,")
    w("for hot loops (``None`` / -1 for a byte that is not an opcode).")
    w('"""')
    w("")
    w("from __future__ import annotations")
    w("")
    w("from typing import NamedTuple")
    w("")
    w("")
    w("class Opcode(NamedTuple):")
    w("    number: int")
    w("    name: str")
    w("    arity: int")
    w("    obsolete: bool")
    w("    since: int | None")
    w("")
    w("")
    w(f"SOURCE_REPO = {table['repo']!r}")
    w(f"SOURCE_COMMIT = {table['commit']!r}")
    w(f"BEAM_FORMAT_NUMBER = {table['format']}")
    w(f"HIGHEST = {highest}")
    w("")
    w("OPCODES: tuple[Opcode | None, ...] = (")
    w("    None,")
    for number, name, arity, obsolete, since in opcodes:
        w(f"    Opcode({number}, {name!r}, {arity}, {obsolete}, {since}),")
    w(")")
    w("")
    w("BY_NAME: dict[str, Opcode] = {op.name: op for op in OPCODES if op is not None}")
    w("NAMES: tuple[str | None, ...] = tuple(")
    w("    [None if op is None else op.name for op in OPCODES] + [None] * (256 - len(OPCODES)))")
    w("ARITIES: tuple[int, ...] = tuple(")
    w("    [-1 if op is None else op.arity for op in OPCODES] + [-1] * (256 - len(OPCODES)))")
    w("")
    w("#: Highest opcode the compiler of each OTP release may emit (from the ``since``")
    w("#: column; releases newer than the table's last opcode are not listed).")
    w("MAX_OPCODE_BY_RELEASE: dict[int, int] = {")
    for rel, num in max_opcode_by_release(opcodes).items():
        w(f"    {rel}: {num},")
    w("}")
    w("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if beaminspect/format/opcodes.py is not up to date")
    args = ap.parse_args(argv)
    try:
        table = parse(SOURCE.read_text(encoding="utf-8"))
    except (OSError, TableError) as exc:
        print(f"gen_opcodes: {exc}", file=sys.stderr)
        return 2
    for warning in table["warnings"]:
        print(f"gen_opcodes: {warning}", file=sys.stderr)
    text = render(table)
    if args.check:
        try:
            current = TARGET.read_text(encoding="utf-8")
        except OSError:
            current = ""
        if current != text:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True),
                str(TARGET.relative_to(ROOT)), "generated"))
            print(f"gen_opcodes: {TARGET.relative_to(ROOT)} is out of date; "
                  "run python tools/gen_opcodes.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"gen_opcodes: wrote {TARGET.relative_to(ROOT)} "
          f"({len(table['opcodes'])} opcodes, highest {table['opcodes'][-1][0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
