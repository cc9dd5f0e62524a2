"""Which functions changed, against OTP's own answer: OTP 29's ``beam_disasm`` diffs
OTP 27's lib tree and Elixir against OTP 29's, function by function
(tools/fundiff.escript: labels numbered within each function, calls and funs by
name, line instructions and register type annotations left out), and
``diff_modules`` must find the same changed, added and removed functions in every
module pair whose files differ.

A module OTP 29's ``beam_disasm`` cannot read (it fails on some of OTP 27's type
tables) has no answer; those are counted and must stay few.
"""

from __future__ import annotations

import glob
import os
import shutil

import pytest

from beaminspect.analysis.diff import diff_modules
from beaminspect.module import load
from corpus import ROOT
from otp import require_otp

pytestmark = [pytest.mark.otp, pytest.mark.slow]

SCRIPT = os.path.join(ROOT, "tools", "fundiff.escript")
#: Floors well under what the two releases share and change (OTP 27 -> 29: 808
#: modules in both whose files differ; Elixir 1.18 -> 1.20 most of its modules).
MIN_COMPARED = 700
MAX_UNANSWERED = 10


def _copy_beams(tree: str, dest: str) -> None:
    """The beams of ``tree`` (APP/ebin/*.beam) under ``dest``, as the escript reads them."""
    for path in glob.glob(os.path.join(tree, "*", "ebin", "*.beam")):
        rel = os.path.relpath(path, tree)
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copyfile(path, os.path.join(dest, rel))


def _parse(out: str) -> tuple[dict, set]:
    answers, unanswered = {}, set()
    for line in out.splitlines():
        module, *fields = line.split("\t")
        if fields and fields[0].startswith("error "):
            unanswered.add(module)
            continue
        sets = []
        for f in fields:
            _what, _, names = f.partition(" ")
            sets.append(frozenset() if names == "-" else frozenset(names.split(",")))
        answers[module] = tuple(sets)      # (changed, added, removed)
    return answers, unanswered


def _beams(tree: str) -> dict[str, str]:
    return {os.path.basename(p)[:-len(".beam")]: p
            for p in sorted(glob.glob(os.path.join(tree, "*", "ebin", "*.beam")))}


@pytest.mark.parametrize("tree", [0, 1], ids=["erlang", "elixir"])
def test_changed_functions_agree_with_beam_disasm(tree):
    old, new = require_otp(27), require_otp(29)
    old_tree, new_tree = old.code_path[tree], new.code_path[tree]
    if not os.path.isdir(old_tree) or not os.path.isdir(new_tree):
        pytest.skip("Elixir is not installed in both roots")
    with new.scratch() as s:
        _copy_beams(old_tree, s.host("old"))
        proc = new.run(["escript", s.stage(SCRIPT), s.vm("old"), new.vm_path(new_tree)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    answers, unanswered = _parse(proc.stdout)
    assert len(unanswered) <= MAX_UNANSWERED, sorted(unanswered)

    a, b = _beams(old_tree), _beams(new_tree)
    compared, wrong = 0, []
    for m in sorted(set(a) & set(b)):
        if m in unanswered:
            continue
        with open(a[m], "rb") as f, open(b[m], "rb") as g:
            if f.read() == g.read():
                continue
        d = diff_modules(load(a[m]), load(b[m]))
        ours = tuple(frozenset(d.by_status(s)) for s in ("changed", "added", "removed"))
        expected = answers.get(m, (frozenset(),) * 3)
        compared += 1
        if ours != expected:
            wrong.append((m, [sorted(x ^ y)[:3] for x, y in zip(ours, expected)]))
    print(f"\nchanged functions, OTP 27 -> 29 ({['erlang', 'elixir'][tree]}): "
          f"{compared - len(wrong)} of {compared} module pairs agree with beam_disasm; "
          f"{len(unanswered)} it cannot read")
    assert not wrong, wrong[:10]
    if tree == 0:
        assert compared >= MIN_COMPARED
    else:
        assert compared > 0
