#!/usr/bin/env python3
"""Generate ``beaminspect/analysis/waitdata/otpN.json``: which exported functions of
OTP N's and its Elixir's modules wait (see :mod:`beaminspect.analysis.waitdata`).

    python tools/gen_waits.py [--otp N] [--out FILE]   # read the release's code and write
    python tools/gen_waits.py [--otp N] --check        # compare with the file, exit 1 if stale

``--otp N`` reads the code of release N as tests/otp.py finds it (the host's for the
host's release, the cached roots of tools/otp-roots.sh for the others); the default is
25, the host's release.  Every module of the release's lib directory and of its Elixir is
read with :class:`beaminspect.analysis.waits.WaitIndex` (with no data file consulted),
in code path order (``code_path_modules``: the first copy of a module name wins).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from beaminspect.analysis.waitdata import FORMAT  # noqa: E402
from beaminspect.analysis.waits import WaitIndex, code_path_modules  # noqa: E402
from beaminspect.errors import BeamError  # noqa: E402
from beaminspect.module import load  # noqa: E402


def _elixir_version(elixir_lib: str) -> str | None:
    app = glob.glob(os.path.join(elixir_lib, "elixir", "ebin", "elixir.app"))
    if not app:
        return None
    text = open(app[0], encoding="utf-8").read()
    start = text.find("{vsn,")
    return text[start:].split('"')[1] if start >= 0 else None


def generate(release) -> dict:
    """The data file's content for a tests/otp.py Release."""
    dirs = release.code_path
    index = WaitIndex.from_code_path(dirs, precomputed=False)
    modules = {}
    for name, path in sorted(code_path_modules(dirs).items()):
        try:
            m = load(path)
            md5, exports = m.md5.hex(), [(e.name, e.arity) for e in m.exports]
        except BeamError:
            continue
        waits = []
        for f, a in sorted(exports):
            chain = index.why((name, f, a))
            if not chain:
                continue
            steps = []
            for step in chain[1:]:          # up to the first call into another module
                steps.append(list(step))
                if step[0] != name:
                    break
            waits.append([f, a, *steps])
        modules[md5] = [name, waits]
    return {"format": FORMAT, "otp_release": str(release.otp_release),
            "otp_version": release.otp_version,
            "elixir_version": _elixir_version(release.elixir_lib), "modules": modules}


def dumps(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


def main(argv=None) -> int:
    from otp import otp
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--otp", type=int, default=25, help="the release (default: 25, the host's)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    release = otp(args.otp)
    if not release.available:
        print(f"gen_waits: {release.skip_reason}", file=sys.stderr)
        return 2
    out = args.out or os.path.join(ROOT, "beaminspect", "analysis", "waitdata",
                                   f"otp{release.otp_release}.json")
    text = dumps(generate(release))
    if args.check:
        with open(out, encoding="utf-8") as f:
            same = f.read() == text
        print(f"gen_waits: {out} is {'up to date' if same else 'stale'}")
        return 0 if same else 1
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"gen_waits: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
