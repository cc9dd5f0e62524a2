"""Read the chunks ``beaminspect show --json`` needs from every file with pybeam.

Run by bench/run.py with the interpreter of ``bench/.venv-pybeam`` (pybeam is not a
dependency of beaminspect)::

    bench/.venv-pybeam/bin/python bench/pybeam_read.py FILELIST [--report OUT.json]

``FILELIST`` holds one path per line.  For each file it reads the atoms, exports,
imports, attributes, compile information and local functions (LocT), the same set
``beam_lib:chunks/2`` is asked for in the same benchmark row.  pybeam parses every
chunk of a file when it opens it, so that cost is part of the measurement.

With ``--report`` it writes ``{"ok": n, "failed": [[path, error], ...]}``; run.py uses
it once, before timing, to find the files pybeam cannot parse and to leave them out of
every contender's file list for that row.
"""

from __future__ import annotations

import json
import sys

from pybeam import BeamFile


def read_one(path: str) -> int:
    beam = BeamFile(path)
    atoms = beam.atoms
    exports = beam.exports
    imports = beam.imports
    attributes = beam.attributes
    compile_info = beam.compileinfo
    loct = beam.selectChunkByName(b"LocT")  # a plain list in pybeam's schema
    local_funs = ([(atoms[e.function - 1], e.arity, e.label) for e in loct]
                  if loct is not None else [])
    # Touch every result so nothing is left unevaluated.
    return (len(atoms) + len(exports or ()) + len(imports or ()) + len(attributes or ())
            + len(compile_info or ()) + len(local_funs))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        paths = [line.strip() for line in f if line.strip()]
    report = argv[2] if len(argv) >= 3 and argv[1] == "--report" else None
    ok = 0
    failed = []
    total = 0
    for p in paths:
        try:
            total += read_one(p)
            ok += 1
        except Exception as e:  # noqa: BLE001 - counted and reported, never fatal
            if report is None:
                raise
            failed.append([p, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"])
    if report is not None:
        with open(report, "w", encoding="utf-8") as f:
            json.dump({"ok": ok, "failed": failed}, f, indent=1)
    print(f"{ok} files, {total} entries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
