"""``diff --show-code``: the instruction-level diff of each changed function, labels
numbered within the function, each instruction with its source line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema

from beaminspect.analysis.diff import (ModuleContext, _shown, code_diff, diff_modules,
                                       function_code)
from beaminspect.module import load
from beaminspect.render import diff_out
from corpus import ROOT

PAIRS = os.path.join(ROOT, "samples", "pairs")


def _pair(name: str):
    v1 = os.path.join(PAIRS, name, "v1")
    beam = next(f for f in sorted(os.listdir(v1)) if f.endswith(".beam"))
    return (load(os.path.join(v1, beam)).decode_all(),
            load(os.path.join(PAIRS, name, "v2", beam)).decode_all(),
            os.path.join(PAIRS, name, "v2", beam[:-len(".beam")] + ".erl"))


def test_one_diff_per_changed_function_showing_the_change():
    old, new, erl = _pair("gen_server_state_change")
    d = diff_modules(old, new)
    code = code_diff(old, new, d)
    assert [c.function for c in code] == list(d.by_status("changed"))
    source = open(erl, encoding="utf-8").read().splitlines()
    by_name = {c.function: c for c in code}
    (hunk,) = by_name["version/0"].hunks
    assert [(ln.op, ln.text) for ln in hunk.lines if ln.op != " "] == [
        ("-", "move {atom,v1} {x,0}"), ("+", "move {atom,v2} {x,0}")]
    for fc in code:
        assert fc.file == os.path.basename(erl)
        assert all(any(ln.op != " " for ln in h.lines) for h in fc.hunks)
    # The new version's lines are in the v2 source.
    added = [ln.line for fc in code for h in fc.hunks for ln in h.lines if ln.op == "+"]
    assert added and all(1 <= n <= len(source) for n in added)
    plus = [ln for ln in by_name["version/0"].hunks[0].lines if ln.op == "+"][0]
    assert "v2" in source[plus.line - 1]


def test_whole_context_rebuilds_both_versions():
    """With unbounded context the diff is the whole function: its ' ' and '-' lines
    are the old instructions in order, its ' ' and '+' lines the new ones."""
    for pair in ("gen_server_state_change", "record_in_state", "ex_struct_state_change"):
        old, new, _ = _pair(pair)
        oc, nc = ModuleContext.of(old), ModuleContext.of(new)
        olds = {f.mfa: f for f in old.functions}
        for fn in new.functions:
            if fn.mfa not in olds:
                continue
            fc = function_code(olds[fn.mfa], fn, oc, nc, context=10 ** 6)
            lines = [ln for h in fc.hunks for ln in h.lines]
            if not fc.hunks:
                continue
            assert [ln.text for ln in lines if ln.op != "+"] == _shown(olds[fn.mfa], oc)[0]
            assert [ln.text for ln in lines if ln.op != "-"] == _shown(fn, nc)[0]


def test_labels_that_moved_do_not_show_as_changes():
    """Export labels moved (a function was added or removed before them): the
    functions whose code is the same have raw label numbers that differ, and no hunk."""
    old, new, _ = _pair("ex_handle_cast_removed")
    d = diff_modules(old, new)
    assert any(c.old != c.new for c in d.labels)
    oc, nc = ModuleContext.of(old), ModuleContext.of(new)
    olds = {f.mfa: f for f in old.functions}
    news = {f.mfa: f for f in new.functions}
    moved = 0
    for mfa in d.by_status("unchanged") + d.by_status("line_only"):
        raw_old = [i.text for i in olds[mfa].instructions if i.name != "line"]
        raw_new = [i.text for i in news[mfa].instructions if i.name != "line"]
        moved += raw_old != raw_new
        assert function_code(olds[mfa], news[mfa], oc, nc).hunks == ()
    assert moved > 0


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "beaminspect", "diff", *args,
                           "--fail-on", "never"], capture_output=True, text=True, timeout=300)


def test_cli_formats():
    v1 = os.path.join(PAIRS, "gen_server_state_change", "v1", "hl_gen_server_state_change.beam")
    v2 = v1.replace(os.sep + "v1" + os.sep, os.sep + "v2" + os.sep)
    text = _cli(v1, v2, "--show-code")
    assert text.returncode == 0, text.stderr
    assert "+++ version/0 (new) hl_gen_server_state_change.erl" in text.stdout
    assert "-    42  move {atom,v1} {x,0}" in text.stdout
    assert "+    42  move {atom,v2} {x,0}" in text.stdout
    assert "move {atom,v2}" not in _cli(v1, v2).stdout
    md = _cli(v1, v2, "--show-code", "--format", "markdown").stdout
    assert "<summary>Code of <code>version/0</code> (2 instructions differ)</summary>" in md
    assert "```diff\n--- version/0 (old)" in md
    with open(os.path.join(ROOT, "schemas", "diff.schema.json")) as f:
        schema = json.load(f)
    doc = json.loads(_cli(v1, v2, "--show-code", "--format", "json").stdout)
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert [c["function"] for c in doc["code"]] == doc["functions"]["changed"]
    assert "code" not in json.loads(_cli(v1, v2, "--format", "json").stdout)


def test_diff_markdown_escapes_messages():
    """Messages name functions and atoms (code_change/3, '-f/1-fun-0-'): in the findings
    table their underscores, angle brackets and pipes stay text."""
    from beaminspect.analysis.hotload import analyse
    old, new, _ = _pair("gen_server_state_change")
    report = analyse(old, new)
    assert any("_" in f.message for f in report.findings)
    out = diff_out.render_markdown(report)
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and "| message |" not in ln]
    rows = [r for r in rows if r.split(" | ")[0] in ("| error", "| warning", "| info")]
    assert len(rows) == len(report.findings)
    for r in rows:
        message = r.split(" | ", 3)[3]
        assert "_" not in message.replace("\\_", "") and "<" not in message
